"""Retraining, the closed loop: when to train a challenger, what to train, whether it replaces
the champion. Pure.

The champion is the newest entry of ``status.modelHistory``: the model spec.model names (why
``Spec``) until a challenger is promoted over it. The spec is never edited; a new model in
spec.model starts a new lineage. Each reconcile runs ``plan`` (decide on a finished retraining
TrainingJob, fire a trigger, say which model to serve), then, once the serving status is known,
``settle`` (a challenger on its way to serving is promoted once it serves every replica, or
rejected when its canary was rolled back).

A retraining TrainingJob is named ``<md>-retrain-<run>`` with the run number counted up from
the ones that exist: creating it twice (a lost status write, a restart) finds the first one.
At most one is undecided at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from croniter import croniter

from modelyard import naming
from modelyard.api import (
    API_GROUP_VERSION,
    TRAINING_JOB_KIND,
    Candidate,
    ModelDeployment,
    ModelDeploymentStatus,
    ModelHistoryEntry,
    ModelStatus,
    Retraining,
    RetrainingDecision,
    RetrainingStatus,
    RetrainingTriggerStatus,
    Score,
    TrainingJobStatus,
)
from modelyard.conditions import condition, parse_time
from modelyard.events import Event
from modelyard.rollout import same_model
from modelyard.serving import Resolution

CONDITION_STALLED = "RetrainingStalled"
Trigger = Literal["Drift", "Schedule", "Manual"]


def job_name(md_name: str, run: int) -> str:
    return f"{md_name}-retrain-{run}"


def run_of(name: str) -> int:
    """The run number ``job_name`` put in a name (0 for a name it did not make)."""
    number = name.rsplit("-", 1)[-1]
    return int(number) if number.isdigit() else 0


@dataclass(frozen=True)
class Challenger:
    """A retraining TrainingJob as observed: its run number, trigger and status."""

    name: str
    run: int
    trigger: Trigger
    status: TrainingJobStatus

    @classmethod
    def of(cls, body: dict[str, Any]) -> Challenger | None:
        meta = body.get("metadata") or {}
        labels = meta.get("labels") or {}
        run, trigger = str(labels.get(naming.LABEL_RUN, "")), labels.get(naming.LABEL_TRIGGER)
        if not run.isdigit() or trigger not in ("Drift", "Schedule", "Manual"):
            return None
        try:
            status = TrainingJobStatus.model_validate(body.get("status") or {})
        except ValueError:
            status = TrainingJobStatus()
        return cls(name=meta["name"], run=int(run), trigger=trigger, status=status)

    @property
    def finished(self) -> bool:
        return self.status.phase in ("Succeeded", "Failed")


@dataclass(frozen=True)
class RetrainingPlan:
    """``serve``: the model to serve instead of the one spec.model names (``None``: that one);
    ``direct``: serve it with a rolling update even when spec.rollout asks for a canary;
    ``create``: the TrainingJob to create; ``delete``: retraining TrainingJobs past
    ``historyLimit``; ``stalled``: RetrainingStalled's (reason, message) when it is True."""

    status: RetrainingStatus | None
    history: list[ModelHistoryEntry] | None
    serve: ModelStatus | None = None
    direct: bool = False
    create: dict[str, Any] | None = None
    delete: tuple[str, ...] = ()
    stalled: tuple[str, str] | None = None
    events: tuple[Event, ...] = field(default_factory=tuple)
    untriggered: RetrainingStatus | None = None  # the status had ``create`` not been asked for


def resolution(decided: RetrainingPlan) -> Resolution | None:
    """The model to serve instead of spec.model's, as the serving core takes it."""
    model, status = decided.serve, decided.status
    if model is None or status is None:
        return None
    candidate = status.candidate
    if candidate is not None and same_model(as_model(candidate), model):
        why = f"rolling out challenger {model.version} from {candidate.job}"
    else:
        why = f"serving {model.version}, promoted by spec.retraining"
    return Resolution(model, "ModelResolved", why)


def as_model(entry: ModelHistoryEntry | Candidate) -> ModelStatus:
    return ModelStatus(uri=entry.uri, version=entry.version, sha256=entry.sha256)


