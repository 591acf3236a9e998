"""kstatus' abnormal-true conditions, derived from the status the core decided. Pure.

Flux, ``kubectl wait`` users and cli-utils' kstatus read a custom resource as InProgress while
``Reconciling`` is True, Failed while ``Stalled`` is True, Current otherwise (once
``observedGeneration`` caught up). Both are written on every status, so a tool never has to
guess from their absence:

- ``Reconciling`` True while the object works toward its spec: a TrainingJob Pending or
  Running; a ModelDeployment Pending or Progressing (rolling out, a canary, waiting for a
  model) -- not one scaled to zero on purpose;
- ``Stalled`` True when it cannot get there without a change: a TrainingJob Failed; a
  ModelDeployment Degraded, or its canary rolled back (the rollout's own reason).
"""

from __future__ import annotations

from modelyard.api import Condition, ModelDeploymentStatus, TrainingJobStatus
from modelyard.conditions import Status, condition

RECONCILING = "Reconciling"
STALLED = "Stalled"


def _find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def with_kstatus(
    status: TrainingJobStatus | ModelDeploymentStatus,
    *,
    generation: int,
    previous: list[Condition],
    at: str,
) -> TrainingJobStatus | ModelDeploymentStatus:
    """``status`` with ``Reconciling`` and ``Stalled`` set from its phase and conditions."""
    conditions = [c for c in status.conditions if c.type not in (RECONCILING, STALLED)]
    told = _find(status.conditions, STALLED)  # a rollout's own Stalled, when it set one

    def make(type_: str, state: Status, said: Condition | None, fallback: str) -> Condition:
        reason = said.reason if said is not None else fallback
        message = said.message if said is not None else ""
        return condition(
            type_, state, reason, message, generation=generation, previous=previous, at=at
        )

    if isinstance(status, TrainingJobStatus):
        reconciling = status.phase in ("Pending", "Running")
        stalled = status.phase == "Failed"
        why_stalled = _find(conditions, "Failed")
        why_reconciling = _find(conditions, "Succeeded")
    else:
        phase = status.phase
        ready = _find(conditions, "Ready")
        scaled_to_zero = ready is not None and ready.reason == "ScaledToZero"
        reconciling = phase in ("Pending", "Progressing") and not scaled_to_zero
        stalled = phase == "Degraded" or (told is not None and told.status == "True")
        why_stalled = told if told is not None and told.status == "True" else None
        why_stalled = why_stalled or _find(conditions, "Degraded")
        why_reconciling = ready
    conditions.append(
        make(RECONCILING, "True", why_reconciling, "Reconciling")
        if reconciling
        else make(RECONCILING, "False", None, "AsExpected")
    )
    conditions.append(
        make(STALLED, "True", why_stalled, "Stalled")
        if stalled
        else make(STALLED, "False", None, "AsExpected")
    )
    return status.model_copy(update={"conditions": conditions})
