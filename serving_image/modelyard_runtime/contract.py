"""The contracts between the trainer, the server and the operator, defined once.

This module imports nothing heavier than pydantic: the operator imports it without
scikit-learn, and the runtime image without kopf. It holds
- the allow-lists (estimators, built-in datasets, metrics) by *name*;
- the trainer's exit codes, which the operator's podFailurePolicy keys on, and the server's;
- the environment variables through which the operator configures both entrypoints;
- the artifact layout at ``<storageUri>/<version>/`` and its ``metadata.json``;
- the compact result the trainer writes to the termination log;
- the one sha256 helper, and the storage-URI rules.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Callable
from enum import IntEnum
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# --- allow-lists ------------------------------------------------------------------------------

# Each allow-list is written once, as a Literal type (what the spec models validate against);
# its tuple of names is derived from it. crds/ repeats them as enums: a unit test
# (tests/unit/test_crd_agreement.py) proves the CRDs equal these tuples.

BuiltinDataset = Literal["iris", "wine", "breast_cancer", "digits", "diabetes"]
BUILTIN_DATASETS: tuple[str, ...] = get_args(BuiltinDataset)
"""Datasets that scikit-learn ships (no download at run time)."""

Classifier = Literal[
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
]
Regressor = Literal[
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
]
Estimator = Literal[Classifier, Regressor]
CLASSIFIERS: tuple[str, ...] = get_args(Classifier)
REGRESSORS: tuple[str, ...] = get_args(Regressor)
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
"""Every estimator a spec may name. No import path from a spec is ever executed."""

ClassificationMetric = Literal["accuracy", "f1", "precision", "recall", "roc_auc"]
RegressionMetric = Literal["r2", "rmse", "mae"]
Metric = Literal[ClassificationMetric, RegressionMetric]
CLASSIFICATION_METRICS: tuple[str, ...] = get_args(ClassificationMetric)
REGRESSION_METRICS: tuple[str, ...] = get_args(RegressionMetric)
METRICS: tuple[str, ...] = get_args(Metric)
LOWER_IS_BETTER: frozenset[str] = frozenset({"rmse", "mae"})

Task = Literal["classification", "regression"]
RuntimeName = Literal["sklearn", "onnx"]  # what serves a model's predictions
RuntimeChoice = Literal["Auto", "sklearn", "onnx"]  # ModelDeployment spec.server.runtime


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


class ServerExitCode(IntEnum):
    """How ``modelyard-serve`` ends when it refuses to serve. Before exiting it writes
    ``<reason>: <why>`` (plain text, at most TERMINATION_MESSAGE_LIMIT bytes) to
    ``$MODELYARD_TERMINATION_LOG``; the reason word is the one named here."""

    OK = 0
    FAILED = 1  # reason "ServerFailed": did not start for another reason (e.g. port taken)
    INVALID_CONFIG = 2  # reason "InvalidConfig": the environment is wrong
    MODEL_LOAD_FAILED = 3  # reason "ModelLoadFailed": missing, modified or unloadable model


SERVER_FAILURE_REASONS: dict[ServerExitCode, str] = {
    ServerExitCode.FAILED: "ServerFailed",
    ServerExitCode.INVALID_CONFIG: "InvalidConfig",
    ServerExitCode.MODEL_LOAD_FAILED: "ModelLoadFailed",
}

# --- environment: how the operator configures the entrypoints ---------------------------------

ENV_TRAINING_SPEC = "MODELYARD_TRAINING_SPEC"  # JSON of TrainingSpec
ENV_OUTPUT_DIR = "MODELYARD_OUTPUT_DIR"  # local dir where <version>/ is written
ENV_STORAGE_URI = "MODELYARD_STORAGE_URI"  # the URI that OUTPUT_DIR stands for, reported back
ENV_MODEL_VERSION = "MODELYARD_MODEL_VERSION"  # optional: version to write (default: generated)
ENV_DATA_ROOT = "MODELYARD_DATA_ROOT"  # where pvc://<claim>/ datasets are mounted
ENV_RESULT_PATH = "MODELYARD_RESULT_PATH"  # default /dev/termination-log
# Optional: the model a retraining must beat (its directory and artifact digest, both or none);
# the trainer scores it on the new model's own holdout split.
ENV_CHAMPION_DIR = "MODELYARD_CHAMPION_DIR"
ENV_CHAMPION_SHA256 = "MODELYARD_CHAMPION_SHA256"
# Optional "true": when the dataset's digest equals the one the champion was trained on, train
# nothing and report DataUnchanged (only the trainer can read the data to hash it).
ENV_SKIP_IF_DATA_UNCHANGED = "MODELYARD_SKIP_IF_DATA_UNCHANGED"
ENV_SIZE_LIMITS = (
    "MODELYARD_SIZE_LIMITS"  # optional JSON of spec.SizeLimits (default: its defaults)
)

ENV_MODEL_DIR = "MODELYARD_MODEL_DIR"  # the server's model directory (<storage>/<version>)
ENV_MODEL_NAME = "MODELYARD_MODEL_NAME"  # the V2 model name
ENV_EXPECTED_SHA256 = "MODELYARD_EXPECTED_SHA256"  # optional artifact digest pin (ModelRef)
ENV_TERMINATION_LOG = "MODELYARD_TERMINATION_LOG"  # server: why it refused (default below)
ENV_MAX_INFLIGHT = "MODELYARD_MAX_INFLIGHT"  # server: inference requests at once, then 503
ENV_MAX_INFLIGHT_BYTES = "MODELYARD_MAX_INFLIGHT_BYTES"  # server: their bodies' bytes, then 503
ENV_PORT = "MODELYARD_PORT"
ENV_MAX_BODY_BYTES = "MODELYARD_MAX_BODY_BYTES"
ENV_HOST = "MODELYARD_HOST"  # the server's listen address (default 0.0.0.0)
ENV_LOG_LEVEL = "MODELYARD_LOG_LEVEL"  # both entrypoints (default info)
ENV_DRIFT_WINDOW = "MODELYARD_DRIFT_WINDOW"  # server: recent rows kept for drift checks (0: off)
ENV_DRIFT_MAX_AGE_SECONDS = "MODELYARD_DRIFT_MAX_AGE_SECONDS"  # server: older rows are not shown
ENV_RUNTIME = "MODELYARD_RUNTIME"  # server: a RuntimeChoice (default Auto)
ENV_BATCHING = "MODELYARD_BATCHING"  # server: Off | Opportunistic (default)
ENV_MAX_BATCH_SIZE = "MODELYARD_MAX_BATCH_SIZE"  # server: rows merged into one predict at most
ENV_MAX_BATCH_DELAY_US = "MODELYARD_MAX_BATCH_DELAY_US"  # server: a batch's window (default 0)
DEFAULT_MAX_BATCH_SIZE = 64
MAX_BATCH_SIZE = 4096  # the CRD's bounds too
MAX_BATCH_DELAY_US = 100_000  # a window beyond 0.1 s is a queue, not a batch

DEFAULT_RESULT_PATH = "/dev/termination-log"  # the kubelet reads it (both entrypoints)
DEFAULT_DATA_ROOT = "/mnt/data"
DEFAULT_SERVE_PORT = 8080
TERMINATION_MESSAGE_LIMIT = 4096  # bytes: the kubelet truncates beyond this

# --- artifact layout --------------------------------------------------------------------------

MODEL_FILE = "model.skops"
ONNX_FILE = "model.onnx"  # the compiled runtime, when it converts with parity
METADATA_FILE = "metadata.json"


def sha256_of(source: bytes | str | os.PathLike[str]) -> str:
    """Hex sha256 of bytes, or of the file at a path (streamed)."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    with open(source, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


