"""The closed loop on a real API server (kwok plays the kubelet, the test plays the trainer):
spec.retraining.run starts one owned retraining TrainingJob given the champion; a challenger
that beats the champion on its holdout is rolled out and recorded in status.modelHistory; one
that does not is rejected and the champion keeps serving; a retraining deleted mid-run is a
decision too; spec.model is never edited. The drift trigger's timing (minDuration, cooldown,
the attempts cap) is unit-tested; drift itself needs real servers (tests/e2e)."""

from __future__ import annotations

from typing import Any

import pytest
from modelyard_runtime.contract import ChampionScore, Comparison

from .operator_harness import (
    GROUP_VERSION,
    Modelyard,
    OperatorProcess,
    condition,
    events_for,
    model_deployment,
    plugin,
    pod_env,
    running_trainer_pod,
    succeed_trainer,
    training_job,
    wait_for,
)
from .test_operator_serving import wait_ready

pytestmark = pytest.mark.cluster


def retraining(md: dict[str, Any] | None) -> dict[str, Any]:
    return ((md or {}).get("status") or {}).get("retraining") or {}


def served_version(modelyard: Modelyard, ns: str) -> str | None:
    dep = modelyard.api.get("apps/v1", "Deployment", ns, "iris")
    annotations = ((dep or {}).get("spec") or {}).get("template", {}).get("metadata", {})
    return (annotations.get("annotations") or {}).get("modelyard.io/model-version")


def comparison(champion: dict[str, Any], challenger: float, theirs: float) -> Comparison:
    return Comparison(
        metric="accuracy",
        greater_is_better=True,
        challenger=challenger,
        champion=ChampionScore(
            version=champion["version"], sha256=champion["sha256"], metrics={"accuracy": theirs}
        ),
        improvement=round(challenger - theirs, 6),
        regressions={"accuracy": round(theirs - challenger, 6)},
    )


def run(modelyard: Modelyard, ns: str, token: str) -> None:
    modelyard.api.patch(
        GROUP_VERSION, "ModelDeployment", ns, "iris", {"spec": {"retraining": {"run": token}}}
    )


def finished_decision(modelyard: Modelyard, ns: str, job: str) -> dict[str, Any]:
    return wait_for(
        f"a decision on {job}",
        lambda: (
            (m := modelyard.api.md(ns, "iris"))
            and (retraining(m).get("lastDecision") or {}).get("job") == job
            and retraining(m)["lastDecision"]["result"] in ("Promoted", "Rejected")
            and m
        ),
        timeout=60,
        show=lambda: retraining(modelyard.api.md(ns, "iris")),
    )


