"""The two custom resources as pydantic models: camelCase on the wire, snake_case in Python.

``crds/trainingjobs.yaml`` and ``crds/modeldeployments.yaml`` mirror these classes; the
TrainingJob spec embeds the runtime's own ``DatasetSpec``/``ModelSpec``/``ValidationSpec``/
``SearchSpec`` (one source of truth). ``tests/unit/test_crd_agreement.py`` proves the CRD
schemas, these models and ``manifests/samples/`` agree, and that each CEL rule in the CRDs has a
pydantic validator here (or in the runtime's ``spec.py``) that says the same thing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from croniter import croniter
from modelyard_runtime.contract import (
    DEFAULT_MAX_BATCH_SIZE,
    MAX_BATCH_DELAY_US,
    MAX_BATCH_SIZE,
    CamelModel,
    Comparison,
    DatasetInfo,
    ModelRef,
    RuntimeChoice,
    RuntimeName,
    ValidationResult,
    WireModel,
)
from modelyard_runtime.spec import (
    PATH_SEGMENT_PATTERN,
    DatasetSpec,
    ModelSpec,
    SearchSpec,
    TrainingSpec,
    ValidationSpec,
)
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from modelyard import API_GROUP, API_VERSION

TRAINING_JOB_KIND = "TrainingJob"
TRAINING_JOB_PLURAL = "trainingjobs"
MODEL_DEPLOYMENT_KIND = "ModelDeployment"
MODEL_DEPLOYMENT_PLURAL = "modeldeployments"
API_GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

# Path segments are never ``.`` or ``..`` (PATH_SEGMENT_PATTERN): a URI stays inside its
# claim's mount whatever it says.
STORAGE_URI_PATTERN = rf"^pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/{PATH_SEGMENT_PATTERN})*/?$"
# What a TrainingJob may read: a file on a claim (``file://`` is for local trainer runs only).
DATASET_URI_PATTERN = rf"^pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/{PATH_SEGMENT_PATTERN})+$"
SHA256_PATTERN = r"^[a-f0-9]{64}$"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A ModelDeployment names its Service, so its name must be a DNS-1035 label.
SERVICE_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
SERVICE_NAME_MAX = 63
MODEL_DEPLOYMENT_NAME_MESSAGE = (
    "a ModelDeployment names its Service: at most 63 characters, lowercase letters, digits and "
    "'-', starting with a letter and ending with a letter or digit"
)


def model_deployment_name_error(name: str) -> str | None:
    """The CRD's CEL rule on ``metadata.name``, for clusters that let a name through anyway."""
    if len(name) <= SERVICE_NAME_MAX and re.fullmatch(SERVICE_NAME_PATTERN, name):
        return None
    return f"metadata.name {name!r}: {MODEL_DEPLOYMENT_NAME_MESSAGE}"


Quantity = str | int
SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=BaseModel)


# --- shared pieces ------------------------------------------------------------------------------


class ResourceRequirements(CamelModel):
    """A container's ``resources`` (the subset Modelyard passes through)."""

    requests: dict[str, Quantity] | None = None
    limits: dict[str, Quantity] | None = None


