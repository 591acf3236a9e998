"""Drift monitoring's decisions, pure: from one check's result and what came before, the verdict
(``status.drift``), whether it is worth a status write, the Event of a transition and the
``DataDrift`` condition. The statistics themselves are ``modelyard_runtime.drift``'s; the shell
that fetches windows and writes status is ``modelyard.drift_monitor``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelyard.api import DriftMonitoring, DriftState, DriftStatus, FeatureDrift
from modelyard.events import Event

CLEAN_CHECKS_TO_CLEAR = 3  # clean checks in a row that clear a Drifting verdict
STATUS_REFRESH_SECONDS = 300  # an unchanged verdict is rewritten (lastChecked) at most this often
CONDITION_TYPE = "DataDrift"


@dataclass(frozen=True)
class CheckResult:
    """One check on the pooled window: what the tests said this time, before persistence."""

    state: DriftState
    model_version: str
    samples: int
    pods: int
    features: tuple[FeatureDrift, ...] = ()
    prediction: FeatureDrift | None = None
    message: str | None = None

    @property
    def drifted(self) -> list[str]:
        names = [f.name for f in self.features if f.drifted]
        if self.prediction is not None and self.prediction.drifted:
            names.append(f"prediction ({self.prediction.name})")
        return names


@dataclass(frozen=True)
class Streaks:
    """Consecutive drifting and clean checks (kept in memory; a restarted operator starts from
    the verdict in status, see ``Streaks.resumed``)."""

    drifting: int = 0
    clean: int = 0

    @classmethod
    def resumed(cls, previous: DriftStatus | None, spec: DriftMonitoring) -> Streaks:
        """A Drifting verdict read back after a restart stays Drifting until it is cleared."""
        if previous is not None and previous.state == "Drifting":
            return cls(drifting=spec.persistence)
        return cls()


def _summary(
    result: CheckResult, state: DriftState, streaks: Streaks, spec: DriftMonitoring
) -> str:
    if result.state == "InsufficientData":
        held = " (verdict kept until clean checks clear it)" if state == "Drifting" else ""
        return (result.message or f"{result.samples} samples, fewer than {spec.min_samples}") + held
    drifted = result.drifted
    if result.state == "Drifting" and state != "Drifting":
        return (
            f"drift in {', '.join(drifted)}: {streaks.drifting} of {spec.persistence} "
            "drifting checks in a row"
        )
    if state == "Drifting" and result.state == "NoDrift":
        return (
            f"no drift in the last check: {streaks.clean} of {CLEAN_CHECKS_TO_CLEAR} clean checks "
            "in a row clear the verdict"
        )
    if drifted:
        return f"drift in {', '.join(drifted)}"
    return f"no drift in {result.samples} samples from {result.pods} pod(s)"


def next_verdict(
    previous: DriftStatus | None,
    streaks: Streaks,
    result: CheckResult,
    spec: DriftMonitoring,
    *,
    at: str,
) -> tuple[DriftStatus, Streaks]:
    """Apply persistence: Drifting after ``spec.persistence`` drifting checks in a row, back to
    NoDrift after ``CLEAN_CHECKS_TO_CLEAR`` clean ones. A check without enough data breaks both
    streaks; it shows InsufficientData unless the verdict is Drifting (a quiet hour does not
    clear drift, only clean traffic does)."""
    if previous is not None and previous.model_version != result.model_version:
        previous, streaks = None, Streaks()  # a new model: its verdict starts afresh
    before = previous.state if previous is not None else None
    if result.state == "InsufficientData":
        streaks = Streaks()
        state: DriftState = "Drifting" if before == "Drifting" else "InsufficientData"
    elif result.state == "Drifting":
        streaks = Streaks(drifting=streaks.drifting + 1)
        if streaks.drifting >= spec.persistence:
            state = "Drifting"
        else:
            state = before if before in ("NoDrift", "Drifting") else "NoDrift"
    else:
        streaks = Streaks(clean=streaks.clean + 1)
        if before == "Drifting" and streaks.clean < CLEAN_CHECKS_TO_CLEAR:
            state = "Drifting"
        else:
            state = "NoDrift"
    since = previous.since if previous is not None and before == state else at
    status = DriftStatus(
        state=state,
        since=since,
        last_checked=at,
        model_version=result.model_version,
        samples=result.samples,
        pods=result.pods,
        message=_summary(result, state, streaks, spec)[:1024],
        features=list(result.features),
        prediction=result.prediction,
    )
    return status, streaks


def _seconds_between(earlier: str, later: str) -> float:
    def parse(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    return (parse(later) - parse(earlier)).total_seconds()


def worth_writing(written: DriftStatus | None, verdict: DriftStatus) -> bool:
    """A verdict change is written at once; an unchanged one at most every
    ``STATUS_REFRESH_SECONDS`` (GitOps tools and watchers see every status write as churn)."""
    if written is None or (written.state, written.model_version) != (
        verdict.state,
        verdict.model_version,
    ):
        return True
    return _seconds_between(written.last_checked, verdict.last_checked) >= STATUS_REFRESH_SECONDS


def transition_event(before: DriftStatus | None, after: DriftStatus) -> Event | None:
    """DriftDetected (Warning) on entering Drifting; DriftCleared when a Drifting verdict clears."""
    was = before.state if before is not None else None
    if after.state == "Drifting" and was != "Drifting":
        return Event("DriftDetected", after.message or "drift detected", warning=True)
    if was == "Drifting" and after.state == "NoDrift":
        return Event("DriftCleared", after.message or "drift cleared", warning=False)
    return None


def condition_of(drift: DriftStatus) -> tuple[str, str, str]:
    """(status, reason, message) of the ``DataDrift`` condition. It never touches Ready: drift
    is a fact about the traffic, not a failure of the reconcile."""
    status = {"Drifting": "True", "NoDrift": "False", "InsufficientData": "Unknown"}[drift.state]
    return status, drift.state, drift.message or ""
