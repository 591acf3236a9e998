"""The custom resources' status as series (modelyard.status_metrics): one-hot phases and
conditions, the canary's weight only while a canary runs, series gone with their object."""

from __future__ import annotations

from modelyard.status_metrics import ROLLOUT_PHASES, StatusMetrics
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families


def scrape(metrics: StatusMetrics) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry()
    registry.register(metrics)
    page = generate_latest(registry).decode()
    return {
        family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        for family in text_string_to_metric_families(page)
    }


def labels(**kv: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kv.items()))


CANARY = {
    "phase": "Progressing",
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Serving"},
        {"type": "RetrainingStalled", "status": "False", "reason": "Idle"},
    ],
    "readyReplicas": 3,
    "model": {"uri": "pvc://m/iris/v1", "version": "v1", "sha256": "ab" * 32},
    "drift": {"state": "Drifting", "since": "t", "lastChecked": "t", "modelVersion": "v1"},
    "rollout": {"phase": "Paused", "desiredWeight": 20, "actualWeight": 18.5},
    "retraining": {"since": "t", "runs": 4, "activeJob": "iris-retrain-4"},
    "modelHistory": [{"version": "v1", "uri": "u", "promotedAt": "t", "why": "Spec"}],
}


def test_a_model_deployment_mid_canary() -> None:
    metrics = StatusMetrics()
    metrics.observe("ModelDeployment", "ml", "iris", CANARY)
    got = scrape(metrics)
    md = {"namespace": "ml", "modeldeployment": "iris"}

    phases = got["modelyard_modeldeployment_status_phase"]
    assert phases[labels(**md, phase="Progressing")] == 1
    assert sum(phases.values()) == 1 and len(phases) == 4
    conditions = got["modelyard_modeldeployment_status_condition"]
    assert conditions[labels(**md, condition="Ready", status="True")] == 1
    assert conditions[labels(**md, condition="Ready", status="False")] == 0
    assert conditions[labels(**md, condition="RetrainingStalled", status="True")] == 0
    rollout = got["modelyard_modeldeployment_rollout_phase"]
    assert len(rollout) == len(ROLLOUT_PHASES) and rollout[labels(**md, phase="Paused")] == 1
    weight = got["modelyard_modeldeployment_canary_weight_percent"]
    assert weight[labels(**md, measure="desired")] == 20
    assert weight[labels(**md, measure="measured")] == 18.5
    assert got["modelyard_modeldeployment_drift_state"][labels(**md, state="Drifting")] == 1
    info = got["modelyard_modeldeployment_model_info"]
    assert info == {labels(**md, version="v1", sha256="ab" * 32): 1}
    assert got["modelyard_modeldeployment_ready_replicas"][labels(**md)] == 3
    assert got["modelyard_modeldeployment_retraining_runs"][labels(**md)] == 4
    assert got["modelyard_modeldeployment_retraining_active"][labels(**md)] == 1
    assert got["modelyard_modeldeployment_model_history_entries"][labels(**md)] == 1


def test_a_rolled_back_canary_weighs_nothing_and_no_rollout_is_idle() -> None:
    metrics = StatusMetrics()
    rolled_back = {**CANARY, "rollout": {"phase": "RolledBack", "desiredWeight": 20}}
    metrics.observe("ModelDeployment", "ml", "rolled", rolled_back)
    metrics.observe("ModelDeployment", "ml", "plain", {"phase": "Ready"})
    got = scrape(metrics)
    weight = got["modelyard_modeldeployment_canary_weight_percent"]
    for name in ("rolled", "plain"):
        assert weight[labels(namespace="ml", modeldeployment=name, measure="desired")] == 0
    rollout = got["modelyard_modeldeployment_rollout_phase"]
    assert rollout[labels(namespace="ml", modeldeployment="rolled", phase="RolledBack")] == 1
    assert rollout[labels(namespace="ml", modeldeployment="plain", phase="Idle")] == 1
    # No drift verdict and no retraining: no series that would claim one.
    assert not any(
        dict(k)["modeldeployment"] == "plain"
        for k in got.get("modelyard_modeldeployment_drift_state", {})
    )
    assert labels(namespace="ml", modeldeployment="plain") not in got.get(
        "modelyard_modeldeployment_retraining_runs", {}
    )


def test_training_jobs_and_forgetting() -> None:
    metrics = StatusMetrics()
    failed = {
        "phase": "Failed",
        "conditions": [{"type": "Complete", "status": "False", "reason": "GateNotMet"}],
        "metrics": {"accuracy": 0.9, "f1": 0.88},
    }
    metrics.observe("TrainingJob", "ml", "weak", failed)
    metrics.observe("TrainingJob", "ml", "good", {"phase": "Succeeded"})
    got = scrape(metrics)
    tj = "modelyard_trainingjob_status_phase"
    assert got[tj][labels(namespace="ml", trainingjob="weak", phase="Failed")] == 1
    assert got[tj][labels(namespace="ml", trainingjob="good", phase="Failed")] == 0
    accuracy = labels(namespace="ml", trainingjob="weak", metric="accuracy")
    assert got["modelyard_trainingjob_model_metric"][accuracy] == 0.9
    condition = labels(namespace="ml", trainingjob="weak", condition="Complete", status="False")
    assert got["modelyard_trainingjob_status_condition"][condition] == 1

    metrics.forget("TrainingJob", "ml", "weak")
    got = scrape(metrics)
    assert all(dict(k)["trainingjob"] == "good" for k in got[tj])
    metrics.clear()
    assert not scrape(metrics).get(tj)