class Condition(CamelModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class LastFailure(CamelModel):
    reason: str
    exit_code: int | None = None
    message: str = ""
    pod: str | None = None


# --- TrainingJob ----------------------------------------------------------------------------------


class OutputSpec(CamelModel):
    storage_uri: str | None = Field(default=None, pattern=STORAGE_URI_PATTERN)


class ChampionSpec(CamelModel):
    """The model this training must be compared with (a retraining's champion): verified by
    its artifact digest, then scored on the new model's own holdout split."""

    storage_uri: str = Field(pattern=STORAGE_URI_PATTERN)  # its directory, pvc://claim/.../<v>
    sha256: str = Field(pattern=SHA256_PATTERN)
    # Train nothing when the dataset's digest equals the one the champion was trained on.
    skip_if_data_unchanged: bool = False


class TrainingJobSpec(CamelModel):
    dataset: DatasetSpec
    model: ModelSpec
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    search: SearchSpec | None = None
    seed: int = Field(default=42, ge=0)
    output: OutputSpec = Field(default_factory=OutputSpec)
    resources: ResourceRequirements | None = None
    backoff_limit: int = Field(default=2, ge=0, le=20)
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    suspend: bool = False
    champion: ChampionSpec | None = None

    @model_validator(mode="after")
    def _trainable(self) -> TrainingJobSpec:
        self.training_spec()  # the runtime's cross-field rules (metrics fit the task, ...)
        uri = self.dataset.uri
        if uri is not None and not re.fullmatch(DATASET_URI_PATTERN, uri):
            raise ValueError(
                f"dataset.uri {uri!r}: a TrainingJob reads pvc://<claim>/<path> with no '.' or "
                "'..' segments"
            )
        return self

    def training_spec(self) -> TrainingSpec:
        """The part the trainer is given, as the runtime's own model."""
        return TrainingSpec(
            dataset=self.dataset,
            model=self.model,
            validation=self.validation,
            search=self.search,
            seed=self.seed,
        )


TrainingPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Suspended"]


class DatasetStatus(CamelModel):
    digest: str
    rows: int
    columns: int

    @classmethod
    def of(cls, info: DatasetInfo) -> DatasetStatus:
        return cls(digest=info.digest, rows=info.rows, columns=info.columns)


class TrainingJobStatus(CamelModel):
    phase: TrainingPhase | None = None
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    job_name: str | None = None
    attempts: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    model: ModelRef | None = None
    metrics: dict[str, float] | None = None
    best_params: dict[str, Any] | None = None
    dataset: DatasetStatus | None = None
    validation: ValidationResult | None = None
    comparison: Comparison | None = None  # against spec.champion, on this model's holdout
    last_failure: LastFailure | None = None


# --- ModelDeployment ------------------------------------------------------------------------------


class TrainingJobRef(CamelModel):
    name: str = Field(min_length=1, max_length=253, pattern=K8S_NAME_PATTERN)


class ModelSource(CamelModel):
    """Exactly one of ``trainingJobRef`` (follow that job's validated model) or ``storageUri``
    (a model directory ``pvc://claim/path/<version>``, optionally pinned by ``sha256``)."""

    training_job_ref: TrainingJobRef | None = None
    storage_uri: str | None = Field(default=None, pattern=STORAGE_URI_PATTERN)
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)

    @model_validator(mode="after")
    def _one_source(self) -> ModelSource:
        if (self.training_job_ref is None) == (self.storage_uri is None):
            raise ValueError("model: set exactly one of trainingJobRef or storageUri")
        if self.sha256 is not None and self.storage_uri is None:
            raise ValueError("model.sha256 pins a storageUri; a trainingJobRef brings its own")
        return self