class CamelModel(BaseModel):
    """camelCase on the wire (as Kubernetes writes), snake_case in Python. Strict: what
    users write (specs) is refused on an unknown field, so a typo is not silently ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class WireModel(CamelModel):
    """What one component writes and another reads (metadata.json, the trainer's result):
    unknown fields are ignored, so an older reader accepts a newer writer's output."""

    model_config = ConfigDict(extra="ignore")


class FeatureInfo(WireModel):
    name: str
    dtype: str  # numpy dtype name of the raw column, or "object" for strings
    kind: Literal["numeric", "categorical"]


class FeatureStats(WireModel):
    """Reference statistics of one feature in the training data, for drift checks."""

    name: str
    count: int
    missing: int
    mean: float | None = None
    std: float | None = None
    quantiles: list[float] | None = None  # deciles 0..100 step 10, for numeric features
    frequencies: dict[str, float] | None = None  # share per category, for categorical ones


class DatasetInfo(WireModel):
    source: str  # "builtin:iris" or the URI
    digest: str  # sha256 of the canonical bytes of the data as read
    rows: int
    columns: int


class GateResult(WireModel):
    metric: str
    value: float
    min: float | None = None
    max: float | None = None
    passed: bool


class ValidationResult(WireModel):
    passed: bool
    results: list[GateResult] = Field(default_factory=list)


class ChampionScore(WireModel):
    version: str
    sha256: str  # its artifact digest, verified before it was loaded
    metrics: dict[str, float] = Field(default_factory=dict)


class Comparison(WireModel):
    """A challenger (the model just trained) against the champion it would replace, both
    scored on the challenger's own holdout split. ``improvement`` is signed so that positive
    is better on ``metric`` whatever its direction; ``reason`` says why the champion could not
    be scored (then ``champion`` and ``improvement`` are absent)."""

    metric: str
    greater_is_better: bool
    challenger: float
    champion: ChampionScore | None = None
    improvement: float | None = None
    # Per metric both were scored on: how much worse the challenger is (positive: worse,
    # whatever the metric's direction), for the operator's maxRegression guards.
    regressions: dict[str, float] = Field(default_factory=dict)
    reason: str | None = None


class RuntimeTiming(WireModel):
    p50_us: dict[str, float]  # in-process predict latency by batch size ("batch1", "batch32")


class OnnxParity(WireModel):
    """ONNX against scikit-learn on the holdout split."""

    rows: int
    label_agreement: float | None = None  # classifiers: share of identical labels
    max_proba_diff: float | None = None  # classifiers: max |probability difference|
    max_relative_diff: float | None = None  # regressors: max |diff| / max(1, |y|)


class OnnxRuntimeInfo(WireModel):
    available: bool
    reason: str | None = None  # why not, when not available
    file: str = ONNX_FILE
    sha256: str | None = None  # of the ONNX file (this record is covered by the digest)
    opset: dict[str, int] | None = None
    precision: Literal["double", "float"] | None = None
    timing: RuntimeTiming | None = None
    parity: OnnxParity | None = None


class Runtimes(WireModel):
    """What the trainer measured of each runtime the model can be served by."""

    sklearn: RuntimeTiming
    onnx: OnnxRuntimeInfo

    def auto(self) -> RuntimeName:
        """What ``runtime: Auto`` serves: ONNX where it passed parity and was measured faster
        at every batch size timed, scikit-learn otherwise."""
        onnx = self.onnx
        if not onnx.available or onnx.timing is None:
            return "sklearn"
        sklearn_p50, onnx_p50 = self.sklearn.p50_us, onnx.timing.p50_us
        faster = all(onnx_p50.get(batch, float("inf")) < us for batch, us in sklearn_p50.items())
        return "onnx" if faster and sklearn_p50 else "sklearn"


def served_runtime(choice: RuntimeChoice, runtimes: Runtimes | None) -> RuntimeName:
    """The runtime a server runs for ``spec.server.runtime``; ``ValueError`` (the reason) when
    ``onnx`` is asked of an artifact without a parity-checked ONNX model. An artifact from
    before compiled runtimes (no ``runtimes``) is served by scikit-learn."""
    if choice == "sklearn":
        return "sklearn"
    if choice == "Auto":
        return "sklearn" if runtimes is None else runtimes.auto()
    if runtimes is None:
        raise ValueError("the artifact predates compiled runtimes: it has no model.onnx")
    if not runtimes.onnx.available:
        raise ValueError(f"the artifact has no parity-checked ONNX model: {runtimes.onnx.reason}")
    return "onnx"


class ModelMetadata(WireModel):
    """``metadata.json`` beside the model file. Its bytes are the artifact: their sha256 is
    the artifact digest (``ModelRef.sha256``), and ``sha256`` here pins the model file."""

    model_version: str
    model_file: str = MODEL_FILE
    format: Literal["skops"] = "skops"
    sha256: str  # of the model file
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
    # Training rows (stratified by class or target quantile) in feature order: the server's
    # warm-up input and the drift baseline; the model's outputs on them, the output baseline.
    reference_sample: list[list[Any]] = Field(default_factory=list)
    reference_predictions: list[Any] = Field(default_factory=list)
    comparison: Comparison | None = None
    runtimes: Runtimes | None = None


# --- the trainer's result on the termination log ----------------------------------------------

# DataUnchanged: a retraining asked to skip data its champion was trained on (exit 0, no model).
ResultReason = Literal[
    "Succeeded", "DataUnchanged", "InvalidSpec", "InvalidData", "GateNotMet", "InternalError"
]


class ModelRef(WireModel):
    uri: str  # <storageUri>/<version>
    version: str
    sha256: str
    """The artifact digest: sha256 of metadata.json's bytes, which records the sha256 of
    every other file (the model file). MODELYARD_EXPECTED_SHA256 pins this value."""
    # The runtime ``Auto`` serves it with, and whether a parity-checked ONNX model exists:
    # what the operator needs to report a deployment's runtime without reading the artifact.
    auto_runtime: RuntimeName | None = None
    onnx: bool | None = None


class TrainerResult(WireModel):
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
    comparison: Comparison | None = None

    @property
    def succeeded(self) -> bool:
        return self.reason == "Succeeded"

    def to_termination_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        """Compact JSON within ``limit`` bytes whatever the fields hold (the kubelet cuts
        the rest, and cut JSON does not parse). The least essential parts go first: best
        params, CV metrics, then the message is trimmed, then the dataset source, the gate
        details and the metrics; the model reference (what to serve) stays to the end."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        text = _compact(data)
        for step in _SHEDDING:
            while len(text.encode()) > limit:
                step(data, len(text.encode()) - limit)
                shed, text = text, _compact(data)
                if text == shed:  # this step has nothing more to give
                    break
        if len(text.encode()) <= limit:
            return text
        # Only an absurdly small limit gets here: the reason alone is what matters most.
        return _compact({"reason": data["reason"]})

    @classmethod
    def from_termination_message(cls, text: str) -> TrainerResult:
        return cls.model_validate_json(text)


def _compact(data: dict[str, Any]) -> str:
    # ensure_ascii=False: a non-ASCII character costs its UTF-8 bytes, not a 6-byte escape.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def fit_bytes(text: str, max_bytes: int) -> str:
    """``text`` within ``max_bytes`` UTF-8 bytes (never half a character), marked as cut."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    if max_bytes < 3:  # no room for the mark
        return encoded[: max(0, max_bytes)].decode(errors="ignore")
    return encoded[: max_bytes - 3].decode(errors="ignore") + "\u2026"


_Shed = Callable[[dict[str, Any], int], None]  # (result as JSON data, bytes over) -> None


def _trim(*path: str, floor: int) -> _Shed:
    """A shedding step: shorten the string at ``path`` by the overflow, to ``floor`` bytes."""

    def step(data: dict[str, Any], overflow: int) -> None:
        parent = data
        for key in path[:-1]:
            parent = parent.get(key) or {}
        value = parent.get(path[-1])
        if isinstance(value, str):
            # 16 more: JSON escapes can make the encoded string longer than its UTF-8 bytes.
            target = max(floor, len(value.encode()) - overflow - 16)
            parent[path[-1]] = fit_bytes(value, target)

    return step


def _drop(*path: str) -> _Shed:
    def step(data: dict[str, Any], overflow: int) -> None:
        parent = data
        for key in path[:-1]:
            parent = parent.get(key) or {}
        parent.pop(path[-1], None)

    return step


def _failed_gates_only(data: dict[str, Any], overflow: int) -> None:
    validation = data.get("validation")
    if validation:
        validation["results"] = [r for r in validation.get("results", []) if not r["passed"]]


_SHEDDING: tuple[_Shed, ...] = (
    _drop("bestParams"),
    _drop("cvMetrics"),
    _trim("message", floor=512),
    _trim("dataset", "source", floor=128),
    _failed_gates_only,
    _drop("validation", "results"),
    _drop("metrics"),
    _trim("message", floor=64),
    _drop("dataset"),
    _trim("model", "uri", floor=256),
    _trim("message", floor=0),
)


# --- storage URIs -----------------------------------------------------------------------------


def clean_path(path: str, uri: str) -> str:
    """``path`` without empty or ``.`` segments; a ``..`` segment (a way out of the volume)
    is refused rather than resolved."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{uri!r}: '..' path segments are not allowed")
    return "/".join(parts)


def parse_pvc_uri(uri: str) -> tuple[str, str]:
    """``pvc://<claim>/<path>`` -> (claim, normalised path). The path may be empty."""
    if not uri.startswith("pvc://"):
        raise ValueError(f"not a pvc:// URI: {uri!r}")
    claim, _, path = uri[len("pvc://") :].partition("/")
    if not claim or claim in (".", ".."):
        raise ValueError(f"pvc:// URI without a claim name: {uri!r}")
    return claim, clean_path(path, uri)


def local_path_of(uri: str, pvc_root: str) -> str:
    """Where a ``pvc://claim/path`` (mounted at ``<pvc_root>/<claim>``) or ``file:///path``
    URI is found inside the container. ``file://`` is for local runs of the trainer; the
    operator's CRDs accept only ``pvc://``."""
    if uri.startswith("file://"):
        return "/" + clean_path(uri[len("file://") :], uri)
    claim, path = parse_pvc_uri(uri)
    return posixpath.join(pvc_root.rstrip("/") or "/", claim, path).rstrip("/")
