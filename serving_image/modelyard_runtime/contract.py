"""The contracts between the trainer, the server and the operator, defined once.

This module imports nothing heavier than pydantic: the operator imports it without
scikit-learn, and the runtime image without kopf. It holds
- the allow-lists (estimators, built-in datasets, metrics) by *name*;
- the trainer's exit codes, which the operator's podFailurePolicy keys on;
- the environment variables through which the operator configures both entrypoints;
- the artifact layout at ``<storageUri>/<version>/`` and its ``metadata.json``;
- the compact result the trainer writes to the termination log.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# --- allow-lists ------------------------------------------------------------------------------

BUILTIN_DATASETS: tuple[str, ...] = ("iris", "wine", "breast_cancer", "digits", "diabetes")
"""Datasets that scikit-learn ships (no download at run time)."""

CLASSIFIERS: tuple[str, ...] = (
    "LogisticRegression",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
    "DecisionTreeClassifier",
    "KNeighborsClassifier",
    "SVC",
    "GaussianNB",
    "SGDClassifier",
)
REGRESSORS: tuple[str, ...] = (
    "LinearRegression",
    "Ridge",
    "Lasso",
    "ElasticNet",
    "RandomForestRegressor",
    "ExtraTreesRegressor",
    "GradientBoostingRegressor",
    "HistGradientBoostingRegressor",
    "DecisionTreeRegressor",
    "KNeighborsRegressor",
    "SVR",
)
ESTIMATORS: tuple[str, ...] = CLASSIFIERS + REGRESSORS
"""Every estimator a spec may name. No import path from a spec is ever executed."""

CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "f1", "precision", "recall", "roc_auc")
REGRESSION_METRICS: tuple[str, ...] = ("r2", "rmse", "mae")
METRICS: tuple[str, ...] = CLASSIFICATION_METRICS + REGRESSION_METRICS
LOWER_IS_BETTER: frozenset[str] = frozenset({"rmse", "mae"})

Task = Literal["classification", "regression"]


def task_of(estimator: str) -> Task:
    """The task an allow-listed estimator performs."""
    if estimator in CLASSIFIERS:
        return "classification"
    if estimator in REGRESSORS:
        return "regression"
    raise ValueError(f"estimator {estimator!r} is not in the allow-list")


# --- trainer exit codes -----------------------------------------------------------------------


class ExitCode(IntEnum):
    """How ``modelyard-train`` ends. The operator's podFailurePolicy fails the Job at once on
    the non-retryable codes; anything else (a crash, 1, OOMKilled 137) is retried up to
    ``backoffLimit``."""

    OK = 0
    INTERNAL_ERROR = 1  # unexpected failure: retryable
    INVALID_SPEC = 10  # the spec cannot be trained as written: not retryable
    INVALID_DATA = 11  # the data is missing, empty or unusable: not retryable
    GATE_NOT_MET = 12  # trained and stored, but the validation gate failed: not retryable


NON_RETRYABLE_EXIT_CODES: tuple[int, ...] = (
    ExitCode.INVALID_SPEC,
    ExitCode.INVALID_DATA,
    ExitCode.GATE_NOT_MET,
)

# --- environment: how the operator configures the entrypoints ---------------------------------

ENV_TRAINING_SPEC = "MODELYARD_TRAINING_SPEC"  # JSON of TrainingSpec
ENV_OUTPUT_DIR = "MODELYARD_OUTPUT_DIR"  # local dir where <version>/ is written
ENV_STORAGE_URI = "MODELYARD_STORAGE_URI"  # the URI that OUTPUT_DIR stands for, reported back
ENV_MODEL_VERSION = "MODELYARD_MODEL_VERSION"  # optional: version to write (default: generated)
ENV_DATA_ROOT = "MODELYARD_DATA_ROOT"  # where pvc://<claim>/ datasets are mounted
ENV_RESULT_PATH = "MODELYARD_RESULT_PATH"  # default /dev/termination-log

ENV_MODEL_DIR = "MODELYARD_MODEL_DIR"  # the server's model directory (<storage>/<version>)
ENV_MODEL_NAME = "MODELYARD_MODEL_NAME"  # the V2 model name
ENV_EXPECTED_SHA256 = "MODELYARD_EXPECTED_SHA256"  # optional pin, verified before load
ENV_PORT = "MODELYARD_PORT"
ENV_MAX_BODY_BYTES = "MODELYARD_MAX_BODY_BYTES"
ENV_HOST = "MODELYARD_HOST"  # the server's listen address (default 0.0.0.0)
ENV_LOG_LEVEL = "MODELYARD_LOG_LEVEL"  # both entrypoints (default info)

DEFAULT_RESULT_PATH = "/dev/termination-log"
DEFAULT_DATA_ROOT = "/mnt/data"
DEFAULT_SERVE_PORT = 8080
TERMINATION_MESSAGE_LIMIT = 4096  # bytes: the kubelet truncates beyond this

# --- artifact layout --------------------------------------------------------------------------

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"


class CamelModel(BaseModel):
    """camelCase on the wire (as Kubernetes writes), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class FeatureInfo(CamelModel):
    name: str
    dtype: str  # numpy dtype name of the raw column, or "object" for strings
    kind: Literal["numeric", "categorical"]


