"""Drift monitoring's decisions: persistence, what is worth a status write, Events, the
DataDrift condition, and that Ready never depends on drift."""

from __future__ import annotations

import pytest
from modelyard import monitoring
from modelyard.api import DriftMonitoring, DriftStatus, FeatureDrift
from modelyard.monitoring import CheckResult, Streaks, next_verdict

SPEC = DriftMonitoring(enabled=True, persistence=2)
T0 = "2026-01-01T00:00:00Z"
SHIFTED = FeatureDrift(
    name="petal_length", test="KS", statistic=0.4, p_value=1e-9, effect=0.6, drifted=True
)
CALM = FeatureDrift(name="petal_length", test="KS", statistic=0.02, p_value=0.7, effect=0.01)


def result(state: str, version: str = "v1") -> CheckResult:
    feature = SHIFTED if state == "Drifting" else CALM
    return CheckResult(state, version, 500, 2, features=(feature,))  # type: ignore[arg-type]


def run(states: list[str], spec: DriftMonitoring = SPEC) -> list[str]:
    verdict, streaks, seen = None, Streaks(), []
    for i, state in enumerate(states):
        verdict, streaks = next_verdict(
            verdict, streaks, result(state), spec, at=f"2026-01-01T00:{i:02d}:00Z"
        )
        seen.append(verdict.state)
    return seen


def test_drift_needs_persistence_checks_in_a_row() -> None:
    assert run(["Drifting", "NoDrift", "Drifting", "Drifting"]) == [
        "NoDrift",
        "NoDrift",
        "NoDrift",
        "Drifting",
    ]


def test_three_clean_checks_clear_drift() -> None:
    assert run(
        ["Drifting", "Drifting", "NoDrift", "NoDrift", "Drifting", "NoDrift", "NoDrift", "NoDrift"]
    )[-6:] == [
        "Drifting",
        "Drifting",
        "Drifting",
        "Drifting",
        "Drifting",
        "NoDrift",
    ]


def test_insufficient_data_is_never_drift_and_does_not_clear_it() -> None:
    assert run(["InsufficientData", "NoDrift"]) == ["InsufficientData", "NoDrift"]
    assert run(["Drifting", "Drifting", "InsufficientData"])[-1] == "Drifting"
    # a check without data breaks the streak: drift needs persistence consecutive checks
    assert run(["Drifting", "InsufficientData", "Drifting"])[-1] == "NoDrift"


def test_persistence_one_reacts_at_once() -> None:
    assert run(["Drifting"], DriftMonitoring(enabled=True, persistence=1)) == ["Drifting"]


def test_since_moves_only_on_a_verdict_change() -> None:
    first, streaks = next_verdict(None, Streaks(), result("NoDrift"), SPEC, at=T0)
    again, _ = next_verdict(first, streaks, result("NoDrift"), SPEC, at="2026-01-01T00:01:00Z")
    assert (again.since, again.last_checked) == (T0, "2026-01-01T00:01:00Z")


def test_a_new_model_starts_its_verdict_afresh() -> None:
    drifting = DriftStatus(state="Drifting", since=T0, last_checked=T0, model_version="v1")
    verdict, _ = next_verdict(drifting, Streaks(drifting=2), result("NoDrift", "v2"), SPEC, at=T0)
    assert (verdict.state, verdict.model_version) == ("NoDrift", "v2")


def test_a_restarted_operator_keeps_a_drifting_verdict() -> None:
    drifting = DriftStatus(state="Drifting", since=T0, last_checked=T0, model_version="v1")
    streaks = Streaks.resumed(drifting, SPEC)
    verdict, _ = next_verdict(drifting, streaks, result("NoDrift"), SPEC, at=T0)
    assert verdict.state == "Drifting"


@pytest.mark.parametrize(
    ("written_state", "written_at", "state", "expected"),
    [
        (None, None, "NoDrift", True),
        ("NoDrift", "2026-01-01T00:00:00Z", "Drifting", True),
        ("NoDrift", "2026-01-01T00:00:00Z", "NoDrift", False),
        ("NoDrift", "2025-12-31T23:55:00Z", "NoDrift", True),  # 5 minutes since the last write
    ],
)
def test_status_is_written_on_a_change_or_every_five_minutes(
    written_state: str | None, written_at: str | None, state: str, expected: bool
) -> None:
    written = None
    if written_state is not None and written_at is not None:
        written = DriftStatus(
            state=written_state, since=written_at, last_checked=written_at, model_version="v1"
        )  # type: ignore[arg-type]
    verdict = DriftStatus(state=state, since=T0, last_checked=T0, model_version="v1")  # type: ignore[arg-type]
    assert monitoring.worth_writing(written, verdict) is expected


def test_events_on_transitions_only() -> None:
    calm = DriftStatus(state="NoDrift", since=T0, last_checked=T0, model_version="v1")
    drifting = calm.model_copy(update={"state": "Drifting", "message": "drift in petal_length"})
    detected = monitoring.transition_event(calm, drifting)
    assert detected is not None and (detected.reason, detected.warning) == ("DriftDetected", True)
    assert monitoring.transition_event(drifting, drifting) is None
    cleared = monitoring.transition_event(drifting, calm)
    assert cleared is not None and (cleared.reason, cleared.warning) == ("DriftCleared", False)
    assert monitoring.transition_event(None, calm) is None


def test_the_verdict_names_the_drifted_features() -> None:
    verdict, _ = next_verdict(None, Streaks(drifting=1), result("Drifting"), SPEC, at=T0)
    assert verdict.state == "Drifting"
    assert verdict.message is not None and "petal_length" in verdict.message
    assert monitoring.condition_of(verdict) == ("True", "Drifting", verdict.message)
