"""The validation gate and the metric helpers."""

from __future__ import annotations

import numpy as np
import pytest
from modelyard_runtime.spec import GateThreshold
from modelyard_runtime.train.metrics import (
    describe_gate_failure,
    evaluate_gate,
    metric_functions,
    natural_cv_score,
)


def test_empty_gate_passes() -> None:
    assert evaluate_gate([], {"accuracy": 0.1}).passed


def test_min_and_max_bounds() -> None:
    gate = [GateThreshold(metric="accuracy", min=0.9), GateThreshold(metric="rmse", max=5.0)]
    assert evaluate_gate(gate, {"accuracy": 0.9, "rmse": 5.0}).passed
    result = evaluate_gate(gate, {"accuracy": 0.89, "rmse": 4.0})
    assert not result.passed
    assert [r.passed for r in result.results] == [False, True]
    assert "accuracy=0.89" in describe_gate_failure(result)
    assert "rmse" not in describe_gate_failure(result)


def test_band_with_min_and_max() -> None:
    gate = [GateThreshold(metric="r2", min=0.5, max=0.99)]
    assert evaluate_gate(gate, {"r2": 0.7}).passed
    assert not evaluate_gate(gate, {"r2": 0.995}).passed


def test_missing_metric_fails_its_threshold() -> None:
    result = evaluate_gate([GateThreshold(metric="roc_auc", min=0.5)], {"accuracy": 1.0})
    assert not result.passed


def test_binary_metrics_score_the_greater_label_even_for_strings() -> None:
    functions = metric_functions("classification", ["no", "yes"])
    y_true = np.array(["yes", "no", "yes", "yes"])
    y_pred = np.array(["yes", "no", "no", "yes"])
    assert functions["recall"](y_true, y_pred) == pytest.approx(2 / 3)
    assert functions["precision"](y_true, y_pred) == pytest.approx(1.0)
    proba = np.array([[0.1, 0.9], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    assert functions["roc_auc"](y_true, proba) == pytest.approx(1.0)


def test_multiclass_metrics_are_macro() -> None:
    functions = metric_functions("classification", [0, 1, 2])
    y_true = np.array([0, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 2])
    assert functions["recall"](y_true, y_pred) == pytest.approx((1 + 1 + 0.5) / 3)


def test_error_metrics_are_reported_positive_after_cv() -> None:
    assert natural_cv_score("rmse", -2.5) == 2.5
    assert natural_cv_score("r2", 0.8) == 0.8
