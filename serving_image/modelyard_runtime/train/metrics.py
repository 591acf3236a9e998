"""Metrics on held-out data, cross-validation scorers, and the validation gate."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    make_scorer,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from modelyard_runtime.contract import (
    CLASSIFICATION_METRICS,
    LOWER_IS_BETTER,
    REGRESSION_METRICS,
    GateResult,
    Task,
    ValidationResult,
)
from modelyard_runtime.spec import GateThreshold

PROBA_METRICS = frozenset({"roc_auc"})


def default_metrics(task: Task) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def _label_metric(fn: Callable[..., float], classes: Sequence[Any]) -> Callable[..., float]:
    """Binary: score the positive (greater) class, as predict_proba's column 1 does; multiclass:
    the unweighted mean over classes."""
    if len(classes) == 2:
        positive = sorted(classes)[-1]
        return lambda y, p: float(fn(y, p, pos_label=positive, zero_division=0))
    return lambda y, p: float(fn(y, p, average="macro", zero_division=0))


def _roc_auc(classes: Sequence[Any]) -> Callable[[Any, Any], float]:
    if len(classes) == 2:
        # predict_proba gives both columns; sklearn's scorer already hands over column 1.
        return lambda y, proba: float(
            roc_auc_score(y, proba[:, 1] if np.ndim(proba) == 2 else proba)
        )
    labels = list(classes)
    return lambda y, proba: float(
        roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels)
    )


def metric_functions(task: Task, classes: Sequence[Any]) -> dict[str, Callable[..., float]]:
    """Functions of (y_true, y_pred) — or of (y_true, proba) for PROBA_METRICS."""
    if task == "regression":
        return {
            "r2": lambda y, p: float(r2_score(y, p)),
            "rmse": lambda y, p: float(root_mean_squared_error(y, p)),
            "mae": lambda y, p: float(mean_absolute_error(y, p)),
        }
    return {
        "accuracy": lambda y, p: float(accuracy_score(y, p)),
        "f1": _label_metric(f1_score, classes),
        "precision": _label_metric(precision_score, classes),
        "recall": _label_metric(recall_score, classes),
        "roc_auc": _roc_auc(classes),
    }


def evaluate(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    task: Task,
    metrics: Iterable[str],
    classes: Sequence[Any],
) -> dict[str, float]:
    """Held-out metrics; probability metrics only when the model has predict_proba."""
    functions = metric_functions(task, classes)
    predicted = model.predict(x)
    proba = model.predict_proba(x) if hasattr(model, "predict_proba") else None
    results: dict[str, float] = {}
    for name in metrics:
        if name in PROBA_METRICS:
            if proba is not None:
                results[name] = round(functions[name](y, proba), 6)
        else:
            results[name] = round(functions[name](y, predicted), 6)
    return results


def cv_scorers(
    task: Task,
    metrics: Iterable[str],
    classes: Sequence[Any],
    has_proba: bool,
) -> dict[str, Any]:
    """Scorers for cross-validation. Scores are 'greater is better' (sklearn negates error
    metrics); ``natural_cv_score`` undoes that for reporting."""
    functions = metric_functions(task, classes)
    scorers: dict[str, Any] = {}
    for name in metrics:
        if name in PROBA_METRICS:
            if has_proba:
                scorers[name] = make_scorer(functions[name], response_method="predict_proba")
            continue
        scorers[name] = make_scorer(functions[name], greater_is_better=name not in LOWER_IS_BETTER)
    return scorers


def natural_cv_score(metric: str, score: float) -> float:
    return -score if metric in LOWER_IS_BETTER else score


def evaluate_gate(gate: Sequence[GateThreshold], metrics: Mapping[str, float]) -> ValidationResult:
    """Every threshold must hold on the held-out metrics. A metric the run could not compute
    (e.g. roc_auc without predict_proba) fails its threshold, with NaN as its value."""
    results = []
    for threshold in gate:
        value = metrics.get(threshold.metric, float("nan"))
        passed = not np.isnan(value)
        if threshold.min is not None and not value >= threshold.min:
            passed = False
        if threshold.max is not None and not value <= threshold.max:
            passed = False
        results.append(
            GateResult(
                metric=threshold.metric,
                value=value,
                min=threshold.min,
                max=threshold.max,
                passed=passed,
            )
        )
    return ValidationResult(passed=all(r.passed for r in results), results=results)


def describe_gate_failure(result: ValidationResult) -> str:
    failed = []
    for r in result.results:
        if r.passed:
            continue
        bounds = " and ".join(
            part
            for part in (
                f">= {r.min}" if r.min is not None else "",
                f"<= {r.max}" if r.max is not None else "",
            )
            if part
        )
        failed.append(f"{r.metric}={r.value:.4g} (needs {bounds})")
    return "validation gate not met: " + ", ".join(failed)