def test_retrain_promote_reject_and_a_deleted_run(modelyard: Modelyard, ns: str) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl
    kubectl.apply(training_job("iris"), namespace=ns)
    v1 = succeed_trainer(api, running_trainer_pod(api, ns, "iris-g1")).model
    assert v1 is not None
    spec_retraining = {"template": {"trainingJobRef": {"name": "iris"}}, "historyLimit": 5}
    kubectl.apply(
        model_deployment("iris", training_job="iris", retraining=spec_retraining), namespace=ns
    )
    md = wait_ready(modelyard, ns, "iris")
    history = md["status"]["modelHistory"]
    assert [(h["version"], h["why"]) for h in history] == [(v1.version, "Spec")]
    stalled = condition(md, "RetrainingStalled")
    assert stalled is not None and stalled["status"] == "False"

    # A manual run: one owned TrainingJob, a copy of the template given the champion.
    run(modelyard, ns, "first")
    tj = wait_for("iris-retrain-1", lambda: api.tj(ns, "iris-retrain-1"))
    labels = tj["metadata"]["labels"]
    assert labels["modelyard.io/trigger"] == "Manual"
    assert labels["modelyard.io/retraining-for"] == "iris"
    owner = tj["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelDeployment", "iris", True)
    assert tj["spec"]["champion"] == {
        "storageUri": v1.uri,
        "sha256": v1.sha256,
        "skipIfDataUnchanged": False,
    }
    assert tj["spec"]["model"] == api.tj(ns, "iris")["spec"]["model"]  # type: ignore[index]
    pod = running_trainer_pod(api, ns, "iris-retrain-1-g1")
    env = pod_env(pod)
    assert env["MODELYARD_CHAMPION_SHA256"] == v1.sha256
    assert env["MODELYARD_CHAMPION_DIR"].startswith("/mnt/champion/")
    md = api.md(ns, "iris")
    assert retraining(md)["activeJob"] == "iris-retrain-1"
    assert retraining(md)["lastTrigger"]["reason"] == "Manual"

    # It beats the champion on its holdout: rolled out, then the champion.
    champion = {"version": v1.version, "sha256": v1.sha256}
    r1 = succeed_trainer(api, pod, accuracy=0.98, comparison=comparison(champion, 0.98, 0.9))
    assert r1.model is not None
    md = finished_decision(modelyard, ns, "iris-retrain-1")
    decision = retraining(md)["lastDecision"]
    assert (decision["result"], decision["reason"]) == ("Promoted", "BeatChampion"), decision
    assert decision["challenger"]["score"] == 0.98 and decision["champion"]["score"] == 0.9
    assert [(h["version"], h["why"]) for h in md["status"]["modelHistory"]] == [
        (r1.model.version, "Manual"),
        (v1.version, "Spec"),
    ]
    assert md["status"]["model"]["version"] == r1.model.version
    assert served_version(modelyard, ns) == r1.model.version
    assert md["spec"]["model"] == {"trainingJobRef": {"name": "iris"}}, "spec never edited"
    assert condition(md, "Ready")["status"] == "True"  # type: ignore[index]

    # What the kubectl plugin shows.
    lineage = plugin(kubectl, "history", "iris", "-n", ns).splitlines()
    assert lineage[1].split()[:3] == [r1.model.version, r1.model.sha256[:12], "Manual"], lineage
    assert lineage[2].split()[:3] == [v1.version, v1.sha256[:12], "Spec"], lineage
    page = plugin(kubectl, "status", "md", "iris", "-n", ns)
    assert "Promoted BeatChampion (iris-retrain-1)" in page, page

    # A second run (from the plugin) that does not beat the new champion: rejected, r1 serves.
    assert "one retraining starts" in plugin(kubectl, "retrain", "iris", "-n", ns, "--run", "2")
    pod = running_trainer_pod(api, ns, "iris-retrain-2-g1")
    assert pod_env(pod)["MODELYARD_CHAMPION_SHA256"] == r1.model.sha256
    champion = {"version": r1.model.version, "sha256": r1.model.sha256}
    succeed_trainer(api, pod, accuracy=0.95, comparison=comparison(champion, 0.95, 0.98))
    md = finished_decision(modelyard, ns, "iris-retrain-2")
    decision = retraining(md)["lastDecision"]
    assert (decision["result"], decision["reason"]) == ("Rejected", "NotBetter"), decision
    assert md["status"]["modelHistory"][0]["version"] == r1.model.version
    assert served_version(modelyard, ns) == r1.model.version

    # A run deleted before it finished is a decision as well, and nothing is re-created.
    run(modelyard, ns, "third")
    wait_for("iris-retrain-3", lambda: api.tj(ns, "iris-retrain-3"))
    api.delete(GROUP_VERSION, "TrainingJob", ns, "iris-retrain-3")
    md = finished_decision(modelyard, ns, "iris-retrain-3")
    assert retraining(md)["lastDecision"]["reason"] == "JobDeleted"
    assert api.tj(ns, "iris-retrain-4") is None
    assert retraining(md)["runs"] == 3

    reasons = [e["reason"] for e in events_for(api, ns, "iris")]
    for reason in ("RetrainTriggered", "ChallengerPromoted", "ChallengerRejected"):
        assert reason in reasons, reasons


def test_a_restart_mid_retraining_neither_duplicates_nor_loses_it(
    modelyard: Modelyard, operator: OperatorProcess, ns: str
) -> None:
    """SIGKILL while a retraining runs and again right after its trainer ended: one
    TrainingJob, one decision, and the champion it was given is the one it is judged against."""
    api, kubectl = modelyard.api, modelyard.kubectl
    kubectl.apply(training_job("iris"), namespace=ns)
    v1 = succeed_trainer(api, running_trainer_pod(api, ns, "iris-g1")).model
    assert v1 is not None
    spec = {"template": {"trainingJobRef": {"name": "iris"}}, "run": "once"}
    kubectl.apply(model_deployment("iris", training_job="iris", retraining=spec), namespace=ns)
    pod = running_trainer_pod(api, ns, "iris-retrain-1-g1")
    operator.kill()
    operator.start()
    champion = {"version": v1.version, "sha256": v1.sha256}
    operator.kill()  # down while the trainer ends: the decision must still come
    succeed_trainer(api, pod, accuracy=0.99, comparison=comparison(champion, 0.99, 0.9))
    operator.start()
    md = finished_decision(modelyard, ns, "iris-retrain-1")
    assert retraining(md)["lastDecision"]["result"] == "Promoted"
    assert [t["metadata"]["name"] for t in api.list(GROUP_VERSION, "TrainingJob", ns)] == [
        "iris",
        "iris-retrain-1",
    ]
    assert retraining(md)["runs"] == 1 and retraining(md)["handledRun"] == "once"
    promoted = [e for e in events_for(api, ns, "iris") if e["reason"] == "ChallengerPromoted"]
    assert len(promoted) == 1, promoted