def lineage(
    history: list[ModelHistoryEntry],
    spec_model: ModelStatus | None,
    at: str,
    training_job: str | None = None,
) -> list[ModelHistoryEntry]:
    """``history`` with spec.model's model (``training_job``'s, when it names one) on top
    when it is not the model the lineage grew from (the newest ``Spec`` entry): the user chose
    another model, which is champion now."""
    base = next((entry for entry in history if entry.why == "Spec"), None)
    if spec_model is None or (base is not None and same_model(as_model(base), spec_model)):
        return history
    entry = ModelHistoryEntry(
        version=spec_model.version,
        uri=spec_model.uri,
        sha256=spec_model.sha256,
        training_job=training_job,
        promoted_at=at,
        why="Spec",
    )
    return [entry, *history]


def next_run(schedule: str, anchor: str) -> str:
    following = croniter(schedule, parse_time(anchor)).get_next(datetime)
    return str(following.strftime("%Y-%m-%dT%H:%M:%SZ"))


def judge(
    retraining: Retraining, challenger: Challenger, champion: ModelHistoryEntry, at: str
) -> RetrainingDecision:
    """The promotion decision table for a finished retraining TrainingJob."""
    status, promotion = challenger.status, retraining.promotion
    comparison = status.comparison
    metric = comparison.metric if comparison else None
    ours = Score(
        version=status.model.version if status.model else "-",
        sha256=status.model.sha256 if status.model else None,
        score=comparison.challenger if comparison else None,
    )
    theirs = Score(
        version=champion.version,
        sha256=champion.sha256,
        score=(
            comparison.champion.metrics.get(comparison.metric)
            if comparison and comparison.champion
            else None
        ),
    )

    def decided(result: str, reason: str, message: str) -> RetrainingDecision:
        return RetrainingDecision.model_validate(
            {
                "job": challenger.name,
                "at": at,
                "result": result,
                "reason": reason,
                "message": message[:512],
                "metric": metric,
                "challenger": ours if status.model else None,
                "champion": theirs,
            }
        )

    if status.phase == "Failed":
        why = status.last_failure.reason if status.last_failure else "TrainingFailed"
        text = status.last_failure.message if status.last_failure else "the training failed"
        reason = "GateNotMet" if why == "GateNotMet" else "TrainingFailed"
        return decided("Rejected", reason, f"{challenger.name}: {why}: {text}")
    if status.model is None:
        dataset = status.dataset.digest if status.dataset else "the dataset"
        return decided(
            "Rejected",
            "DataUnchanged",
            f"{challenger.name}: {dataset} is the data champion {champion.version} was "
            "trained on; nothing trained",
        )
    if promotion.policy == "BeatChampion":
        if comparison is None or comparison.champion is None or comparison.improvement is None:
            why = (comparison.reason if comparison else None) or "the trainer had no champion"
            return decided("Rejected", "ChampionNotScored", f"no fair comparison: {why}")
        gain = comparison.improvement
        if gain <= 0 or gain < promotion.min_improvement:
            return decided(
                "Rejected",
                "NotBetter",
                f"{ours.version} scores {ours.score:.4g} against champion {theirs.version}'s "
                f"{theirs.score:.4g} on {metric} (improvement {gain:+.4g}, at least "
                f"{promotion.min_improvement:g} and above 0 needed)",
            )
    for name, bound in sorted(promotion.max_regression.items()):
        worse = comparison.regressions.get(name) if comparison else None
        if worse is not None and worse > bound:
            return decided(
                "Rejected",
                "Regression",
                f"{ours.version} is {worse:.4g} worse than champion {theirs.version} on "
                f"{name} (maxRegression {bound:g})",
            )
    if promotion.policy == "Manual" and promotion.approve != status.model.sha256:
        return decided(
            "AwaitingApproval",
            "AwaitingApproval",
            f"{ours.version} passed; set spec.retraining.promotion.approve to "
            f"{status.model.sha256} to promote it",
        )
    how = {"BeatChampion": "BeatChampion", "PassGate": "GatePassed", "Manual": "Approved"}
    return decided(
        "Promoting",
        how[promotion.policy],
        f"{ours.version} replaces champion {theirs.version}"
        + (f" ({metric} {ours.score:.4g} vs {theirs.score:.4g})" if theirs.score else ""),
    )


