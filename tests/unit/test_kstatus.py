"""kstatus' abnormal-true conditions (modelyard.kstatus): Reconciling while working toward the
spec, Stalled when it cannot get there without a change, both always present."""

from __future__ import annotations

import pytest
from modelyard.api import Condition, ModelDeploymentStatus, TrainingJobStatus
from modelyard.kstatus import with_kstatus

AT = "2026-12-03T12:00:00Z"


def cond(type_: str, status: str, reason: str, message: str = "") -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=AT,  # type: ignore[arg-type]
    )


def kstatus(status: TrainingJobStatus | ModelDeploymentStatus) -> dict[str, tuple[str, str]]:
    done = with_kstatus(status, generation=3, previous=[], at=AT)
    found = {c.type: (c.status, c.reason) for c in done.conditions}
    assert all(
        c.observed_generation == 3 for c in done.conditions if c.type in ("Reconciling", "Stalled")
    )
    return {k: v for k, v in found.items() if k in ("Reconciling", "Stalled")}


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Pending", {"Reconciling": ("True", "JobPending"), "Stalled": ("False", "AsExpected")}),
        ("Running", {"Reconciling": ("True", "JobPending"), "Stalled": ("False", "AsExpected")}),
        ("Succeeded", {"Reconciling": ("False", "AsExpected"), "Stalled": ("False", "AsExpected")}),
        ("Suspended", {"Reconciling": ("False", "AsExpected"), "Stalled": ("False", "AsExpected")}),
        ("Failed", {"Reconciling": ("False", "AsExpected"), "Stalled": ("True", "GateNotMet")}),
    ],
)
def test_training_job(phase: str, expected: dict[str, tuple[str, str]]) -> None:
    status = TrainingJobStatus(
        phase=phase,  # type: ignore[arg-type]
        conditions=[
            cond("Succeeded", "Unknown", "JobPending"),
            cond("Failed", "True", "GateNotMet"),
        ],
    )
    assert kstatus(status) == expected


@pytest.mark.parametrize(
    ("phase", "conditions", "expected"),
    [
        (
            "Ready",
            [cond("Ready", "True", "ModelServing")],
            {"Reconciling": ("False", "AsExpected"), "Stalled": ("False", "AsExpected")},
        ),
        (
            "Progressing",
            [cond("Ready", "False", "CanaryInProgress")],
            {"Reconciling": ("True", "CanaryInProgress"), "Stalled": ("False", "AsExpected")},
        ),
        (
            "Pending",
            [cond("Ready", "False", "ScaledToZero")],
            {"Reconciling": ("False", "AsExpected"), "Stalled": ("False", "AsExpected")},
        ),
        (
            "Degraded",
            [cond("Ready", "False", "CrashLoop"), cond("Degraded", "True", "CrashLoopBackOff")],
            {"Reconciling": ("False", "AsExpected"), "Stalled": ("True", "CrashLoopBackOff")},
        ),
        (
            "Degraded",
            [
                cond("Degraded", "True", "CanaryRolledBack"),
                cond("Stalled", "True", "AnalysisFailed"),
            ],
            {"Reconciling": ("False", "AsExpected"), "Stalled": ("True", "AnalysisFailed")},
        ),
    ],
)
def test_model_deployment(
    phase: str, conditions: list[Condition], expected: dict[str, tuple[str, str]]
) -> None:
    assert kstatus(ModelDeploymentStatus(phase=phase, conditions=conditions)) == expected  # type: ignore[arg-type]


def test_the_transition_time_moves_only_on_a_transition() -> None:
    before = with_kstatus(
        TrainingJobStatus(phase="Running"), generation=1, previous=[], at="2026-12-03T11:00:00Z"
    )
    after = with_kstatus(
        TrainingJobStatus(phase="Running"), generation=1, previous=before.conditions, at=AT
    )
    assert [c.last_transition_time for c in after.conditions] == ["2026-12-03T11:00:00Z"] * 2