class FeatureStats(CamelModel):
    """Reference statistics of one feature in the training data, for drift checks."""

    name: str
    count: int
    missing: int
    mean: float | None = None
    std: float | None = None
    quantiles: list[float] | None = None  # deciles 0..100 step 10, for numeric features
    frequencies: dict[str, float] | None = None  # share per category, for categorical ones


class DatasetInfo(CamelModel):
    source: str  # "builtin:iris" or the URI
    digest: str  # sha256 of the canonical bytes of the data as read
    rows: int
    columns: int


class GateResult(CamelModel):
    metric: str
    value: float
    min: float | None = None
    max: float | None = None
    passed: bool


class ValidationResult(CamelModel):
    passed: bool
    results: list[GateResult] = Field(default_factory=list)


class ModelMetadata(CamelModel):
    """``metadata.json`` beside the model file."""

    model_version: str
    model_file: str = MODEL_FILE
    format: Literal["skops"] = "skops"
    sha256: str
    created_at: str
    task: Task
    estimator: str
    sklearn_version: str
    python_version: str
    features: list[FeatureInfo]
    target: str
    classes: list[Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    best_params: dict[str, Any] | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    cv_metrics: dict[str, float] = Field(default_factory=dict)
    dataset: DatasetInfo
    validation: ValidationResult
    reference: list[FeatureStats] = Field(default_factory=list)
    reference_sample: list[list[Any]] = Field(default_factory=list)


# --- the trainer's result on the termination log ----------------------------------------------

ResultReason = Literal["Succeeded", "InvalidSpec", "InvalidData", "GateNotMet", "InternalError"]


class ModelRef(CamelModel):
    uri: str  # <storageUri>/<version>
    version: str
    sha256: str


class TrainerResult(CamelModel):
    """What the trainer reports; the operator turns it into TrainingJob status."""

    reason: ResultReason
    message: str = ""
    task: Task | None = None
    model: ModelRef | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    cv_metrics: dict[str, float] = Field(default_factory=dict)
    best_params: dict[str, Any] | None = None
    dataset: DatasetInfo | None = None
    validation: ValidationResult | None = None

    @property
    def succeeded(self) -> bool:
        return self.reason == "Succeeded"

    def to_termination_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        """Compact JSON within ``limit`` bytes: drop the least essential parts first."""
        data = self.model_dump(by_alias=True, exclude_none=True)
        text = json.dumps(data, separators=(",", ":"), default=str)
        for droppable in ("bestParams", "cvMetrics"):
            if len(text.encode()) <= limit:
                return text
            data.pop(droppable, None)
            text = json.dumps(data, separators=(",", ":"), default=str)
        if len(text.encode()) > limit:
            message = str(data.get("message", ""))
            overflow = len(text.encode()) - limit
            data["message"] = message[: max(0, len(message) - overflow - 8)]
            text = json.dumps(data, separators=(",", ":"), default=str)
        return text

    @classmethod
    def from_termination_message(cls, text: str) -> TrainerResult:
        return cls.model_validate_json(text)


# --- storage URIs -----------------------------------------------------------------------------


def parse_pvc_uri(uri: str) -> tuple[str, str]:
    """``pvc://<claim>/<path>`` -> (claim, path). The path may be empty."""
    if not uri.startswith("pvc://"):
        raise ValueError(f"not a pvc:// URI: {uri!r}")
    claim, _, path = uri[len("pvc://") :].partition("/")
    if not claim:
        raise ValueError(f"pvc:// URI without a claim name: {uri!r}")
    return claim, path.strip("/")


def local_path_of(uri: str, pvc_root: str) -> str:
    """Where a ``pvc://claim/path`` (mounted at ``<pvc_root>/<claim>``) or ``file:///path``
    URI is found inside the container."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    claim, path = parse_pvc_uri(uri)
    return "/".join(part for part in (pvc_root.rstrip("/"), claim, path) if part)
