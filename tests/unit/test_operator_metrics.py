"""The operator's own metrics (modelyard.operator_metrics): each reconcile counted by result
and timed, the queue gauge back to zero after it, a coalesced trigger counted but not timed."""

from __future__ import annotations

import pytest
from modelyard.operator_metrics import OperatorMetrics
from prometheus_client import generate_latest


def sample(metrics: OperatorMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def test_reconciles_are_counted_timed_and_queued() -> None:
    metrics = OperatorMetrics()
    with metrics.reconcile("TrainingJob"):
        assert sample(metrics, "modelyard_operator_reconciles_queued", kind="TrainingJob") == 1
    with pytest.raises(RuntimeError), metrics.reconcile("TrainingJob"):
        raise RuntimeError("apiserver went away")
    with metrics.reconcile("ModelDeployment") as outcome:
        outcome.result = "coalesced"
    ok = sample(metrics, "modelyard_operator_reconciles_total", kind="TrainingJob", result="ok")
    error = sample(
        metrics, "modelyard_operator_reconciles_total", kind="TrainingJob", result="error"
    )
    assert (ok, error) == (1, 1)
    coalesced = {"kind": "ModelDeployment", "result": "coalesced"}
    assert sample(metrics, "modelyard_operator_reconciles_total", **coalesced) == 1
    assert (
        sample(metrics, "modelyard_operator_reconcile_duration_seconds_count", kind="TrainingJob")
        == 2
    )
    assert (
        sample(
            metrics, "modelyard_operator_reconcile_duration_seconds_count", kind="ModelDeployment"
        )
        == 0
    )
    assert sample(metrics, "modelyard_operator_reconciles_queued", kind="TrainingJob") == 0


def test_every_series_exists_from_the_start() -> None:
    page = generate_latest(OperatorMetrics().registry).decode()
    for kind in ("TrainingJob", "ModelDeployment"):
        assert f'modelyard_operator_retries_pending{{kind="{kind}"}} 0.0' in page
        assert f'modelyard_operator_reconciles_total{{kind="{kind}",result="error"}} 0.0' in page
