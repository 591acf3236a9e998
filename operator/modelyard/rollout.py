"""Progressive delivery of a new model: the canary's state machine and its traffic split. Pure.

Stable and canary are two Deployments whose pods all match the one Service selector, so the
split is by ready replicas. Each reconcile asks ``decide`` what the next state is, given the
last one (``status.rollout``), the model the spec wants, the model the stable Deployment
serves, and the canary monitor's latest check of the current step. ``decide`` never edits the
spec: a rollback leaves it as written (GitOps stays in sync) and the rejected model is not
tried again until the spec changes or ``approve`` names it. ``abort`` naming the canary's
sha256 rolls it back by hand (Argo Rollouts' abort, as a reviewed spec change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from modelyard.api import (
    Canary,
    CanaryAnalysisStatus,
    LastFailure,
    ModelStatus,
    Rollout,
    RolloutStatus,
)
from modelyard.conditions import parse_time
from modelyard.events import Event

ACTIVE = frozenset({"Progressing", "Paused", "Promoting"})


def same_model(a: ModelStatus | None, b: ModelStatus | None) -> bool:
    return a is not None and b is not None and (a.uri, a.sha256) == (b.uri, b.sha256)


def split(stable: int, weight: int, *, max_surge: int) -> tuple[int, int]:
    """``(stable replicas, canary replicas)`` that put the canary nearest ``weight`` percent of
    the ready replicas: canary = round(stable x w / (100 - w)), at least one. When one canary
    pod is already too large a share, the stable arm grows by up to ``max_surge`` replicas
    (0 with autoscaling: the HPA owns the stable count). The stable arm never shrinks."""
    stable = max(stable, 1)
    canary = max(1, round(stable * weight / (100 - weight)))
    if canary == 1 and 100 / (stable + 1) > weight:
        wanted = math.ceil((100 - weight) / weight)  # stable pods beside one canary pod
        stable = max(stable, min(stable + max_surge, wanted))
    return stable, canary


def elapsed_seconds(since: str | None, now: datetime) -> float:
    if not since:
        return 0.0
    return (now - parse_time(since)).total_seconds()


def promotion_allowed(rollout: Rollout, canary: ModelStatus) -> bool:
    """``approve``, when set, is the gate; otherwise ``autoPromote``."""
    if rollout.approve is not None:
        return canary.sha256 == rollout.approve
    return rollout.auto_promote


@dataclass(frozen=True)
class RolloutPlan:
    """What to run: the stable Deployment's model, the canary Deployment's (``None``: no
    canary Deployment) and its replicas, the stable floor a surge needs (``None``: none), and
    the new ``status.rollout`` (``None`` for a plain rolling update)."""

    stable: ModelStatus
    canary: ModelStatus | None
    canary_replicas: int
    stable_floor: int | None
    status: RolloutStatus | None

    @property
    def checking(self) -> bool:
        """A step is being judged: the canary monitor should measure it."""
        return self.status is not None and self.status.phase == "Progressing"


@dataclass(frozen=True)
class _Arms:
    """What a decision turns into replicas: the served stable model and its replica count."""

    rollout: Rollout
    stable: ModelStatus
    stable_replicas: int
    autoscaled: bool

    def without_canary(self, status: RolloutStatus) -> RolloutPlan:
        return RolloutPlan(
            self.stable, None, 0, None, status.model_copy(update={"stable": self.stable})
        )

    def starting(self, status: RolloutStatus, canary_ready: int, at: str) -> RolloutPlan:
        """A step whose analysis starts ``at`` if its canary pods are all ready already."""
        plan = self.with_canary(status)
        if canary_ready < plan.canary_replicas:
            return plan
        return self.with_canary(status.model_copy(update={"analysis_started_at": at}))

    def with_canary(
        self, status: RolloutStatus, stable_model: ModelStatus | None = None
    ) -> RolloutPlan:
        """The canary at ``status.desiredWeight``; ``stable_model`` while promoting."""
        if status.canary is None or status.desired_weight is None:
            raise ValueError("a canary needs a model and a weight")
        surge = 0 if self.autoscaled else self.rollout.canary.max_surge
        floor, replicas = split(self.stable_replicas, status.desired_weight, max_surge=surge)
        return RolloutPlan(
            stable_model or self.stable,
            status.canary,
            replicas,
            floor if floor > self.stable_replicas else None,
            status.model_copy(update={"stable": self.stable, "canary_replicas": replicas}),
        )


def decide(
    rollout: Rollout | None,
    *,
    generation: int,
    prev: RolloutStatus | None,
    desired: ModelStatus,
    stable: ModelStatus | None,
    stable_replicas: int,
    stable_rolled_out: bool,
    autoscaled: bool,
    check: CanaryAnalysisStatus | None,
    canary_failure: LastFailure | None,
    canary_ready: int = 0,
    now: datetime,
    at: str,
) -> RolloutPlan:
    """The next rollout state. ``desired`` is the model to serve, ``stable`` what the stable
    Deployment serves (``None``: nothing yet), ``stable_rolled_out`` whether its pods all
    carry it; ``check`` the monitor's latest check of the current step (``None``: none yet),
    ``canary_failure`` why the canary's pods cannot serve, if they cannot, ``canary_ready``
    how many of the canary model's pods are ready."""
    if rollout is None or rollout.strategy != "Canary" or stable is None:
        # A plain rolling update, or the first model (nothing to compare it with).
        status = None
        if rollout is not None and rollout.strategy == "Canary":
            status = RolloutStatus(phase="Idle", stable=desired, generation=generation)
        return RolloutPlan(desired, None, 0, None, status)
    arms = _Arms(rollout, stable, stable_replicas, autoscaled)
    base = prev or RolloutStatus(phase="Idle")

    if same_model(desired, stable):
        if base.phase == "Promoting" and same_model(base.canary, desired):
            if not stable_rolled_out:
                return arms.with_canary(base, desired)  # it serves until stable has rolled out
            promoted = base.model_copy(
                update={
                    "phase": "Succeeded",
                    "reason": "Promoted",
                    "message": f"{desired.version} promoted to stable",
                    "canary": None,
                    "canary_replicas": None,
                    "desired_weight": None,
                    "actual_weight": None,
                }
            )
            return arms.without_canary(promoted)
        if base.phase in ACTIVE:
            return arms.without_canary(
                RolloutStatus(
                    phase="Idle",
                    reason="Superseded",
                    message=f"the spec serves the stable {stable.version} again; canary removed",
                    generation=generation,
                )
            )
        return arms.without_canary(base)

    if rollout.abort is not None and desired.sha256 == rollout.abort:
        return arms.without_canary(_aborted(base, desired, generation))
    approved = rollout.approve is not None and desired.sha256 == rollout.approve
    if base.phase == "RolledBack" and same_model(base.canary, desired):
        if base.generation == generation and not approved:
            return arms.without_canary(base)  # rejected: not retried until the spec changes
    elif base.phase in ACTIVE and same_model(base.canary, desired):
        if base.phase == "Promoting":
            return arms.with_canary(base, desired)
        if base.phase == "Paused":
            # A failed analysis that paused (autoRollback off) waits for an explicit approve.
            if (approved or base.reason == "AwaitingApproval") and promotion_allowed(
                rollout, desired
            ):
                return arms.with_canary(_promoting(base, desired), desired)
            return arms.with_canary(base)
        return _progress(arms, base, desired, check, canary_failure, canary_ready, now, at)
    return arms.starting(_start(rollout.canary, desired, generation, at), canary_ready, at)