def build_training_job(
    md: ModelDeployment,
    template: dict[str, Any],
    champion: ModelHistoryEntry,
    *,
    run: int,
    trigger: Trigger,
    skip_if_data_unchanged: bool,
) -> dict[str, Any]:
    """The retraining TrainingJob: ``template`` (a TrainingJob spec) given the champion to be
    compared with, owned by the ModelDeployment (deleted with it)."""
    spec = {k: v for k, v in template.items() if k not in ("suspend", "champion")}
    if champion.sha256 is not None:
        spec["champion"] = {
            "storageUri": champion.uri,
            "sha256": champion.sha256,
            "skipIfDataUnchanged": skip_if_data_unchanged,
        }
    meta = md.metadata
    return {
        "apiVersion": API_GROUP_VERSION,
        "kind": TRAINING_JOB_KIND,
        "metadata": {
            "name": job_name(meta.name, run),
            "namespace": meta.namespace,
            "labels": {
                naming.LABEL_RETRAINING_FOR: naming.fit_name(meta.name),
                naming.LABEL_TRIGGER: trigger,
                naming.LABEL_RUN: str(run),
                naming.LABEL_MANAGED_BY: "modelyard",
            },
            "ownerReferences": [naming.model_deployment_owner(meta)],
        },
        "spec": spec,
    }


