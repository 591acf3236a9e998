"""Status conditions whose ``lastTransitionTime`` moves only on a real transition."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from modelyard.api import Condition

Status = Literal["True", "False", "Unknown"]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp as the API server writes it (``2026-12-03T09:00:00Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def condition(
    type_: str,
    status: Status,
    reason: str,
    message: str,
    *,
    generation: int,
    previous: Iterable[Condition] = (),
    at: str,
) -> Condition:
    """A condition of ``type_``; keeps the previous ``lastTransitionTime`` unless ``status``
    changed (a new reason or message alone is not a transition)."""
    earlier = next((c for c in previous if c.type == type_), None)
    since = earlier.last_transition_time if earlier and earlier.status == status else at
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
