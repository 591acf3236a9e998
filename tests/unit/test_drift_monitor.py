"""The drift monitor's shell helpers: which ModelDeployments are due a check, and which pods'
windows to pool."""

from __future__ import annotations

import time
from typing import Any

from modelyard import naming
from modelyard.api import DriftMonitoring, ModelStatus
from modelyard.drift_monitor import Schedule, drift_tests
from modelyard.serving import ready_server_pods

SERVED = ModelStatus(uri="pvc://models/iris/v2", version="v2", sha256="ab" * 32)


def pod(name: str, uri: str = SERVED.uri, ready: str = "True", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {naming.ANNOTATION_MODEL_URI: uri}, **meta},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def test_only_ready_pods_of_the_served_model_are_pooled() -> None:
    pods = [
        pod("b"),
        pod("a"),
        pod("old-model", uri="pvc://models/iris/v1"),
        pod("starting", ready="False"),
        pod("leaving", deletionTimestamp="2026-12-03T00:00:00Z"),
    ]
    assert ready_server_pods(pods, SERVED) == ["a", "b"]


def test_a_check_is_due_after_its_interval_and_monitoring_off_forgets_it() -> None:
    schedule = Schedule()
    spec = DriftMonitoring.model_validate({"enabled": True, "interval": "5s"})
    schedule.set("ns", "iris", spec)
    assert schedule.due(time.monotonic()) == []
    assert schedule.due(time.monotonic() + 6) == [("ns", "iris")]
    # An unchanged spec does not push the check back; a shorter interval brings it forward.
    schedule.set("ns", "iris", spec)
    assert schedule.due(time.monotonic() + 6) == [("ns", "iris")]
    schedule.set("ns", "iris", None)
    assert len(schedule) == 0 and schedule.get("ns", "iris") is None


def test_the_pods_are_asked_for_the_same_tests_as_the_spec() -> None:
    spec = DriftMonitoring.model_validate(
        {"enabled": True, "alpha": 0.01, "correction": "FDR", "minEffect": 0.2, "minSamples": 50}
    )
    query = drift_tests(spec).to_query()
    assert query == {
        "alpha": "0.01",
        "correction": "FDR",
        "minEffect": "0.2",
        "minSamples": "50",
        "predictionDrift": "true",
    }