def plan(
    md: ModelDeployment,
    spec_model: ModelStatus | None,
    challengers: list[Challenger],
    template: dict[str, Any] | None,
    *,
    template_error: str = "",
    now: datetime,
    at: str,
) -> RetrainingPlan:
    """Decide from the ModelDeployment, the model its spec.model resolves to (``None``: none
    yet), its retraining TrainingJobs and the template's spec (``None``: not available, as
    ``template_error`` says)."""
    retraining = md.spec.retraining
    if retraining is None:
        return RetrainingPlan(status=None, history=None)
    prev = md.status.retraining or RetrainingStatus(since=at)
    generation = md.metadata.generation
    status = prev.model_copy(update={"generation": generation, "active_job": None})
    if prev.generation is not None and prev.generation != generation:
        status.attempts = 0  # the spec changed: a stalled loop may try again
    before = list(md.status.model_history or [])
    ref = md.spec.model.training_job_ref
    history = lineage(before, spec_model, at, ref.name if ref else None)
    events: list[Event] = []
    if len(history) > len(before) and status.candidate is not None:
        # spec.model names another model now: the challenger in flight is not wanted.
        status.last_decision = RetrainingDecision(
            job=status.candidate.job,
            at=at,
            result="Rejected",
            reason="Superseded",
            message=f"spec.model names {history[0].version} now; {status.candidate.version} "
            "is not promoted",
        )
        status.candidate = None
    champion = history[0] if history else None

    # 1. Decide on the newest retraining, once it has finished.
    challengers = sorted(challengers, key=lambda c: c.run)
    decided_job = status.last_decision.job if status.last_decision else None
    newest = challengers[-1] if challengers else None
    # Runs count up: only one newer than the last decided run waits for a decision (after a
    # deleted run's decision, the older runs still there stay decided).
    decided_run = run_of(decided_job) if decided_job else 0
    undecided = newest if newest is not None and newest.run > decided_run else None
    # The retraining last started (or last seen running), if it is gone undecided: deleted by
    # hand before it finished. A decision all the same, so the loop goes on.
    started = prev.active_job or (prev.last_trigger.job if prev.last_trigger else None)
    present = {c.name for c in challengers}
    if started is not None and started != decided_job and started not in present:
        status.last_decision = RetrainingDecision(
            job=started,
            at=at,
            result="Rejected",
            reason="JobDeleted",
            message=f"TrainingJob {started} was deleted before it finished",
        )
        events.append(Event("ChallengerRejected", status.last_decision.message, warning=True))
    awaiting = prev.last_decision is not None and prev.last_decision.result == "AwaitingApproval"
    if awaiting and newest is not None and newest.name == decided_job and champion is not None:
        undecided = newest  # judged again: the approval may have come
    if undecided is not None and champion is not None:
        if not undecided.finished:
            status.active_job = undecided.name
        else:
            decision = judge(retraining, undecided, champion, at)
            if not (awaiting and decision.result == "AwaitingApproval"):
                status.last_decision = decision
                if decision.result == "Rejected":
                    events.append(Event("ChallengerRejected", decision.message, warning=True))
                elif decision.result == "AwaitingApproval":
                    events.append(Event("ChallengerAwaitingApproval", decision.message, False))
            model = undecided.status.model
            if decision.result == "Promoting" and model is not None:
                status.candidate = Candidate(
                    uri=model.uri, version=model.version, sha256=model.sha256, job=undecided.name
                )
    runs = max([prev.runs, *(c.run for c in challengers)])
    status.runs = runs

    # 2. Triggers: one retraining at a time, none while a challenger is on its way or waits.
    waiting = status.last_decision is not None and status.last_decision.result == "AwaitingApproval"
    busy = status.active_job is not None or status.candidate is not None or waiting
    stalled: tuple[str, str] | None = None
    create = None
    schedule = retraining.schedule if "Schedule" in retraining.triggers else None
    status.next_run = next_run(schedule, prev.last_scheduled or prev.since) if schedule else None
    drift = md.status.drift
    drifting = (
        drift is not None
        and drift.state == "Drifting"
        and champion is not None
        and drift.model_version == champion.version
    )
    if not drifting:
        status.episode, status.attempts = None, 0
    elif drift is not None and status.episode != drift.since:
        status.episode, status.attempts = drift.since, 0
    trigger: Trigger | None = None
    if retraining.run is not None and retraining.run != prev.handled_run:
        trigger = "Manual"
    elif status.next_run is not None and now >= parse_time(status.next_run):
        trigger = "Schedule"
    elif "OnDrift" in retraining.triggers and drifting and drift is not None:
        onset = (now - parse_time(drift.since)).total_seconds()
        last_end = status.last_decision.at if status.last_decision else None
        cooled = last_end is None or (
            (now - parse_time(last_end)).total_seconds() >= retraining.cooldown_seconds
        )
        if status.attempts >= retraining.max_attempts_per_episode:
            stalled = (
                "AttemptsExhausted",
                f"{status.attempts} retraining(s) since drift began at {drift.since}, none "
                "promoted; waiting for the drift to clear or the spec to change",
            )
        elif onset >= retraining.on_drift.min_duration_seconds and cooled:
            trigger = "Drift"
    if trigger is not None and champion is None:
        trigger = None  # nothing served yet: nothing to retrain
    if trigger is not None and template is None:
        stalled = ("TemplateUnavailable", template_error or "no TrainingJob spec to retrain with")
        trigger = None
    unpinned = champion is not None and champion.sha256 is None
    if trigger is not None and unpinned and retraining.promotion.policy == "BeatChampion":
        stalled = (
            "ChampionNotPinned",
            f"champion {champion.version if champion else '?'} has no sha256 to verify it "
            "by: pin spec.model.sha256, or use promotion.policy PassGate",
        )
        trigger = None
    untriggered = status.model_copy()
    if trigger is not None and not busy and champion is not None and template is not None:
        runs += 1
        create = build_training_job(
            md,
            template,
            champion,
            run=runs,
            trigger=trigger,
            skip_if_data_unchanged=retraining.skip_if_data_unchanged and trigger != "Manual",
        )
        name = create["metadata"]["name"]
        status.runs, status.active_job = runs, name
        status.last_trigger = RetrainingTriggerStatus(reason=trigger, at=at, job=name)
        if trigger == "Manual":
            status.handled_run = retraining.run
        elif trigger == "Schedule":
            status.last_scheduled = at
            status.next_run = next_run(schedule, at) if schedule else None
        else:
            status.attempts += 1
        events.append(
            Event("RetrainTriggered", f"{trigger}: training challenger {name}", warning=False)
        )

    # 3. What to serve, and what to keep.
    serve = as_model(status.candidate) if status.candidate else None
    if serve is None and champion is not None and champion.why != "Spec":
        serve = as_model(champion)
    history = history[: retraining.history_limit]
    keep = {status.active_job, status.candidate.job if status.candidate else None}
    keep |= {entry.training_job for entry in history}
    old = [c.name for c in challengers[: max(0, len(challengers) - retraining.history_limit)]]
    return RetrainingPlan(
        status=status,
        history=history,
        serve=serve,
        direct=status.candidate is not None and retraining.promotion.via == "Direct",
        create=create,
        delete=tuple(name for name in old if name not in keep),
        stalled=stalled,
        events=tuple(events),
        untriggered=untriggered,
    )