class Autoscaling(CamelModel):
    min_replicas: int = Field(default=1, ge=1, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    target_cpu_utilization_percentage: int = Field(
        default=80, ge=1, le=100, alias="targetCPUUtilizationPercentage"
    )

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling: minReplicas must not exceed maxReplicas")
        return self


DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
MIN_DRIFT_INTERVAL_SECONDS = 5


def duration_seconds(text: str) -> int:
    """``1h30m``, ``5m``, ``90s`` (the CRD's pattern) -> seconds."""
    match = re.fullmatch(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?", text)
    if match is None or not text:
        raise ValueError(f"{text!r} is not a duration like 5m, 1h or 90s")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class DriftWindow(CamelModel):
    """The recent rows each server pod keeps (a ring buffer): at most ``size``, none older
    than ``maxAge``."""

    size: int = Field(default=1000, ge=10, le=100_000)
    max_age: str = Field(default="1h", min_length=2, pattern=DURATION_PATTERN)

    @property
    def max_age_seconds(self) -> int:
        return duration_seconds(self.max_age)


class DriftMonitoring(CamelModel):
    """Data and prediction drift of the served model against its training reference."""

    enabled: bool = False
    interval: str = Field(default="5m", min_length=2, pattern=DURATION_PATTERN)
    window: DriftWindow = Field(default_factory=DriftWindow)
    min_samples: int = Field(default=200, ge=1, le=100_000)
    tests: Literal["Auto"] = "Auto"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["Bonferroni", "FDR"] = "Bonferroni"
    min_effect: float = Field(default=0.1, ge=0)
    persistence: int = Field(default=2, ge=1, le=100)
    prediction_drift: bool = True

    @model_validator(mode="after")
    def _durations(self) -> DriftMonitoring:
        if duration_seconds(self.interval) < MIN_DRIFT_INTERVAL_SECONDS:
            raise ValueError(f"interval: at least {MIN_DRIFT_INTERVAL_SECONDS}s between checks")
        if self.window.max_age_seconds < 1:
            raise ValueError("monitoring.drift.window.maxAge: at least 1s")
        return self

    @property
    def interval_seconds(self) -> int:
        return duration_seconds(self.interval)


class Monitoring(CamelModel):
    drift: DriftMonitoring | None = None


MIN_ANALYSIS_INTERVAL_SECONDS = 1
MAX_CANARY_STEPS = 20


class CanaryAnalysis(CamelModel):
    """How each canary step is judged, from the server pods' own metrics over the step."""

    interval: str = Field(default="30s", min_length=2, pattern=DURATION_PATTERN)
    min_requests: int = Field(default=200, ge=1, le=10_000_000)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_ratio: float = Field(default=1.25, gt=0)
    max_p99_latency_ms: float | None = Field(default=None, gt=0, alias="maxP99LatencyMs")
    max_prediction_shift: float = Field(default=0.1, ge=0, le=1)
    failure_threshold: int = Field(default=2, ge=1, le=100)
    inconclusive_timeout: str = Field(default="20m", min_length=2, pattern=DURATION_PATTERN)

    @model_validator(mode="after")
    def _durations(self) -> CanaryAnalysis:
        if duration_seconds(self.interval) < MIN_ANALYSIS_INTERVAL_SECONDS:
            raise ValueError("analysis.interval: at least 1s between checks")
        return self

    @property
    def interval_seconds(self) -> int:
        return duration_seconds(self.interval)

    @property
    def inconclusive_timeout_seconds(self) -> int:
        return duration_seconds(self.inconclusive_timeout)


class Canary(CamelModel):
    """Traffic percent per step (then promote), held at least ``stepDuration`` each."""

    steps: list[int] = Field(default_factory=lambda: [10, 25, 50], min_length=1, max_length=20)
    step_duration: str = Field(default="2m", min_length=2, pattern=DURATION_PATTERN)
    # Extra stable replicas a fixed-size Deployment may get so a small weight can be expressed
    # (one canary pod beside one stable pod is 50%, not 10%); never with autoscaling.
    max_surge: int = Field(default=2, ge=0, le=100)
    analysis: CanaryAnalysis = Field(default_factory=CanaryAnalysis)

    @field_validator("steps")
    @classmethod
    def _increasing_percentages(cls, steps: list[int]) -> list[int]:
        if any(not 1 <= step <= 99 for step in steps) or any(
            a >= b for a, b in itertools.pairwise(steps)
        ):
            raise ValueError("canary.steps: increasing percentages, each from 1 to 99")
        return steps

    @property
    def step_duration_seconds(self) -> int:
        return duration_seconds(self.step_duration)


class Rollout(CamelModel):
    """How a new model replaces the served one: at once (RollingUpdate) or through a canary."""

    strategy: Literal["RollingUpdate", "Canary"] = "RollingUpdate"
    canary: Canary = Field(default_factory=Canary)
    auto_promote: bool = True
    auto_rollback: bool = True
    # The manual gate: when set, a canary is promoted (or a rolled-back one retried) only once
    # this names its model's sha256 -- a declarative approval, visible in Git.
    approve: str | None = Field(default=None, pattern=SHA256_PATTERN)
    # The manual stop: a canary of the model with this sha256 is rolled back and not started
    # again while it is set; removing it retries.
    abort: str | None = Field(default=None, pattern=SHA256_PATTERN)


class OnDrift(CamelModel):
    # How long the drift verdict must have been Drifting (on top of its own persistence).
    min_duration: str = Field(default="30m", min_length=2, pattern=DURATION_PATTERN)

    @property
    def min_duration_seconds(self) -> int:
        return duration_seconds(self.min_duration)


class RetrainingTemplate(CamelModel):
    """Where a retraining TrainingJob's spec comes from: a copy of that TrainingJob's spec as
    it is now, or the spec written here. Its dataset is whatever that spec points at then (a
    file a data pipeline refreshes)."""

    training_job_ref: TrainingJobRef | None = None
    spec: TrainingJobSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RetrainingTemplate:
        if (self.training_job_ref is None) == (self.spec is None):
            raise ValueError("retraining.template: set exactly one of trainingJobRef or spec")
        return self


PromotionPolicy = Literal["BeatChampion", "PassGate", "Manual"]


class Promotion(CamelModel):
    """When a challenger (a retraining's model that passed its gate) replaces the champion."""

    policy: PromotionPolicy = "BeatChampion"
    # Challenger minus champion on the gate's primary metric, both on the challenger's holdout
    # (signed so that positive is better whatever the metric's direction).
    min_improvement: float = Field(default=0.0, ge=0)
    # Per metric, how much worse than the champion the challenger may be.
    max_regression: dict[str, float] = Field(default_factory=dict)
    via: Literal["Rollout", "Direct"] = "Rollout"
    # Policy Manual: the challenger whose sha256 this names is promoted.
    approve: str | None = Field(default=None, pattern=SHA256_PATTERN)


RetrainingTrigger = Literal["OnDrift", "Schedule"]


class Retraining(CamelModel):
    """Retrain the served model on drift, on a schedule or on request; promote the challenger
    only when it beats the champion on the same holdout (or as ``promotion`` says)."""

    triggers: list[RetrainingTrigger] = Field(default_factory=list, max_length=2)
    schedule: str | None = Field(default=None, min_length=1, max_length=100)
    on_drift: OnDrift = Field(default_factory=OnDrift)
    template: RetrainingTemplate
    cooldown: str = Field(default="24h", min_length=2, pattern=DURATION_PATTERN)
    max_attempts_per_episode: int = Field(default=3, ge=1, le=100)
    skip_if_data_unchanged: bool = True
    history_limit: int = Field(default=10, ge=1, le=100)
    promotion: Promotion = Field(default_factory=Promotion)
    # The manual trigger: a new value starts one retraining (whatever the cooldown), once.
    run: str | None = Field(default=None, min_length=1, max_length=63)

    @model_validator(mode="after")
    def _schedule(self) -> Retraining:
        if "Schedule" in self.triggers and self.schedule is None:
            raise ValueError("retraining: the Schedule trigger needs a schedule (cron)")
        if self.schedule is not None and not croniter.is_valid(self.schedule):
            raise ValueError(f"retraining.schedule: {self.schedule!r} is not a cron expression")
        return self

    @property
    def cooldown_seconds(self) -> int:
        return duration_seconds(self.cooldown)


class Batching(CamelModel):
    """Requests that come while a predict runs are merged into the next one (never waiting
    when idle, unless ``maxDelayMicroseconds`` opens a window)."""

    mode: Literal["Off", "Opportunistic"] = "Opportunistic"
    max_batch_size: int = Field(default=DEFAULT_MAX_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE)
    max_delay_microseconds: int = Field(default=0, ge=0, le=MAX_BATCH_DELAY_US)


class ServerSpec(CamelModel):
    """How the model server runs the model: ``runtime`` Auto serves the compiled copy
    (ONNX Runtime) where the trainer found it equal to the pipeline and faster."""

    runtime: RuntimeChoice = "Auto"
    batching: Batching = Field(default_factory=Batching)


class ModelDeploymentSpec(CamelModel):
    model: ModelSource
    server: ServerSpec = Field(default_factory=ServerSpec)
    replicas: int | None = Field(default=None, ge=0, le=1000)
    autoscaling: Autoscaling | None = None
    resources: ResourceRequirements | None = None
    image: str | None = Field(default=None, min_length=1)
    monitoring: Monitoring | None = None
    rollout: Rollout | None = None
    retraining: Retraining | None = None

    @property
    def canary(self) -> Canary | None:
        """The canary asked for, ``None`` for a plain rolling update."""
        rollout = self.rollout
        return rollout.canary if rollout is not None and rollout.strategy == "Canary" else None

    @property
    def drift(self) -> DriftMonitoring | None:
        """The drift monitoring asked for, ``None`` when off."""
        drift = self.monitoring.drift if self.monitoring is not None else None
        return drift if drift is not None and drift.enabled else None

    @model_validator(mode="after")
    def _replicas_or_autoscaling(self) -> ModelDeploymentSpec:
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError("set replicas or autoscaling, not both (the HPA owns replicas)")
        requests = (self.resources.requests if self.resources else None) or {}
        if self.autoscaling is not None and "cpu" not in requests:
            raise ValueError(
                "autoscaling scales on CPU utilization, which needs resources.requests.cpu"
            )
        return self

    @property
    def desired_replicas(self) -> int:
        """What the operator asks for: ``replicas`` (default 1), or the HPA's floor."""
        if self.autoscaling is not None:
            return self.autoscaling.min_replicas
        return 1 if self.replicas is None else self.replicas


ServingPhase = Literal["Pending", "Progressing", "Ready", "Degraded"]


class ModelStatus(CamelModel):
    uri: str
    version: str
    sha256: str | None = None
    # What its servers run: spec.server.runtime, Auto resolved where the operator knows the
    # artifact (a TrainingJob's model); unset where only the server does (its V2 metadata).
    runtime: RuntimeName | None = None


DriftState = Literal["NoDrift", "Drifting", "InsufficientData"]


class FeatureDrift(CamelModel):
    """One test of one feature (or of the model's output) on the pooled window."""

    name: str
    test: str
    statistic: float | None = None
    p_value: float | None = None
    effect: float | None = None
    drifted: bool = False


class DriftStatus(CamelModel):
    """The drift verdict: ``state`` turns to Drifting only after ``persistence`` drifting checks
    in a row and back after three clean ones; ``since`` is when it last changed."""

    state: DriftState
    since: str
    last_checked: str
    model_version: str  # the served model the verdict is about; a new model starts afresh
    samples: int = 0
    pods: int = 0
    message: str | None = None
    features: list[FeatureDrift] = Field(default_factory=list)
    prediction: FeatureDrift | None = None


RolloutPhase = Literal["Idle", "Progressing", "Paused", "Promoting", "Succeeded", "RolledBack"]
Verdict = Literal["Pass", "Fail", "Inconclusive"]


class CanaryAnalysisStatus(CamelModel):
    """One check of a canary step: both arms over the same window (the step so far)."""

    checked_at: str
    verdict: Verdict
    reason: str
    requests: int = 0  # the canary's answered requests (2xx and 5xx; a client's 4xx is not)
    stable_requests: int = 0
    error_rate: float | None = None
    stable_error_rate: float | None = None
    p99_ms: float | None = None
    stable_p99_ms: float | None = None
    latency_ratio: float | None = None
    prediction_shift: float | None = None  # Jensen-Shannon distance of the predicted classes


class RolloutStatus(CamelModel):
    phase: RolloutPhase
    reason: str | None = None
    message: str | None = None
    stable: ModelStatus | None = None
    canary: ModelStatus | None = None
    step: int | None = None  # 1-based, of ``steps``
    steps: int | None = None
    step_started_at: str | None = None
    # When every canary pod of the step was ready: the step's clock and analysis window start
    # there, so pods still starting neither skew the split nor count against the canary.
    analysis_started_at: str | None = None
    desired_weight: int | None = None
    actual_weight: float | None = None  # the canary's measured share of requests, percent
    canary_replicas: int | None = None
    failed_checks: int = 0
    generation: int | None = None  # the spec generation this rollout was decided for
    last_analysis: CanaryAnalysisStatus | None = None


class Score(CamelModel):
    """A model and its score on the gate's primary metric (on the challenger's holdout)."""

    version: str
    sha256: str | None = None
    score: float | None = None


DecisionResult = Literal["Promoting", "AwaitingApproval", "Promoted", "Rejected"]


class RetrainingDecision(CamelModel):
    job: str
    at: str
    result: DecisionResult
    reason: str  # Promoted, BeatChampion, GateNotMet, NotBetter, DataUnchanged, ...
    message: str = ""
    metric: str | None = None
    challenger: Score | None = None
    champion: Score | None = None


class RetrainingTriggerStatus(CamelModel):
    reason: Literal["Drift", "Schedule", "Manual"]
    at: str
    job: str


class Candidate(CamelModel):
    """A challenger on its way to serving (through the canary when there is one)."""

    uri: str
    version: str
    sha256: str
    job: str


class RetrainingStatus(CamelModel):
    since: str  # when retraining was first seen on: the schedule counts from here
    generation: int | None = None  # the spec generation last seen (a new one resets attempts)
    last_trigger: RetrainingTriggerStatus | None = None
    last_scheduled: str | None = None  # the last Schedule trigger
    active_job: str | None = None
    next_run: str | None = None  # the schedule's next time, when Schedule is a trigger
    runs: int = 0  # retraining TrainingJobs created so far (their names count up)
    attempts: int = 0  # retrainings in the current drift episode
    episode: str | None = None  # when the current drift episode began (drift.since)
    handled_run: str | None = None  # the last spec.retraining.run acted on
    candidate: Candidate | None = None
    last_decision: RetrainingDecision | None = None


class ModelHistoryEntry(CamelModel):
    """One model that served as champion, newest first."""

    version: str
    uri: str
    sha256: str | None = None
    training_job: str | None = None
    promoted_at: str
    why: Literal["Spec", "Drift", "Schedule", "Manual"]  # Spec: what spec.model names
    score: float | None = None


class ModelDeploymentStatus(CamelModel):
    phase: ServingPhase | None = None
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    replicas: int | None = None
    ready_replicas: int | None = None
    url: str | None = None
    model: ModelStatus | None = None
    last_failure: LastFailure | None = None
    drift: DriftStatus | None = None
    rollout: RolloutStatus | None = None
    retraining: RetrainingStatus | None = None
    model_history: list[ModelHistoryEntry] | None = None


# --- whole objects, parsed once at the edge ------------------------------------------------------


class ObjectMeta(WireModel):
    """The part of ``metadata`` the operator reads (the API server writes the rest)."""

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 1
    deletion_timestamp: str | None = None

    @field_validator("namespace", mode="before")
    @classmethod
    def _default_namespace(cls, value: object) -> object:
        return value or "default"

    @field_validator("generation", mode="before")
    @classmethod
    def _first_generation(cls, value: object) -> object:
        return value or 1


class InvalidSpec(Exception):
    """A custom resource the operator cannot act on: its spec does not parse (a cluster with an
    older CRD, CEL off) or breaks a rule only the operator knows (size limits, allowed images).
    ``message`` names the field; the object's status says it with reason ``InvalidSpec``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message[:512]


def describe(error: ValidationError, root: str = "spec") -> str:
    """A pydantic error as a user reads it: ``spec.model.estimator: Input should be ...``."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in (root, *item["loc"]))
        parts.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _parse_spec(model: type[SpecT], body: dict[str, Any]) -> SpecT:
    try:
        return model.model_validate(body.get("spec") or {})
    except ValidationError as error:
        raise InvalidSpec(describe(error)) from error


def _lenient_status(model: type[StatusT], body: dict[str, Any]) -> StatusT:
    """The status as last written; an unreadable one (an older operator's) reads as empty."""
    try:
        return model.model_validate(body.get("status") or {})
    except ValidationError:
        return model()


def raw_spec_hash(body: dict[str, Any]) -> str:
    """What a TrainingJob's Job depends on: the spec as written, except ``suspend`` (which
    pauses and resumes the same Job instead of starting a new one)."""
    spec = {k: v for k, v in (body.get("spec") or {}).items() if k != "suspend"}
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrainingJob:
    """A TrainingJob as the core sees it. ``parse`` raises ``InvalidSpec``; ``status`` is the
    last written one, read leniently."""

    metadata: ObjectMeta
    spec: TrainingJobSpec
    status: TrainingJobStatus
    spec_hash: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> TrainingJob:
        return cls(
            metadata=ObjectMeta.model_validate(body.get("metadata") or {}),
            spec=_parse_spec(TrainingJobSpec, body),
            status=_lenient_status(TrainingJobStatus, body),
            spec_hash=raw_spec_hash(body),
        )


@dataclass(frozen=True)
class ModelDeployment:
    """A ModelDeployment as the core sees it. ``parse`` raises ``InvalidSpec`` (its name, which
    names the Service, counts as part of the spec); ``status`` is read leniently."""

    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ModelDeployment:
        metadata = ObjectMeta.model_validate(body.get("metadata") or {})
        name_error = model_deployment_name_error(metadata.name)
        if name_error is not None:
            raise InvalidSpec(name_error)
        return cls(
            metadata=metadata,
            spec=_parse_spec(ModelDeploymentSpec, body),
            status=_lenient_status(ModelDeploymentStatus, body),
        )


def status_caught_up(body: Mapping[str, Any]) -> bool:
    """The status already answers the current spec (``observedGeneration == generation``): a
    MODIFIED event then comes from a status or metadata write -- most often the operator's own
    -- and nothing it decides on has changed (children have their own handlers)."""
    status = body.get("status") or {}
    generation = (body.get("metadata") or {}).get("generation")
    return generation is not None and status.get("observedGeneration") == generation


def previous_training_status(body: dict[str, Any]) -> TrainingJobStatus:
    return _lenient_status(TrainingJobStatus, body)


def previous_serving_status(body: dict[str, Any]) -> ModelDeploymentStatus:
    return _lenient_status(ModelDeploymentStatus, body)
