"""The custom resources' status as Prometheus series, in kube-state-metrics' style: what the
alerts and the dashboard read (phases, conditions, drift verdict, rollout weight, retraining).

The reconciler hands every status it writes to :meth:`StatusMetrics.observe` (also one that
did not change: after a restart the first reconcile repopulates everything) and
:meth:`StatusMetrics.forget` when an object is gone. A scrape renders the latest of each, so
a series disappears with its object, and an enumerated state (``phase``, ``state``) carries a
0 for every value but the current one: ``== 1`` selects it, and ``changes()`` sees it move.
Only the leader observes; a replica that loses the Lease clears its view.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, get_args

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelyard.api import (
    MODEL_DEPLOYMENT_KIND,
    TRAINING_JOB_KIND,
    DriftState,
    RolloutPhase,
    ServingPhase,
    TrainingPhase,
)

TRAINING_PHASES: tuple[str, ...] = get_args(TrainingPhase)
SERVING_PHASES: tuple[str, ...] = get_args(ServingPhase)
ROLLOUT_PHASES: tuple[str, ...] = get_args(RolloutPhase)
DRIFT_STATES: tuple[str, ...] = get_args(DriftState)
CONDITION_STATUSES = ("True", "False", "Unknown")

Key = tuple[str, str, str]  # kind, namespace, name


class StatusMetrics(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[Key, dict[str, Any]] = {}

    def observe(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """``status`` as written (the wire form: camelCase, no nulls)."""
        with self._lock:
            self._statuses[(kind, namespace, name)] = status

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._statuses.pop((kind, namespace, name), None)

    def clear(self) -> None:
        with self._lock:
            self._statuses.clear()

    def describe(self) -> Iterable[Metric]:
        return list(_families().values())

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            statuses = sorted(self._statuses.items())
        families = _families()
        for (kind, namespace, name), status in statuses:
            if kind == TRAINING_JOB_KIND:
                _training_job(families, namespace, name, status)
            elif kind == MODEL_DEPLOYMENT_KIND:
                _model_deployment(families, namespace, name, status)
        return list(families.values())


def _families() -> dict[str, GaugeMetricFamily]:
    tj, md = ["namespace", "trainingjob"], ["namespace", "modeldeployment"]
    specs = {
        "tj_phase": (
            "modelyard_trainingjob_status_phase",
            "TrainingJob phase (1: current)",
            [*tj, "phase"],
        ),
        "tj_condition": (
            "modelyard_trainingjob_status_condition",
            "TrainingJob condition by status (1: current)",
            [*tj, "condition", "status"],
        ),
        "tj_metric": (
            "modelyard_trainingjob_model_metric",
            "Validation metrics of the model a TrainingJob stored",
            [*tj, "metric"],
        ),
        "md_phase": (
            "modelyard_modeldeployment_status_phase",
            "ModelDeployment phase (1: current)",
            [*md, "phase"],
        ),
        "md_condition": (
            "modelyard_modeldeployment_status_condition",
            "ModelDeployment condition by status (1: current)",
            [*md, "condition", "status"],
        ),
        "md_model": (
            "modelyard_modeldeployment_model_info",
            "The model a ModelDeployment serves (always 1)",
            [*md, "version", "sha256"],
        ),
        "md_replicas": ("modelyard_modeldeployment_ready_replicas", "Ready server replicas", md),
        "md_drift": (
            "modelyard_modeldeployment_drift_state",
            "The pooled drift verdict (1: current)",
            [*md, "state"],
        ),
        "md_rollout": (
            "modelyard_modeldeployment_rollout_phase",
            "Canary rollout phase (1: current; Idle when none ever ran)",
            [*md, "phase"],
        ),
        "md_weight": (
            "modelyard_modeldeployment_canary_weight_percent",
            "The canary's traffic share: desired by the step, measured from requests (0: none)",
            [*md, "measure"],
        ),
        "md_runs": (
            "modelyard_modeldeployment_retraining_runs",
            "Retraining TrainingJobs created so far for this ModelDeployment",
            md,
        ),
        "md_active": (
            "modelyard_modeldeployment_retraining_active",
            "1 while a retraining TrainingJob or its candidate is in flight",
            md,
        ),
        "md_history": (
            "modelyard_modeldeployment_model_history_entries",
            "Champions kept in status.modelHistory",
            md,
        ),
    }
    return {
        key: GaugeMetricFamily(name, doc, labels=labels)
        for key, (name, doc, labels) in specs.items()
    }


def _one_hot(
    family: GaugeMetricFamily, labels: list[str], values: tuple[str, ...], current: str | None
) -> None:
    for value in values:
        family.add_metric([*labels, value], 1.0 if value == current else 0.0)


def _conditions(family: GaugeMetricFamily, labels: list[str], status: dict[str, Any]) -> None:
    for condition in status.get("conditions") or []:
        _one_hot(family, [*labels, condition["type"]], CONDITION_STATUSES, condition.get("status"))


def _training_job(
    families: dict[str, GaugeMetricFamily], namespace: str, name: str, status: dict[str, Any]
) -> None:
    labels = [namespace, name]
    _one_hot(families["tj_phase"], labels, TRAINING_PHASES, status.get("phase"))
    _conditions(families["tj_condition"], labels, status)
    for metric, value in sorted((status.get("metrics") or {}).items()):
        if isinstance(value, int | float):
            families["tj_metric"].add_metric([*labels, metric], float(value))


def _model_deployment(
    families: dict[str, GaugeMetricFamily], namespace: str, name: str, status: dict[str, Any]
) -> None:
    labels = [namespace, name]
    _one_hot(families["md_phase"], labels, SERVING_PHASES, status.get("phase"))
    _conditions(families["md_condition"], labels, status)
    if model := status.get("model"):
        families["md_model"].add_metric([*labels, model["version"], model.get("sha256") or ""], 1.0)
    families["md_replicas"].add_metric(labels, float(status.get("readyReplicas") or 0))
    if drift := status.get("drift"):
        _one_hot(families["md_drift"], labels, DRIFT_STATES, drift.get("state"))
    rollout = status.get("rollout") or {}
    _one_hot(families["md_rollout"], labels, ROLLOUT_PHASES, rollout.get("phase", "Idle"))
    canary = rollout.get("phase") in ("Progressing", "Paused", "Promoting")
    desired = float(rollout.get("desiredWeight") or 0) if canary else 0.0
    actual = float(rollout.get("actualWeight") or 0) if canary else 0.0
    families["md_weight"].add_metric([*labels, "desired"], desired)
    families["md_weight"].add_metric([*labels, "measured"], actual)
    if (retraining := status.get("retraining")) is not None:
        families["md_runs"].add_metric(labels, float(retraining.get("runs") or 0))
        busy = bool(retraining.get("activeJob") or retraining.get("candidate"))
        families["md_active"].add_metric(labels, 1.0 if busy else 0.0)
    families["md_history"].add_metric(labels, float(len(status.get("modelHistory") or [])))