def _start(canary: Canary, model: ModelStatus, generation: int, at: str) -> RolloutStatus:
    weight = canary.steps[0]
    return RolloutStatus(
        phase="Progressing",
        reason="CanaryStarted",
        message=f"canary {model.version} at {weight}% (step 1/{len(canary.steps)})",
        canary=model,
        step=1,
        steps=len(canary.steps),
        step_started_at=at,
        desired_weight=weight,
        failed_checks=0,
        generation=generation,
    )


def _await_canary_pods(
    arms: _Arms,
    base: RolloutStatus,
    desired: ModelStatus,
    canary_failure: LastFailure | None,
    canary_ready: int,
    now: datetime,
    at: str,
) -> RolloutPlan:
    """The step's canary pods are starting: its clock starts once they are all ready; a canary
    that cannot serve, or is not ready within inconclusiveTimeout, goes back to stable."""
    analysis = arms.rollout.canary.analysis
    plan = arms.starting(base, canary_ready, at)
    if plan.status is not None and plan.status.analysis_started_at is not None:
        return plan
    waited = elapsed_seconds(base.step_started_at, now)
    if canary_failure is None and waited < analysis.inconclusive_timeout_seconds:
        return plan
    if canary_failure is not None:
        return arms.without_canary(_cannot_serve(base, desired, canary_failure))
    message = (
        f"{canary_ready}/{plan.canary_replicas} canary pod(s) of {desired.version} ready "
        f"after {analysis.inconclusive_timeout}"
    )
    return arms.without_canary(_rolled_back(base, "CanaryNotReady", message))


def _rolled_back(status: RolloutStatus, reason: str, message: str) -> RolloutStatus:
    return status.model_copy(
        update={
            "phase": "RolledBack",
            "reason": reason,
            "message": message[:512],
            "canary_replicas": None,
            "desired_weight": None,
            "actual_weight": None,
        }
    )


def _aborted(base: RolloutStatus, desired: ModelStatus, generation: int) -> RolloutStatus:
    """``spec.rollout.abort`` names the canary's model: back to stable, and never started
    again while it does. Taking ``abort`` out (a new generation) retries the canary."""
    if base.phase == "RolledBack" and same_model(base.canary, desired):
        return base
    status = base if same_model(base.canary, desired) else RolloutStatus(phase="Idle")
    message = f"canary {desired.version} aborted: spec.rollout.abort names its sha256"
    return _rolled_back(
        status.model_copy(update={"canary": desired, "generation": generation}), "Aborted", message
    )


def _cannot_serve(status: RolloutStatus, model: ModelStatus, failure: LastFailure) -> RolloutStatus:
    message = f"canary {model.version} cannot serve: {failure.reason}: {failure.message}"
    return _rolled_back(status, "CanaryFailed", message)


