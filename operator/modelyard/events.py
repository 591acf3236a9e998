"""Which Event a status write posts: one per phase transition, none otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.api import ModelDeploymentStatus, TrainingJobStatus

WARNING_PHASES = ("Failed", "Degraded")


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    warning: bool


def phase_event(
    before: str | None, after: TrainingJobStatus | ModelDeploymentStatus
) -> Event | None:
    """An Event when the phase moved (reason: the new phase; message: the first condition
    that says something), else ``None``."""
    if after.phase is None or before == after.phase:
        return None
    message = next((c.message for c in after.conditions if c.message), after.phase)
    return Event(reason=after.phase, message=message, warning=after.phase in WARNING_PHASES)
