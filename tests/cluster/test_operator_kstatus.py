"""kstatus and Flux conformance over real objects: the operator drives TrainingJobs and
ModelDeployments on the API server into each state, the objects are read back as a kubectl
user would, and ``deploy/kstatus`` (Go) computes what sigs.k8s.io/cli-utils' kstatus says
and which of Flux's ``healthCheckExprs`` (deploy/flux/health-check-exprs.yaml, cel-go) hold.

Expected: training or rolling out is InProgress, trained or serving is Current, a failed gate
(and the ModelDeployment that cannot serve it) is Failed -- the same verdict from both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.go_tools import go_run

from .operator_harness import (
    REPO,
    Modelyard,
    OperatorProcess,
    condition_is,
    finish_trainer,
    model_deployment,
    phase,
    running_trainer_pod,
    succeed_trainer,
    trainer_result,
    training_job,
    wait_for,
)

pytestmark = pytest.mark.cluster


def kstatus_check(directory: Path) -> dict[str, dict[str, str]]:
    done = go_run(
        REPO / "deploy" / "kstatus",
        str(REPO / "deploy" / "flux" / "health-check-exprs.yaml"),
        str(directory),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {line["file"].removesuffix(".json"): line for line in lines}


def test_kstatus_and_flux_agree_with_status(
    modelyard: Modelyard, operator: OperatorProcess, ns: str, tmp_path: Path
) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl
    kubectl.apply(
        training_job("good"),
        training_job("weak", gate_min=0.99),
        model_deployment("good", training_job="good"),
        model_deployment("weak", training_job="weak"),
        namespace=ns,
    )
    seen: dict[str, dict[str, Any]] = {}

    def keep(name: str, obj: dict[str, Any] | None) -> None:
        assert obj is not None
        seen[name] = obj

    # In progress: a running training, and the ModelDeployment waiting for its model.
    good_pod = running_trainer_pod(api, ns, "good-g1")
    keep(
        "tj-running",
        wait_for("good Running", lambda: (t := api.tj(ns, "good")) and phase(t) == "Running" and t),
    )
    keep(
        "md-waiting",
        wait_for(
            "good waiting",
            lambda: (m := api.md(ns, "good")) and condition_is(m, "Reconciling") and m,
        ),
    )

    # Done: trained, and serving it.
    succeed_trainer(api, good_pod)
    keep(
        "tj-succeeded",
        wait_for(
            "good Succeeded", lambda: (t := api.tj(ns, "good")) and phase(t) == "Succeeded" and t
        ),
    )
    keep(
        "md-ready",
        wait_for(
            "good Ready", lambda: (m := api.md(ns, "good")) and condition_is(m, "Ready") and m
        ),
    )

    # Failed: a gate not met, and the ModelDeployment that has nothing to serve.
    weak_pod = running_trainer_pod(api, ns, "weak-g1")
    said = trainer_result(weak_pod, reason="GateNotMet", accuracy=0.9, gate_min=0.99)
    finish_trainer(api, weak_pod, exit_code=12, message=said.to_termination_message())
    keep(
        "tj-failed",
        wait_for("weak Failed", lambda: (t := api.tj(ns, "weak")) and phase(t) == "Failed" and t),
    )
    keep(
        "md-failed",
        wait_for(
            "weak Degraded", lambda: (m := api.md(ns, "weak")) and phase(m) == "Degraded" and m
        ),
    )

    for name, obj in seen.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(obj))
    verdicts = kstatus_check(tmp_path)
    expected = {
        "tj-running": ("InProgress", "inProgress"),
        "md-waiting": ("InProgress", "inProgress"),
        "tj-succeeded": ("Current", "current"),
        "md-ready": ("Current", "current"),
        "tj-failed": ("Failed", "failed"),
        "md-failed": ("Failed", "failed"),
    }
    got = {name: (v["kstatus"], v["flux"]) for name, v in verdicts.items()}
    assert got == expected, json.dumps({n: seen[n].get("status") for n in seen}, indent=1)

    # The operator's own /metrics counted those reconciles, per kind.
    families = {f.name: f for f in text_string_to_metric_families(operator.metrics())}
    done = {
        (s.labels["kind"], s.labels["result"]): s.value
        for s in families["modelyard_operator_reconciles"].samples
        if s.name.endswith("_total")
    }
    assert done[("TrainingJob", "ok")] >= 2 and done[("ModelDeployment", "ok")] >= 2, done
    assert done[("TrainingJob", "error")] == done[("ModelDeployment", "error")] == 0, done
    durations = families["modelyard_operator_reconcile_duration_seconds"].samples
    assert any(s.name.endswith("_count") and s.value > 0 for s in durations)

    # ... and their status, as the alerts and the dashboard read it.
    def status_sample(name: str, **labels: str) -> float | None:
        for sample in families[name].samples:
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return None

    objects = {"namespace": ns}
    phase_of = "modelyard_trainingjob_status_phase"
    assert status_sample(phase_of, **objects, trainingjob="weak", phase="Failed") == 1
    assert status_sample(phase_of, **objects, trainingjob="weak", phase="Running") == 0
    assert status_sample(phase_of, **objects, trainingjob="good", phase="Succeeded") == 1
    md_phase = "modelyard_modeldeployment_status_phase"
    assert status_sample(md_phase, **objects, modeldeployment="good", phase="Ready") == 1
    assert status_sample(md_phase, **objects, modeldeployment="weak", phase="Degraded") == 1
    stalled = {"condition": "Stalled", "status": "True"}
    md_condition = "modelyard_modeldeployment_status_condition"
    assert status_sample(md_condition, **objects, modeldeployment="weak", **stalled) == 1
    assert status_sample(md_condition, **objects, modeldeployment="good", **stalled) == 0
    served = status_sample(
        "modelyard_modeldeployment_model_info", **objects, modeldeployment="good"
    )
    assert served == 1

    # A deleted object's series go with it.
    kubectl("delete", "trainingjob", "weak", "-n", ns, "--wait=true")
    wait_for(
        "weak's series gone",
        lambda: 'trainingjob="weak"' not in operator.metrics(),
        timeout=30,
    )