def _promoting(status: RolloutStatus, model: ModelStatus) -> RolloutStatus:
    return status.model_copy(
        update={
            "phase": "Promoting",
            "reason": "Promoting",
            "message": f"promoting {model.version}: the stable Deployment rolls to it",
        }
    )


def _progress(
    arms: _Arms,
    base: RolloutStatus,
    desired: ModelStatus,
    check: CanaryAnalysisStatus | None,
    canary_failure: LastFailure | None,
    canary_ready: int,
    now: datetime,
    at: str,
) -> RolloutPlan:
    """A step being judged: count a new check, then roll back, pause, advance or hold. Until
    the step's canary pods are all ready, only hold (or give up after inconclusiveTimeout)."""
    rollout, spec = arms.rollout, arms.rollout.canary
    if base.analysis_started_at is None:
        return _await_canary_pods(arms, base, desired, canary_failure, canary_ready, now, at)
    failed, last = base.failed_checks, base.last_analysis
    if check is not None and (last is None or check.checked_at != last.checked_at):
        if check.verdict == "Fail":
            failed += 1
        elif check.verdict == "Pass":
            failed = 0
        last = check
    status = base.model_copy(update={"failed_checks": failed, "last_analysis": last})
    if last is not None and last.requests + last.stable_requests > 0:
        share = 100 * last.requests / (last.requests + last.stable_requests)
        status = status.model_copy(update={"actual_weight": round(share, 1)})

    def back_to_stable(reason: str, message: str) -> RolloutPlan:
        if not rollout.auto_rollback and reason == "AnalysisFailed":
            paused = {"phase": "Paused", "reason": reason, "message": message}
            return arms.with_canary(status.model_copy(update=paused))
        return arms.without_canary(_rolled_back(status, reason, message))

    if canary_failure is not None:
        return arms.without_canary(_cannot_serve(status, desired, canary_failure))
    if failed >= spec.analysis.failure_threshold and last is not None:
        return back_to_stable(
            "AnalysisFailed",
            f"canary {desired.version} failed {failed} check(s) in a row: {last.reason}",
        )
    elapsed = elapsed_seconds(base.analysis_started_at, now)
    conclusive = last is not None and last.verdict != "Inconclusive"
    if not conclusive and elapsed >= spec.analysis.inconclusive_timeout_seconds:
        why = last.reason if last is not None else "no check answered"
        return back_to_stable(
            "InsufficientTraffic",
            f"step {base.step}/{base.steps} had no conclusive check in "
            f"{spec.analysis.inconclusive_timeout}: {why}",
        )
    if elapsed < spec.step_duration_seconds or last is None or last.verdict != "Pass":
        return arms.with_canary(status)  # hold
    step, steps = base.step or 1, len(spec.steps)
    if step < steps:
        weight = spec.steps[step]
        advanced = {
            "reason": "StepPassed",
            "message": f"canary {desired.version} at {weight}% (step {step + 1}/{steps})",
            "step": step + 1,
            "steps": steps,
            "step_started_at": at,
            "analysis_started_at": None,  # the step's new canary pods have to start first
            "desired_weight": weight,
            "failed_checks": 0,
        }
        return arms.starting(status.model_copy(update=advanced), canary_ready, at)
    if promotion_allowed(rollout, desired):
        return arms.with_canary(_promoting(status, desired), desired)
    gate = "approve names another model" if rollout.approve is not None else "autoPromote is off"
    waiting = {
        "phase": "Paused",
        "reason": "AwaitingApproval",
        "message": f"every step passed ({gate}); set spec.rollout.approve to "
        f"{desired.sha256 or 'its sha256'} to promote {desired.version}",
    }
    return arms.with_canary(status.model_copy(update=waiting))


# --- Events ------------------------------------------------------------------------------------


EVENT_REASONS = {
    "CanaryStarted": "CanaryStarted",
    "StepPassed": "CanaryStepPassed",
    "Promoting": "CanaryPromoting",
    "Promoted": "CanaryPromoted",
    "AwaitingApproval": "CanaryAwaitingApproval",
    "Superseded": "CanarySuperseded",
    "Aborted": "CanaryAborted",
}


def transition_event(before: RolloutStatus | None, after: RolloutStatus | None) -> Event | None:
    """One Event per step change (a canary started, a step passed, it paused, is promoting,
    was promoted, rolled back or superseded), none otherwise."""
    if after is None or after.reason is None:
        return None

    def key(status: RolloutStatus) -> tuple[object, ...]:
        return (status.phase, status.reason, status.step, status.canary and status.canary.sha256)

    if before is not None and key(before) == key(after):
        return None
    if after.phase == "Paused" and after.reason == "AnalysisFailed":
        return Event(reason="CanaryPaused", message=after.message or "", warning=True)
    reason = EVENT_REASONS.get(after.reason)
    if reason is None:  # AnalysisFailed, InsufficientTraffic, CanaryFailed
        return Event(reason="CanaryRolledBack", message=after.message or "", warning=True)
    return Event(reason=reason, message=after.message or "", warning=False)
