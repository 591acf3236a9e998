"""Plain-dict Kubernetes objects for the operator's pure-core tests (no cluster)."""

from __future__ import annotations

import copy
from typing import Any

from modelyard_runtime.contract import (
    Comparison,
    DatasetInfo,
    GateResult,
    ModelRef,
    TrainerResult,
    ValidationResult,
)

UID = "0123456789abcdef-0000"
SHA = "a" * 64

IRIS_SPEC: dict[str, Any] = {
    "dataset": {"builtin": "iris"},
    "model": {"estimator": "LogisticRegression", "hyperparameters": {"max_iter": 500}},
    "validation": {"cvFolds": 5, "gate": [{"metric": "accuracy", "min": 0.9}]},
}


def training_job(
    spec: dict[str, Any] | None = None,
    *,
    name: str = "iris",
    generation: int = 1,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "ml", "uid": UID, "generation": generation},
        "spec": copy.deepcopy(spec if spec is not None else IRIS_SPEC),
    }
    if status is not None:
        body["status"] = status
    return body


def model_deployment(
    spec: dict[str, Any] | None = None,
    *,
    name: str = "iris",
    generation: int = 1,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ml", "uid": "md-uid-1", "generation": generation},
        "spec": copy.deepcopy(spec or {"model": {"trainingJobRef": {"name": "iris"}}}),
    }
    if status is not None:
        body["status"] = status
    return body


def job(
    *,
    name: str = "iris-g1",
    active: int = 0,
    succeeded: int = 0,
    failed: int = 0,
    condition: tuple[str, str] | None = None,
    suspended: bool = False,
    backoff_limit: int = 2,
) -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": "2024-01-01T00:00:00Z"}
    for key, value in (("active", active), ("succeeded", succeeded), ("failed", failed)):
        if value:
            status[key] = value
    conditions = []
    if condition is not None:
        type_, reason = condition
        conditions.append(
            {"type": type_, "status": "True", "reason": reason, "message": f"{reason} happened"}
        )
        if type_ == "Complete":
            status["completionTime"] = "2024-01-01T00:05:00Z"
    if suspended:
        conditions.append({"type": "Suspended", "status": "True", "reason": "JobSuspended"})
    if conditions:
        status["conditions"] = conditions
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "ml", "generation": 1},
        "spec": {"backoffLimit": backoff_limit, "suspend": suspended},
        "status": status,
    }


def pod(
    name: str = "iris-g1-abcde",
    *,
    phase: str = "Running",
    created: str = "2024-01-01T00:00:01Z",
    container: str = "trainer",
    waiting: tuple[str, str] | None = None,
    terminated: dict[str, Any] | None = None,
    last_terminated: dict[str, Any] | None = None,
    unschedulable: str | None = None,
    restarts: int = 0,
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {}} if phase == "Running" else {}
    if waiting is not None:
        state = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    if terminated is not None:
        state = {"terminated": terminated}
    status: dict[str, Any] = {"phase": phase, "conditions": []}
    if unschedulable is not None:
        status["conditions"].append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
            }
        )
    else:
        container_status: dict[str, Any] = {
            "name": container,
            "state": state,
            "restartCount": restarts,
        }
        if last_terminated is not None:
            container_status["lastState"] = {"terminated": last_terminated}
        status["containerStatuses"] = [container_status]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ml", "creationTimestamp": created},
        "status": status,
    }


def result(
    reason: str = "Succeeded",
    *,
    passed: bool = True,
    accuracy: float = 0.97,
    message: str = "",
    comparison: Comparison | None = None,
) -> str:
    """A trainer termination message, as the runtime writes it."""
    gate = GateResult(metric="accuracy", value=accuracy, min=0.9, passed=passed)
    with_model = reason in ("Succeeded", "GateNotMet")
    return TrainerResult(
        reason=reason,  # type: ignore[arg-type]
        message=message,
        task="classification",
        model=ModelRef(
            uri="pvc://modelyard-models/iris/v1-01234567", version="v1-01234567", sha256=SHA
        )
        if with_model
        else None,
        metrics={"accuracy": accuracy, "f1": 0.96} if with_model else {},
        best_params={"C": 1.0} if with_model else None,
        dataset=DatasetInfo(source="builtin:iris", digest="d" * 64, rows=150, columns=4)
        if with_model
        else None,
        validation=ValidationResult(passed=passed, results=[gate]) if with_model else None,
        comparison=comparison,
    ).to_termination_message()


def terminated(code: int, message: str = "", reason: str = "Error") -> dict[str, Any]:
    return {"exitCode": code, "reason": reason, "message": message}
