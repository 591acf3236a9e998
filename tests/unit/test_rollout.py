"""The canary's traffic split and state machine: start, hold, advance, promote, roll back,
pause for approval, a new model mid-rollout, and no flapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modelyard.api import (
    CanaryAnalysisStatus,
    LastFailure,
    ModelStatus,
    Rollout,
    RolloutStatus,
)
from modelyard.rollout import RolloutPlan, decide, split, transition_event

T0 = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)
V1 = ModelStatus(uri="pvc://models/iris/v1", version="v1", sha256="1" * 64)
V2 = ModelStatus(uri="pvc://models/iris/v2", version="v2", sha256="2" * 64)
V3 = ModelStatus(uri="pvc://models/iris/v3", version="v3", sha256="3" * 64)


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def canary(**overrides: Any) -> Rollout:
    spec: dict[str, Any] = {
        "strategy": "Canary",
        "canary": {
            "steps": [25, 50],
            "stepDuration": "1m",
            "analysis": {"minRequests": 10, "failureThreshold": 2, "inconclusiveTimeout": "5m"},
        },
    }
    spec.update(overrides)
    return Rollout.model_validate(spec)


def check(verdict: str, at: float, requests: int = 100, stable: int = 300) -> CanaryAnalysisStatus:
    return CanaryAnalysisStatus(
        checked_at=stamp(at),
        verdict=verdict,  # type: ignore[arg-type]
        reason=f"{verdict.lower()} reason",
        requests=requests,
        stable_requests=stable,
    )


def step(
    prev: RolloutStatus | None,
    at: float,
    *,
    rollout: Rollout | None = None,
    desired: ModelStatus = V2,
    stable: ModelStatus | None = V1,
    verdict: CanaryAnalysisStatus | None = None,
    rolled_out: bool = False,
    replicas: int = 3,
    generation: int = 2,
    failure: LastFailure | None = None,
    ready: int = 99,
) -> RolloutPlan:
    return decide(
        rollout or canary(),
        generation=generation,
        prev=prev,
        desired=desired,
        stable=stable,
        stable_replicas=replicas,
        stable_rolled_out=rolled_out,
        autoscaled=False,
        check=verdict,
        canary_failure=failure,
        canary_ready=ready,
        now=T0 + timedelta(seconds=at),
        at=stamp(at),
    )


# --- split -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stable", "weight", "surge", "expected"),
    [
        (3, 25, 2, (3, 1)),  # 1/4
        (3, 50, 2, (3, 3)),
        (4, 20, 2, (4, 1)),
        (9, 10, 0, (9, 1)),
        (2, 75, 0, (2, 6)),
        (1, 10, 2, (3, 1)),  # surge: 1 of 4 (25%) is the nearest 10% with 2 more stable pods
        (1, 10, 20, (9, 1)),  # enough surge: exactly 10%
        (1, 10, 0, (1, 1)),  # autoscaled (no surge): 50%, and actualWeight says so
        (1, 50, 2, (1, 1)),
        (0, 50, 2, (1, 1)),  # never a canary without a stable pod beside it
    ],
)
def test_split(stable: int, weight: int, surge: int, expected: tuple[int, int]) -> None:
    assert split(stable, weight, max_surge=surge) == expected


def test_a_surge_raises_the_stable_floor_and_never_shrinks_it() -> None:
    plan = step(None, 0, replicas=1)
    assert (plan.canary_replicas, plan.stable_floor) == (1, 3)
    assert step(None, 0, replicas=5).stable_floor is None


# --- the state machine -------------------------------------------------------------------------


def test_plain_rolling_update_and_first_model_have_no_canary() -> None:
    plain = step(None, 0, rollout=Rollout())
    assert (plain.stable, plain.canary, plain.status) == (V2, None, None)
    first = step(None, 0, stable=None)
    assert first.stable == V2 and first.canary is None
    assert first.status is not None and first.status.phase == "Idle"


def test_a_new_model_starts_a_canary_at_the_first_step() -> None:
    plan = step(RolloutStatus(phase="Idle", stable=V1), 0)
    assert (plan.stable, plan.canary, plan.canary_replicas) == (V1, V2, 1)
    status = plan.status
    assert status is not None and plan.checking
    assert (status.phase, status.step, status.steps, status.desired_weight) == (
        "Progressing",
        1,
        2,
        25,
    )
    assert status.step_started_at == stamp(0) and status.generation == 2
    event = transition_event(RolloutStatus(phase="Idle"), status)
    assert event is not None and event.reason == "CanaryStarted" and not event.warning


def test_a_step_holds_until_its_duration_and_a_passing_check() -> None:
    started = step(None, 0).status
    early = step(started, 30, verdict=check("Pass", 30)).status
    assert early is not None and (early.phase, early.step) == ("Progressing", 1)
    assert early.actual_weight == 25.0  # measured: 100 of 400 requests
    inconclusive = step(early, 70, verdict=check("Inconclusive", 70)).status
    assert inconclusive is not None and inconclusive.step == 1  # no pass, no advance
    advanced = step(inconclusive, 75, verdict=check("Pass", 75)).status
    assert advanced is not None and (advanced.step, advanced.desired_weight) == (2, 50)
    assert advanced.step_started_at == stamp(75) and advanced.failed_checks == 0
    event = transition_event(inconclusive, advanced)
    assert event is not None and event.reason == "CanaryStepPassed"


def test_the_same_check_is_counted_once() -> None:
    started = step(None, 0).status
    failed = check("Fail", 10)
    once = step(started, 10, verdict=failed).status
    again = step(once, 11, verdict=failed).status  # another reconcile, no new check
    assert once is not None and again is not None
    assert (once.failed_checks, again.failed_checks, again.phase) == (1, 1, "Progressing")


def test_consecutive_failures_roll_back_and_a_pass_resets_the_count() -> None:
    status = step(None, 0).status
    status = step(status, 10, verdict=check("Fail", 10)).status
    status = step(status, 20, verdict=check("Pass", 20)).status
    assert status is not None and status.failed_checks == 0
    status = step(status, 30, verdict=check("Fail", 30)).status
    plan = step(status, 40, verdict=check("Fail", 40))
    rolled = plan.status
    assert rolled is not None and plan.canary is None and plan.stable == V1
    assert (rolled.phase, rolled.reason, rolled.canary) == ("RolledBack", "AnalysisFailed", V2)
    assert "fail reason" in (rolled.message or "")
    event = transition_event(status, rolled)
    assert event is not None and event.reason == "CanaryRolledBack" and event.warning


def test_a_rolled_back_model_is_not_retried_until_the_spec_changes_or_approves_it() -> None:
    status = step(None, 0).status
    for at in (10, 20):
        status = step(status, at, verdict=check("Fail", at)).status
    held = step(status, 100)
    assert held.canary is None and held.status is not None and held.status.phase == "RolledBack"
    assert transition_event(status, held.status) is None  # no Event storm on every reconcile
    retried = step(status, 100, generation=3)  # the spec was edited
    assert retried.canary == V2 and retried.status is not None
    assert retried.status.phase == "Progressing"
    approved = step(status, 100, rollout=canary(approve=V2.sha256))
    assert approved.canary == V2
    newer = step(status, 100, desired=V3)  # a new model is a new canary
    assert newer.canary == V3


def test_abort_rolls_the_canary_back_and_keeps_it_back_until_removed() -> None:
    running = step(None, 0).status
    assert running is not None and running.phase == "Progressing"
    aborted_spec = canary(abort=V2.sha256)
    aborted = step(running, 30, rollout=aborted_spec, generation=3)  # the edit: a new generation
    assert aborted.canary is None and aborted.status is not None
    assert (aborted.status.phase, aborted.status.reason) == ("RolledBack", "Aborted")
    assert aborted.status.canary == V2 and "aborted" in (aborted.status.message or "")
    event = transition_event(running, aborted.status)
    assert event is not None and event.reason == "CanaryAborted"
    # Held while abort names it, on every reconcile and across further spec edits.
    for generation in (3, 4):
        held = step(aborted.status, 60, rollout=aborted_spec, generation=generation)
        assert held.canary is None and held.status == aborted.status.model_copy(
            update={"stable": V1}
        )
    # Removing abort retries it; abort naming another model changes nothing.
    retried = step(aborted.status, 90, generation=5)
    assert retried.canary == V2 and retried.status is not None
    assert retried.status.phase == "Progressing"
    other = step(running, 30, rollout=canary(abort=V3.sha256))
    assert other.canary == V2
    # Aborting a model before its canary starts: it never starts.
    never = step(None, 0, rollout=aborted_spec)
    assert never.canary is None and never.status is not None
    assert (never.status.phase, never.status.reason) == ("RolledBack", "Aborted")


def test_no_conclusive_check_before_the_timeout_sends_traffic_back() -> None:
    status = step(None, 0).status
    status = step(status, 200, verdict=check("Inconclusive", 200, requests=3)).status
    plan = step(status, 301)
    assert plan.canary is None and plan.status is not None
    assert (plan.status.phase, plan.status.reason) == ("RolledBack", "InsufficientTraffic")
    assert "no conclusive check in 5m" in (plan.status.message or "")


def test_a_canary_whose_pods_cannot_serve_is_rolled_back_at_once() -> None:
    status = step(None, 0).status
    plan = step(status, 5, failure=LastFailure(reason="ModelLoadFailed", message="bad sha"))
    assert plan.canary is None and plan.status is not None
    assert (plan.status.phase, plan.status.reason) == ("RolledBack", "CanaryFailed")
    assert "ModelLoadFailed: bad sha" in (plan.status.message or "")


def test_after_the_last_step_promotion_then_success_once_stable_rolled_out() -> None:
    status = step(None, 0).status
    status = step(status, 61, verdict=check("Pass", 61)).status  # step 2
    plan = step(status, 122, verdict=check("Pass", 122))
    assert plan.status is not None and plan.status.phase == "Promoting"
    assert plan.stable == V2 and plan.canary == V2  # the canary serves while stable rolls
    # the stable Deployment now carries V2 but is still rolling out
    rolling = step(plan.status, 130, stable=V2)
    assert rolling.status is not None and rolling.status.phase == "Promoting"
    assert rolling.canary == V2
    done = step(rolling.status, 150, stable=V2, rolled_out=True)
    assert done.canary is None and done.status is not None
    assert (done.status.phase, done.status.canary, done.status.stable) == ("Succeeded", None, V2)
    event = transition_event(rolling.status, done.status)
    assert event is not None and event.reason == "CanaryPromoted"


@pytest.mark.parametrize(
    "rollout",
    [canary(autoPromote=False), canary(approve="9" * 64)],
    ids=["autoPromote-off", "approve-names-another-model"],
)
def test_the_manual_gate_pauses_after_the_last_step(rollout: Rollout) -> None:
    status = step(None, 0, rollout=rollout).status
    status = step(status, 61, rollout=rollout, verdict=check("Pass", 61)).status
    paused = step(status, 122, rollout=rollout, verdict=check("Pass", 122))
    assert paused.status is not None and paused.canary == V2
    assert (paused.status.phase, paused.status.reason) == ("Paused", "AwaitingApproval")
    assert V2.sha256 in (paused.status.message or "")
    still = step(paused.status, 500, rollout=rollout)
    assert still.status is not None and still.status.phase == "Paused"  # no timeout
    go = step(paused.status, 500, rollout=canary(approve=V2.sha256))
    assert go.status is not None and go.status.phase == "Promoting" and go.stable == V2


def test_without_auto_rollback_a_failing_canary_pauses_at_its_weight() -> None:
    rollout = canary(autoRollback=False)
    status = step(None, 0, rollout=rollout).status
    for at in (10, 20):
        status = step(status, at, rollout=rollout, verdict=check("Fail", at)).status
    assert status is not None and (status.phase, status.reason) == ("Paused", "AnalysisFailed")
    held = step(status, 100, rollout=canary(autoRollback=False, autoPromote=True))
    assert held.status is not None and held.status.phase == "Paused" and held.canary == V2
    event = transition_event(None, status)
    assert event is not None and event.reason == "CanaryPaused"


def test_a_new_model_mid_rollout_restarts_the_canary() -> None:
    status = step(None, 0).status
    status = step(status, 61, verdict=check("Pass", 61)).status
    assert status is not None and status.step == 2
    plan = step(status, 70, desired=V3)
    assert plan.canary == V3 and plan.stable == V1
    assert plan.status is not None and (plan.status.step, plan.status.step_started_at) == (
        1,
        stamp(70),
    )


def test_the_spec_going_back_to_stable_removes_the_canary() -> None:
    status = step(None, 0).status
    plan = step(status, 10, desired=V1)
    assert plan.canary is None and plan.status is not None
    assert (plan.status.phase, plan.status.reason) == ("Idle", "Superseded")


def test_a_settled_rollout_is_stable_under_repeated_reconciles() -> None:
    status = RolloutStatus(phase="Succeeded", reason="Promoted", stable=V2)
    for at in (0, 10, 20):
        plan = step(status, at, desired=V2, stable=V2)
        assert plan.status == status and plan.canary is None
        assert transition_event(status, plan.status) is None


def test_a_steps_clock_starts_once_its_canary_pods_are_ready() -> None:
    # The canary Deployment is new: nothing to measure, whatever the monitor says, until its
    # pods are ready; then the step's clock and window start.
    started = step(None, 0, ready=0).status
    assert started is not None and started.analysis_started_at is None
    assert not step(started, 20, ready=0, verdict=check("Pass", 20)).status.last_analysis  # type: ignore[union-attr]
    ready = step(started, 25, ready=1).status
    assert ready is not None and ready.analysis_started_at == stamp(25)
    held = step(ready, 70, verdict=check("Pass", 70)).status
    assert held is not None and held.step == 1, "60 s from readiness, not from the start"
    advanced = step(held, 85, verdict=check("Pass", 85), ready=1).status
    assert advanced is not None and advanced.step == 2
    # Step 2 wants more canary pods (50% of 3): its clock waits for them too.
    assert advanced.analysis_started_at is None and advanced.step_started_at == stamp(85)


def test_canary_pods_that_never_get_ready_go_back_to_stable() -> None:
    started = step(None, 0, ready=0).status
    waiting = step(started, 60, ready=0).status
    assert waiting is not None and waiting.phase == "Progressing"
    timeout = canary().canary.analysis.inconclusive_timeout_seconds
    gave_up = step(waiting, timeout, ready=0).status
    assert gave_up is not None and (gave_up.phase, gave_up.reason) == (
        "RolledBack",
        "CanaryNotReady",
    )
    assert gave_up.message is not None and "0/1 canary pod(s)" in gave_up.message
