"""The closed loop end to end on the real node, the story the README tells:

v1 is trained on data A (a CSV on the models claim) and served; traffic from a changed world B
arrives -> the drift monitor says Drifting -> a data pipeline refreshes the CSV to B -> after
``onDrift.minDuration`` a retraining TrainingJob runs for real, given v1 as champion -> the
challenger beats v1 on B's holdout -> canary at 50% under the same traffic -> promoted -> the
Service answers with v2, ``status.modelHistory`` and ``kubectl get md`` say so; v2's own
reference ends the drift (no retrain storm). Then the negative path: a manual run on the same
data trains an equal model, which is rejected (NotBetter), and v2 keeps serving.

Intervals are short through the spec (drift checks every 5 s, minDuration 15 s, one 50% canary
step of 10 s), not test-only code paths. The measured timeline is printed at the end.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris

from tests.cluster.operator_harness import (
    GROUP_VERSION,
    MODELS_CLAIM,
    Modelyard,
    condition,
    condition_is,
    events_for,
    model_deployment,
    phase,
    plugin,
    training_job,
    wait_for,
)

from .faults.faultlib import send, service_url
from .node import RealNode

pytestmark = pytest.mark.e2e

NAME = "iris"
DATA = "data/iris.csv"  # on the models claim: the trainer mounts it read-only
PETAL_LENGTH = 2
# World A: petal length grows 3 cm per class step; world B: it shrinks 1 cm per step. A model
# of A misplaces B's versicolor and virginica (tests/runtime/test_trainer_champion.py).
SHIFT_A, SHIFT_B = 3.0, -1.0
SPEC = {
    "monitoring": {
        "drift": {
            "enabled": True,
            "interval": "5s",
            "window": {"size": 300, "maxAge": "10m"},
            "minSamples": 150,
            "persistence": 2,
        }
    },
    "rollout": {
        "strategy": "Canary",
        "canary": {
            "steps": [50],
            "stepDuration": "10s",
            "analysis": {
                "interval": "2s",
                "minRequests": 40,
                "inconclusiveTimeout": "3m",
                # Two LogisticRegressions: only a real regression may fail this (latency is
                # test_canary_real.py's subject). p99 comes from histogram buckets whose steps
                # are 2-2.5x, so one bucket of noise on a busy 2-core node must pass.
                "maxLatencyRatio": 3.0,
                # A challenger retrained on a changed world is meant to answer differently.
                "maxPredictionShift": 1.0,
            },
        },
    },
    "retraining": {
        "triggers": ["OnDrift"],
        "onDrift": {"minDuration": "15s"},
        "cooldown": "1m",
        "template": {"trainingJobRef": {"name": NAME}},
    },
}


def world(shift: float) -> tuple[list[list[float]], list[int]]:
    data = load_iris()
    rows = [list(map(float, row)) for row in data.data]
    for row, target in zip(rows, data.target, strict=True):
        row[PETAL_LENGTH] += shift * int(target)
    return rows, [int(t) for t in data.target]


def write_csv(path: Path, shift: float) -> None:
    rows, targets = world(shift)
    names = [n.replace(" (cm)", "").replace(" ", "_") for n in load_iris().feature_names]
    lines = [",".join([*names, "target"])]
    lines += [
        ",".join([*(f"{v:.2f}" for v in row), str(t)]) for row, t in zip(rows, targets, strict=True)
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o644)
    tmp.replace(path)  # a pipeline's atomic refresh: the trainer reads all of A or all of B


class Traffic:
    """Batches of B rows through the Service's ClusterIP, 10 requests a second, until stopped;
    counts answers and failures (with when, in seconds since it started)."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.url = service_url(api, namespace, NAME)
        self.rows, _ = world(SHIFT_B)
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="b-traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def answers(self) -> bool:
        """One request through the Service succeeds (kube-proxy has programmed it)."""
        try:
            send(str(self.url), self.rows[:1], timeout=5)
        except OSError:
            return False
        return True

    def _run(self) -> None:
        rng, began = random.Random(3), time.monotonic()
        while not self._stop.wait(0.1):
            batch = [[v + rng.gauss(0, 0.05) for v in rng.choice(self.rows)] for _ in range(5)]
            try:
                send(str(self.url), batch, timeout=5)
                self.ok += 1
            except OSError as error:  # an HTTPError is one too
                self.failed.append(f"at {time.monotonic() - began:.1f}s: {error}")


