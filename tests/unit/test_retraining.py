"""The retraining core (modelyard.retraining): triggers (manual, drift with minDuration, cooldown
and the attempts cap, schedule), the promotion decision table, the candidate's fate, lineage
and history trimming. Pure: plain objects in, decisions out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import SHA, model_deployment
from modelyard import naming, retraining
from modelyard.api import (
    ModelDeployment,
    ModelDeploymentStatus,
    ModelStatus,
    RolloutStatus,
    TrainingJobStatus,
)

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
AT = "2026-12-03T12:00:00Z"
V1 = ModelStatus(uri="pvc://models/iris/v1", version="v1", sha256=SHA)
V2_SHA = "b" * 64
TEMPLATE = {"dataset": {"uri": "pvc://data/iris.csv", "target": "species"}, "model": {}}


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def md(
    retrain: dict[str, Any] | None = None,
    *,
    status: dict[str, Any] | None = None,
    generation: int = 1,
) -> ModelDeployment:
    spec: dict[str, Any] = {"model": {"trainingJobRef": {"name": "iris"}}}
    if retrain is not None:
        spec["retraining"] = {"template": {"trainingJobRef": {"name": "iris"}}, **retrain}
    return ModelDeployment.parse(model_deployment(spec, status=status, generation=generation))


def champion_status(**retraining_status: Any) -> dict[str, Any]:
    """A ModelDeployment status whose lineage starts at V1 (spec.model's)."""
    return {
        "modelHistory": [
            {
                "version": "v1",
                "uri": V1.uri,
                "sha256": SHA,
                "promotedAt": ago(days=2),
                "why": "Spec",
            }
        ],
        "retraining": {"since": ago(days=2), "generation": 1, **retraining_status},
    }


def drifting(since: str, version: str = "v1") -> dict[str, Any]:
    return {
        "state": "Drifting",
        "since": since,
        "lastChecked": AT,
        "modelVersion": version,
    }


def challenger(
    run: int,
    *,
    phase: str = "Succeeded",
    trigger: str = "Drift",
    improvement: float | None = 0.2,
    model: bool = True,
    **status: Any,
) -> retraining.Challenger:
    fields: dict[str, Any] = {"phase": phase, **status}
    if model and phase == "Succeeded":
        fields["model"] = {
            "uri": f"pvc://models/iris/r{run}",
            "version": f"r{run}",
            "sha256": V2_SHA,
        }
    if improvement is not None and phase == "Succeeded" and model:
        fields.setdefault(
            "comparison",
            {
                "metric": "accuracy",
                "greaterIsBetter": True,
                "challenger": 0.9 + improvement / 2,
                "champion": {
                    "version": "v1",
                    "sha256": SHA,
                    "metrics": {"accuracy": 0.9 - improvement / 2},
                },
                "improvement": improvement,
                "regressions": {"accuracy": -improvement, "recall": 0.05},
            },
        )
    return retraining.Challenger(
        name=retraining.job_name("iris", run),
        run=run,
        trigger=trigger,  # type: ignore[arg-type]
        status=TrainingJobStatus.model_validate(fields),
    )


def plan(
    deployment: ModelDeployment,
    challengers: list[retraining.Challenger] | None = None,
    *,
    spec_model: ModelStatus | None = V1,
    template: dict[str, Any] | None = TEMPLATE,
    now: datetime = NOW,
) -> retraining.RetrainingPlan:
    return retraining.plan(
        deployment,
        spec_model,
        challengers or [],
        template,
        now=now,
        at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


# --- off, lineage ---------------------------------------------------------------------------------


def test_off_decides_nothing() -> None:
    decided = plan(md())
    assert decided.status is None and decided.history is None and decided.serve is None
    assert decided.create is None


def test_the_lineage_starts_at_spec_model_and_serves_it_as_is() -> None:
    decided = plan(md({}))
    assert decided.history is not None and [e.why for e in decided.history] == ["Spec"]
    assert decided.history[0].version == "v1" and decided.serve is None
    assert decided.create is None and decided.status is not None and decided.status.since == AT


def test_a_promoted_champion_is_served_instead_of_spec_model() -> None:
    status = champion_status()
    status["modelHistory"].insert(
        0,
        {
            "version": "r1",
            "uri": "pvc://models/iris/r1",
            "sha256": V2_SHA,
            "promotedAt": AT,
            "why": "Drift",
        },
    )
    decided = plan(md({}, status=status))
    assert decided.serve is not None and decided.serve.version == "r1"
    resolution = retraining.resolution(decided)
    assert resolution is not None and "promoted by spec.retraining" in resolution.message


def test_a_new_spec_model_starts_a_new_lineage_and_supersedes_a_challenger() -> None:
    candidate = {
        "uri": "pvc://models/iris/r1",
        "version": "r1",
        "sha256": V2_SHA,
        "job": "iris-retrain-1",
    }
    status = champion_status(candidate=candidate, runs=1)
    v3 = ModelStatus(uri="pvc://models/iris/v3", version="v3", sha256="c" * 64)
    decided = plan(md({}, status=status), [challenger(1)], spec_model=v3)
    assert decided.history is not None and [e.version for e in decided.history] == ["v3", "v1"]
    assert decided.serve is None  # spec.model's own model
    assert decided.status is not None and decided.status.candidate is None
    assert decided.status.last_decision is not None
    assert decided.status.last_decision.reason == "Superseded"


# --- triggers -------------------------------------------------------------------------------------


def test_a_manual_run_creates_one_owned_retraining_with_the_champion() -> None:
    decided = plan(md({"run": "please"}, status=champion_status()))
    job = decided.create
    assert job is not None
    assert job["metadata"]["name"] == "iris-retrain-1"
    labels = job["metadata"]["labels"]
    assert labels[naming.LABEL_TRIGGER] == "Manual" and labels[naming.LABEL_RUN] == "1"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert job["spec"]["dataset"] == TEMPLATE["dataset"]
    # A manual run always trains, whatever the data.
    assert job["spec"]["champion"] == {
        "storageUri": V1.uri,
        "sha256": SHA,
        "skipIfDataUnchanged": False,
    }
    status = decided.status
    assert status is not None and status.active_job == "iris-retrain-1"
    assert status.handled_run == "please" and status.runs == 1
    assert [e.reason for e in decided.events] == ["RetrainTriggered"]


def test_a_created_retraining_is_not_created_twice_even_if_its_status_write_was_lost() -> None:
    running = challenger(1, phase="Running", trigger="Manual")
    decided = plan(md({"run": "please"}, status=champion_status()), [running])
    assert decided.create is None
    assert decided.status is not None and decided.status.active_job == "iris-retrain-1"


def test_drift_triggers_only_after_min_duration() -> None:
    spec = {"triggers": ["OnDrift"], "onDrift": {"minDuration": "10m"}}
    status = champion_status()
    status["drift"] = drifting(ago(minutes=9))
    assert plan(md(spec, status=status)).create is None
    status["drift"] = drifting(ago(minutes=10))
    decided = plan(md(spec, status=status))
    assert decided.create is not None
    assert decided.create["spec"]["champion"]["skipIfDataUnchanged"] is True
    assert decided.status is not None and decided.status.attempts == 1
    assert decided.status.episode == ago(minutes=10)


def test_drift_about_another_model_does_not_trigger() -> None:
    status = champion_status()
    status["drift"] = drifting(ago(hours=1), version="v0")
    assert plan(md({"triggers": ["OnDrift"]}, status=status)).create is None


def test_cooldown_from_the_end_of_the_last_retraining() -> None:
    spec = {"triggers": ["OnDrift"], "onDrift": {"minDuration": "1m"}, "cooldown": "1h"}
    decision = {
        "job": "iris-retrain-1",
        "at": ago(minutes=30),
        "result": "Rejected",
        "reason": "NotBetter",
    }
    status = champion_status(lastDecision=decision, runs=1, attempts=1, episode=ago(hours=2))
    status["drift"] = drifting(ago(hours=2))
    done = [challenger(1, improvement=-0.1)]
    assert plan(md(spec, status=status), done).create is None
    decision["at"] = ago(minutes=61)
    decided = plan(md(spec, status=status), done)
    assert decided.create is not None and decided.create["metadata"]["name"] == "iris-retrain-2"
    assert decided.status is not None and decided.status.attempts == 2


def test_the_attempts_cap_stalls_until_the_drift_clears_or_the_spec_changes() -> None:
    spec = {"triggers": ["OnDrift"], "onDrift": {"minDuration": "1m"}, "cooldown": "1m"}
    decision = {
        "job": "iris-retrain-3",
        "at": ago(hours=1),
        "result": "Rejected",
        "reason": "NotBetter",
    }
    status = champion_status(lastDecision=decision, runs=3, attempts=3, episode=ago(hours=5))
    status["drift"] = drifting(ago(hours=5))
    done = [challenger(3, improvement=-0.1)]
    decided = plan(md(spec, status=status), done)
    assert decided.create is None
    assert decided.stalled is not None and decided.stalled[0] == "AttemptsExhausted"
    # A new generation of the spec may try again.
    assert plan(md(spec, status=status, generation=2), done).create is not None
    # So may a new drift episode, once the drift cleared.
    status["drift"] = {**drifting(ago(minutes=30)), "since": ago(minutes=30)}
    assert plan(md(spec, status=status), done).create is not None


def test_schedule_runs_at_its_next_time_and_moves_on() -> None:
    spec = {"triggers": ["Schedule"], "schedule": "0 3 * * *"}
    status = champion_status()
    status["retraining"]["since"] = "2026-12-02T04:00:00Z"
    early = plan(md(spec, status=status), now=datetime(2026, 12, 3, 2, 59, tzinfo=UTC))
    assert early.create is None
    assert early.status is not None and early.status.next_run == "2026-12-03T03:00:00Z"
    due = plan(md(spec, status=status), now=datetime(2026, 12, 3, 3, 0, 30, tzinfo=UTC))
    assert due.create is not None
    assert due.create["metadata"]["labels"][naming.LABEL_TRIGGER] == "Schedule"
    assert due.status is not None and due.status.next_run == "2026-12-04T03:00:00Z"


def test_no_trigger_without_a_template_says_why() -> None:
    decided = plan(md({"run": "x"}, status=champion_status()), template=None)
    assert decided.create is None
    assert decided.stalled is not None and decided.stalled[0] == "TemplateUnavailable"


def test_an_unpinned_champion_cannot_be_beaten_fairly() -> None:
    status = champion_status()
    status["modelHistory"][0].pop("sha256")
    unpinned = ModelStatus(uri=V1.uri, version="v1")
    decided = plan(md({"run": "x"}, status=status), spec_model=unpinned)
    assert decided.create is None
    assert decided.stalled is not None and decided.stalled[0] == "ChampionNotPinned"
    passgate = {"run": "x", "promotion": {"policy": "PassGate"}}
    created = plan(md(passgate, status=status), spec_model=unpinned).create
    assert created is not None and "champion" not in created["spec"]


def test_a_refused_create_triggers_nothing() -> None:
    decided = plan(md({"run": "x"}, status=champion_status()))
    refused = retraining.refused(decided, "TrainingJob iris-retrain-1: forbidden")
    assert refused.create is None and refused.status is not None
    assert refused.status.handled_run is None and refused.status.active_job is None
    assert refused.stalled == ("TrainingJobRefused", "TrainingJob iris-retrain-1: forbidden")


# --- the decision table ---------------------------------------------------------------------------


def decide(done: retraining.Challenger, **promotion: Any) -> retraining.RetrainingPlan:
    status = champion_status(activeJob=done.name, runs=done.run)
    return plan(md({"promotion": promotion}, status=status), [done])


@pytest.mark.parametrize(
    ("done", "promotion", "result", "reason"),
    [
        (challenger(1, improvement=0.2), {}, "Promoting", "BeatChampion"),
        (challenger(1, improvement=0.0), {}, "Rejected", "NotBetter"),
        (challenger(1, improvement=0.02), {"minImprovement": 0.05}, "Rejected", "NotBetter"),
        (challenger(1, improvement=-0.1), {"policy": "PassGate"}, "Promoting", "GatePassed"),
        (challenger(1), {"maxRegression": {"recall": 0.01}}, "Rejected", "Regression"),
        (challenger(1), {"maxRegression": {"recall": 0.1}}, "Promoting", "BeatChampion"),
        (challenger(1), {"policy": "Manual"}, "AwaitingApproval", "AwaitingApproval"),
        (challenger(1), {"policy": "Manual", "approve": V2_SHA}, "Promoting", "Approved"),
        (
            challenger(
                1,
                comparison={
                    "metric": "accuracy",
                    "greaterIsBetter": True,
                    "challenger": 0.9,
                    "reason": "champion not loaded",
                },
            ),
            {},
            "Rejected",
            "ChampionNotScored",
        ),
        (
            challenger(
                1,
                phase="Failed",
                lastFailure={"reason": "GateNotMet", "message": "accuracy 0.5 < 0.9"},
            ),
            {},
            "Rejected",
            "GateNotMet",
        ),
        (
            challenger(
                1, phase="Failed", lastFailure={"reason": "OOMKilled", "message": "out of memory"}
            ),
            {},
            "Rejected",
            "TrainingFailed",
        ),
        (challenger(1, model=False), {}, "Rejected", "DataUnchanged"),
    ],
)
def test_promotion_decision_table(
    done: retraining.Challenger, promotion: dict[str, Any], result: str, reason: str
) -> None:
    decided = decide(done, **promotion)
    assert decided.status is not None and decided.status.last_decision is not None
    decision = decided.status.last_decision
    assert (decision.result, decision.reason) == (result, reason), decision.message
    assert decided.status.active_job is None
    if result == "Promoting":
        assert decided.status.candidate is not None and decided.status.candidate.version == "r1"
        assert decided.serve is not None and decided.serve.version == "r1"
    else:
        assert decided.status.candidate is None and decided.serve is None
    if result == "Rejected":
        assert [e.reason for e in decided.events] == ["ChallengerRejected"]


def test_a_challenger_awaiting_approval_is_promoted_once_approved() -> None:
    waiting = decide(challenger(1), policy="Manual")
    prior = waiting.status.model_dump(by_alias=True, exclude_none=True) if waiting.status else {}
    status = {**champion_status(), "retraining": prior}
    again = plan(md({"promotion": {"policy": "Manual"}}, status=status), [challenger(1)])
    assert again.status is not None and again.status.last_decision is not None
    assert again.status.last_decision.result == "AwaitingApproval" and not again.events
    assert (
        plan(
            md({"run": "x", "promotion": {"policy": "Manual"}}, status=status), [challenger(1)]
        ).create
        is None
    )
    approved = {"policy": "Manual", "approve": V2_SHA}
    now = plan(md({"promotion": approved}, status=status), [challenger(1)])
    assert now.status is not None and now.status.candidate is not None


@pytest.mark.parametrize(
    "recorded",
    [
        {"activeJob": "iris-retrain-2"},
        # Deleted before any reconcile saw it running: the trigger's record names it.
        {"lastTrigger": {"reason": "Manual", "at": AT, "job": "iris-retrain-2"}},
    ],
)
def test_a_retraining_deleted_mid_run_is_a_decision(recorded: dict[str, Any]) -> None:
    before = {"job": "iris-retrain-1", "at": AT, "result": "Rejected", "reason": "NotBetter"}
    status = champion_status(runs=2, lastDecision=before, **recorded)
    decided = plan(md({}, status=status), [challenger(1, improvement=-0.1)])
    assert decided.status is not None and decided.status.last_decision is not None
    assert decided.status.last_decision.job == "iris-retrain-2"
    assert decided.status.last_decision.reason == "JobDeleted"
    assert decided.status.active_job is None and decided.create is None
    # Decided once: the next reconcile does not decide it again.
    again = {**status, "retraining": decided.status.model_dump(by_alias=True, exclude_none=True)}
    assert plan(md({}, status=again), [challenger(1, improvement=-0.1)]).events == ()


# --- the candidate's fate -------------------------------------------------------------------------


def serving(
    phase: str, model: ModelStatus, rollout: dict[str, Any] | None = None
) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(
        phase=phase,  # type: ignore[arg-type]
        model=model,
        rollout=RolloutStatus.model_validate(rollout) if rollout else None,
    )


def promoting() -> tuple[ModelDeployment, retraining.RetrainingPlan]:
    deployment = md(
        {},
        status=champion_status(
            activeJob="iris-retrain-1",
            runs=1,
            lastTrigger={"reason": "Drift", "at": ago(minutes=5), "job": "iris-retrain-1"},
        ),
    )
    return deployment, plan(deployment, [challenger(1)])


def test_a_candidate_is_promoted_once_it_serves_every_replica() -> None:
    deployment, decided = promoting()
    assert deployment.spec.retraining is not None
    r1 = decided.serve
    assert r1 is not None
    assert (
        retraining.settle(decided, serving("Progressing", r1), deployment.spec.retraining, AT)
        == decided
    )
    settled = retraining.settle(decided, serving("Ready", r1), deployment.spec.retraining, AT)
    assert settled.status is not None and settled.status.candidate is None
    assert settled.status.last_decision is not None
    assert settled.status.last_decision.result == "Promoted"
    assert settled.history is not None
    assert [(e.version, e.why, e.training_job) for e in settled.history] == [
        ("r1", "Drift", "iris-retrain-1"),
        ("v1", "Spec", None),
    ]
    assert settled.history[0].score == pytest.approx(1.0)
    assert [e.reason for e in settled.events] == ["ChallengerPromoted"]


def test_a_candidate_whose_canary_rolled_back_is_rejected() -> None:
    deployment, decided = promoting()
    assert deployment.spec.retraining is not None and decided.serve is not None
    rolled_back = {
        "phase": "RolledBack",
        "reason": "AnalysisFailed",
        "message": "p99 2.1x stable",
        "canary": decided.serve.model_dump(),
    }
    settled = retraining.settle(
        decided, serving("Degraded", V1, rolled_back), deployment.spec.retraining, AT
    )
    assert settled.status is not None and settled.status.candidate is None
    assert settled.status.last_decision is not None
    assert settled.status.last_decision.reason == "CanaryRolledBack"
    assert "p99 2.1x stable" in settled.status.last_decision.message
    assert settled.history is not None and [e.version for e in settled.history] == ["v1"]


def test_history_and_old_retrainings_are_trimmed_to_history_limit() -> None:
    status = champion_status(
        runs=5,
        lastDecision={
            "job": "iris-retrain-5",
            "at": ago(hours=1),
            "result": "Rejected",
            "reason": "NotBetter",
        },
    )
    for n in (1, 2):
        status["modelHistory"].insert(
            0,
            {
                "version": f"r{n}",
                "uri": f"pvc://models/iris/r{n}",
                "sha256": V2_SHA,
                "trainingJob": f"iris-retrain-{n}",
                "promotedAt": ago(hours=5 - n),
                "why": "Drift",
            },
        )
    done = [challenger(n, improvement=-0.1) for n in (1, 2, 3, 4, 5)]
    decided = plan(md({"historyLimit": 2}, status=status), done)
    assert decided.history is not None and [e.version for e in decided.history] == ["r2", "r1"]
    # Of the five, the two newest stay, and so do the TrainingJobs of models in the history.
    assert decided.delete == ("iris-retrain-3",)