def refused(decided: RetrainingPlan, message: str) -> RetrainingPlan:
    """The API server refused the retraining TrainingJob: nothing was triggered (the next
    reconcile tries again), and RetrainingStalled says why."""
    events = tuple(e for e in decided.events if e.reason != "RetrainTriggered")
    return replace(
        decided,
        status=decided.untriggered or decided.status,
        create=None,
        stalled=("TrainingJobRefused", message),
        events=(*events, Event("RetrainRefused", message, warning=True)),
    )


def with_retraining(
    md: ModelDeployment, serving: ModelDeploymentStatus, decided: RetrainingPlan, *, at: str
) -> ModelDeploymentStatus:
    """The serving status with what retraining decided: ``status.retraining``,
    ``status.modelHistory`` and the RetrainingStalled condition."""
    stalled = decided.stalled
    state = condition(
        CONDITION_STALLED,
        "True" if stalled else "False",
        stalled[0] if stalled else "AsExpected",
        stalled[1] if stalled else "",
        generation=md.metadata.generation,
        previous=md.status.conditions,
        at=at,
    )
    return serving.model_copy(
        update={
            "retraining": decided.status,
            "model_history": decided.history,
            "conditions": [*serving.conditions, state],
        }
    )


def settle(
    decided: RetrainingPlan, serving: ModelDeploymentStatus, retraining: Retraining, at: str
) -> RetrainingPlan:
    """The candidate's fate, from the serving status this reconcile computed: promoted once it
    serves every replica (Ready), rejected when its canary was rolled back."""
    status = decided.status
    candidate = status.candidate if status is not None else None
    if status is None or candidate is None or decided.history is None:
        return decided
    model, decision = as_model(candidate), status.last_decision
    scores = {
        "metric": decision.metric if decision else None,
        "challenger": decision.challenger if decision else None,
        "champion": decision.champion if decision else None,
    }
    rollout = serving.rollout
    if rollout is not None and rollout.phase == "RolledBack" and same_model(rollout.canary, model):
        rejected = RetrainingDecision(
            job=candidate.job,
            at=at,
            result="Rejected",
            reason="CanaryRolledBack",
            message=f"the canary of {candidate.version} was rolled back: {rollout.message}"[:512],
            **scores,
        )
        return replace(
            decided,
            status=status.model_copy(update={"candidate": None, "last_decision": rejected}),
            events=(*decided.events, Event("ChallengerRejected", rejected.message, True)),
        )
    if serving.phase != "Ready" or not same_model(serving.model, model):
        return decided
    entry = ModelHistoryEntry(
        version=candidate.version,
        uri=candidate.uri,
        sha256=candidate.sha256,
        training_job=candidate.job,
        promoted_at=at,
        why=status.last_trigger.reason if status.last_trigger else "Manual",
        score=decision.challenger.score if decision and decision.challenger else None,
    )
    message = f"{candidate.version} (from {candidate.job}) is the champion and serves"
    promoted = RetrainingDecision(
        job=candidate.job,
        at=at,
        result="Promoted",
        reason=decision.reason if decision else "Promoted",
        message=message,
        **scores,
    )
    return replace(
        decided,
        status=status.model_copy(update={"candidate": None, "last_decision": promoted}),
        history=[entry, *decided.history][: retraining.history_limit],
        events=(*decided.events, Event("ChallengerPromoted", message, False)),
    )