def status_of(md: dict[str, Any] | None, part: str) -> dict[str, Any]:
    return ((md or {}).get("status") or {}).get(part) or {}


def test_drift_retrain_canary_promote_then_reject(
    modelyard: Modelyard,
    ns: str,
    runtime_image: str,
    real_node: RealNode,
    request: pytest.FixtureRequest,
    models_dir: Path,
) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl
    claim_dir = models_dir
    (claim_dir / "data").mkdir()
    (claim_dir / "data").chmod(0o777)
    timeline: dict[str, float] = {}
    began = time.monotonic()

    def mark(what: str) -> None:
        timeline[what] = round(time.monotonic() - began, 1)

    request.addfinalizer(lambda: print("\nretraining timeline (s): " + json.dumps(timeline)))

    def md() -> dict[str, Any] | None:
        return api.md(ns, NAME)

    def show() -> Any:
        return {
            "retraining": status_of(md(), "retraining"),
            "drift": {k: v for k, v in status_of(md(), "drift").items() if k != "features"},
            "rollout": status_of(md(), "rollout").get("phase"),
            "pods": kubectl("get", "pods", "-n", ns, "-o", "wide"),
        }

    # 1. v1, trained on world A and served.
    write_csv(claim_dir / DATA, SHIFT_A)
    dataset = {"uri": f"pvc://{MODELS_CLAIM}/{DATA}", "target": "target"}
    kubectl.apply(
        training_job(NAME, dataset=dataset),
        model_deployment(NAME, training_job=NAME, replicas=1, **SPEC),
        namespace=ns,
    )
    first = wait_for(
        "v1 Ready",
        lambda: (m := md()) and condition_is(m, "Ready") and m,
        timeout=300,
        show=show,
    )
    v1 = first["status"]["model"]
    mark("v1 serving")
    history = first["status"]["modelHistory"]
    assert [(h["version"], h["why"]) for h in history] == [(v1["version"], "Spec")]

    traffic = Traffic(api, ns)
    wait_for("the Service answers", traffic.answers, timeout=30)
    with traffic:
        # 2. World B's traffic: drift.
        drifting = wait_for(
            "Drifting on B's traffic",
            lambda: (m := md()) and status_of(m, "drift").get("state") == "Drifting" and m,
            timeout=120,
            show=show,
        )
        mark("drift detected")
        assert status_of(drifting, "drift")["modelVersion"] == v1["version"]
        assert not status_of(drifting, "retraining").get("activeJob"), "minDuration holds it"

        # 3. The data pipeline lands B.
        write_csv(claim_dir / DATA, SHIFT_B)
        mark("data refreshed")

        # 4. A retraining runs for real, the challenger beats v1 on B's holdout.
        triggered = wait_for(
            "a retraining triggered by drift",
            lambda: (m := md()) and status_of(m, "retraining").get("activeJob") and m,
            timeout=60,
            show=show,
        )
        mark("retrain started")
        trigger = status_of(triggered, "retraining")["lastTrigger"]
        assert (trigger["reason"], trigger["job"]) == ("Drift", f"{NAME}-retrain-1")
        tj = wait_for(
            "the retraining TrainingJob finished",
            lambda: (
                (t := api.tj(ns, f"{NAME}-retrain-1")) and phase(t) in ("Succeeded", "Failed") and t
            ),
            timeout=300,
            show=show,
        )
        assert phase(tj) == "Succeeded", json.dumps(tj["status"], indent=2)
        mark("challenger trained")
        comparison = tj["status"]["comparison"]
        assert comparison["champion"]["version"] == v1["version"], comparison
        assert comparison["champion"]["sha256"] == v1["sha256"]
        assert comparison["champion"]["metrics"]["accuracy"] < 0.8 < comparison["challenger"]
        v2 = tj["status"]["model"]

        # 5. Through the canary, then promoted.
        wait_for(
            "the challenger's canary",
            lambda: status_of(md(), "rollout").get("phase") in ("Progressing", "Promoting"),
            timeout=120,
            show=show,
        )
        mark("canary started")
        promoted = wait_for(
            "the challenger promoted",
            lambda: (
                (m := md())
                and (status_of(m, "retraining").get("lastDecision") or {}).get("result")
                in ("Promoted", "Rejected")
                and m
            ),
            timeout=240,
            show=show,
        )
        mark("promoted")
        decision = status_of(promoted, "retraining")["lastDecision"]
        assert (decision["result"], decision["reason"]) == ("Promoted", "BeatChampion"), decision
        assert promoted["status"]["model"]["sha256"] == v2["sha256"]
        assert condition_is(promoted, "Ready")
        assert promoted["spec"]["model"] == {"trainingJobRef": {"name": NAME}}, "spec untouched"
        assert [
            (h["version"], h["why"], h.get("trainingJob"))
            for h in promoted["status"]["modelHistory"]
        ] == [
            (v2["version"], "Drift", f"{NAME}-retrain-1"),
            (v1["version"], "Spec", NAME),
        ]
        table = kubectl("get", "md", NAME, "-n", ns)
        assert "RETRAIN" in table.splitlines()[0] and "Promoted" in table and v2["version"] in table
        lineage = kubectl(
            "get",
            "md",
            NAME,
            "-n",
            ns,
            "-o",
            "jsonpath={range .status.modelHistory[*]}{.version} {.why}{'\\n'}{end}",
        )
        assert lineage.split() == [v2["version"], "Drift", v1["version"], "Spec"], lineage

        # The kubectl plugin, through the API server's service proxy: v2 knows world B.
        rows, targets = world(SHIFT_B)
        sample = claim_dir / "b-sample.csv"
        sample.write_text("a,b,c,d\n" + "".join(",".join(map(str, r)) + "\n" for r in rows[::5]))
        outputs = json.loads(plugin(kubectl, "predict", NAME, str(sample), "-n", ns))
        predicted = outputs[0]["data"]
        right = sum(p == t for p, t in zip(predicted, targets[::5], strict=True))
        assert right / len(predicted) > 0.9, (right, len(predicted))

        # 6. v2 answers with its own reference: the drift ends, no second retraining.
        wait_for(
            "NoDrift for v2",
            lambda: (
                status_of(m := md(), "drift").get("modelVersion") == v2["version"]
                and status_of(m, "drift").get("state") == "NoDrift"
            ),
            timeout=90,
            show=show,
        )
        mark("drift cleared")
        assert status_of(md(), "retraining")["runs"] == 1, "one shift, one retraining"

        # 7. The negative path: the same data again trains an equal model, which is rejected.
        api.patch(
            GROUP_VERSION, "ModelDeployment", ns, NAME, {"spec": {"retraining": {"run": "again"}}}
        )
        rejected = wait_for(
            "the second challenger decided",
            lambda: (
                (m := md())
                and (status_of(m, "retraining").get("lastDecision") or {}).get("job")
                == f"{NAME}-retrain-2"
                and m
            ),
            timeout=300,
            show=show,
        )
        mark("second challenger rejected")
        decision = status_of(rejected, "retraining")["lastDecision"]
        assert (decision["result"], decision["reason"]) == ("Rejected", "NotBetter"), decision
        assert rejected["status"]["model"]["sha256"] == v2["sha256"], "v2 keeps serving"
        assert condition_is(rejected, "Ready")
        assert rejected["status"]["modelHistory"][0]["version"] == v2["version"]
        served = api.get("apps/v1", "Deployment", ns, NAME)
        assert served is not None
        annotations = served["spec"]["template"]["metadata"]["annotations"]
        assert annotations["modelyard.io/model-sha256"] == v2["sha256"]
        assert api.get("apps/v1", "Deployment", ns, f"{NAME}-canary") is None

    reasons = [e["reason"] for e in events_for(api, ns, NAME)]
    for reason in ("DriftDetected", "RetrainTriggered", "ChallengerPromoted", "ChallengerRejected"):
        assert reason in reasons, reasons
    assert traffic.ok > 100, traffic.ok
    assert not traffic.failed, traffic.failed[:10]
    stalled = condition(rejected, "RetrainingStalled")
    assert stalled is not None and stalled["status"] == "False"
    timeline["requests"] = traffic.ok
