"""One Event per phase transition, Warning for the bad phases, none otherwise."""

from __future__ import annotations

from modelyard.api import Condition, ModelDeploymentStatus, TrainingJobStatus
from modelyard.events import Event, phase_event

AT = "2024-01-02T03:04:05Z"


def test_no_event_without_a_transition() -> None:
    assert phase_event("Running", TrainingJobStatus(phase="Running")) is None
    assert phase_event("Running", TrainingJobStatus()) is None


def test_a_transition_posts_its_first_saying_condition() -> None:
    status = ModelDeploymentStatus(
        phase="Degraded",
        conditions=[
            Condition(
                type="Ready",
                status="False",
                reason="OOMKilled",
                message="",
                last_transition_time=AT,
            ),
            Condition(
                type="Degraded",
                status="True",
                reason="OOMKilled",
                message="exit 137",
                last_transition_time=AT,
            ),
        ],
    )
    assert phase_event("Ready", status) == Event("Degraded", "exit 137", warning=True)


def test_a_first_phase_is_a_normal_event_named_after_it() -> None:
    assert phase_event(None, TrainingJobStatus(phase="Pending")) == Event(
        "Pending", "Pending", warning=False
    )
