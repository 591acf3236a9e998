"""What the trainer is asked to do: the training part of a TrainingJob's spec.

The operator's TrainingJob model embeds these very classes (one source of truth) and hands
``TrainingSpec`` to the trainer as JSON in ``MODELYARD_TRAINING_SPEC``. The CRD schema in
``crds/`` mirrors them; a test proves they agree.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from modelyard_runtime.contract import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    BuiltinDataset,
    CamelModel,
    Estimator,
    Metric,
    WireModel,
    task_of,
)

# A path segment that is neither empty, ``.`` nor ``..`` (no lookahead: the CRDs' RE2 and
# pydantic's Rust regex have none). A ``..`` segment would leave the mounted volume.
PATH_SEGMENT_PATTERN = r"([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+)"
# file:// is for local runs of the trainer; the operator's CRD takes pvc:// only.
DATA_URI_PATTERN = rf"^(pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?|file://)(/{PATH_SEGMENT_PATTERN})+$"


class DatasetSpec(CamelModel):
    """Exactly one of ``builtin`` (a dataset scikit-learn ships) or ``uri`` (a file)."""

    builtin: BuiltinDataset | None = None
    uri: str | None = Field(default=None, pattern=DATA_URI_PATTERN)
    format: Literal["csv", "parquet"] | None = None
    target: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if (self.builtin is None) == (self.uri is None):
            raise ValueError("dataset: set exactly one of builtin or uri")
        if self.uri is not None and self.target is None:
            raise ValueError("dataset: a file dataset needs a target column")
        return self

    @property
    def file_format(self) -> Literal["csv", "parquet"]:
        if self.format is not None:
            return self.format
        return "parquet" if (self.uri or "").endswith(".parquet") else "csv"


class ModelSpec(CamelModel):
    estimator: Estimator
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


class GateThreshold(CamelModel):
    """A held-out metric must be at least ``min`` and/or at most ``max``."""

    metric: Metric
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> GateThreshold:
        if self.min is None and self.max is None:
            raise ValueError(f"gate on {self.metric}: set min, max or both")
        return self


class ValidationSpec(CamelModel):
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    cv_folds: int = Field(default=5, ge=0, le=20)  # 0 turns cross-validation off
    metrics: list[Metric] = Field(default_factory=list)  # empty: every metric of the task
    gate: list[GateThreshold] = Field(default_factory=list)

    @model_validator(mode="after")
    def _folds(self) -> ValidationSpec:
        if self.cv_folds == 1:
            raise ValueError("validation.cvFolds must be 0 (off) or at least 2")
        return self


class ParameterSpace(CamelModel):
    """One hyperparameter's candidates: a list of ``values``, or a numeric range
    ``min``..``max`` (random search only) sampled on a linear or log ``scale``."""

    values: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    scale: Literal["linear", "log"] = "linear"
    type: Literal["int", "float"] = "float"

    @model_validator(mode="after")
    def _values_or_range(self) -> ParameterSpace:
        has_range = self.min is not None or self.max is not None
        if (self.values is not None) == has_range:
            raise ValueError("a parameter space sets either values or min and max")
        if has_range:
            if self.min is None or self.max is None or self.min > self.max:
                raise ValueError("a parameter range needs min <= max")
            if self.scale == "log" and self.min <= 0:
                raise ValueError("a log-scale range needs min > 0")
        elif not self.values:
            raise ValueError("a parameter space needs at least one value")
        return self


class SearchSpec(CamelModel):
    strategy: Literal["grid", "random"] = "grid"
    parameters: dict[str, ParameterSpace] = Field(min_length=1)
    max_trials: int = Field(default=20, ge=1, le=1000)
    metric: Metric | None = None  # default: the task's first metric
    direction: Literal["maximize", "minimize"] | None = None  # default: by metric

    @model_validator(mode="after")
    def _grid_has_values(self) -> SearchSpec:
        if self.strategy == "grid":
            ranged = [name for name, space in self.parameters.items() if space.values is None]
            if ranged:
                raise ValueError(f"grid search needs values lists, not ranges: {ranged}")
        return self


class TrainingSpec(CamelModel):
    dataset: DatasetSpec
    model: ModelSpec
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    search: SearchSpec | None = None
    seed: int = Field(default=42, ge=0)

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> TrainingSpec:
        allowed = (
            CLASSIFICATION_METRICS
            if task_of(self.model.estimator) == "classification"
            else REGRESSION_METRICS
        )
        named = list(self.validation.metrics) + [g.metric for g in self.validation.gate]
        if self.search is not None and self.search.metric is not None:
            named.append(self.search.metric)
        wrong = sorted({m for m in named if m not in allowed})
        if wrong:
            raise ValueError(
                f"metrics {wrong} do not fit a {task_of(self.model.estimator)} estimator "
                f"({self.model.estimator}); use {list(allowed)}"
            )
        return self


# --- size bounds --------------------------------------------------------------------------------


class SizeLimits(WireModel):
    """Upper bounds on the hyperparameters that decide how much memory and CPU time a training
    takes (scikit-learn accepts any size). The operator checks a spec against its own
    limits at reconcile time and passes the same JSON to the trainer (MODELYARD_SIZE_LIMITS),
    which checks again before it builds anything."""

    n_estimators: int = Field(default=1000, ge=1)  # forests, gradient boosting
    max_iter: int = Field(default=100_000, ge=1)  # linear models, SVMs, hist. boosting
    n_jobs: int = Field(default=4, ge=1)  # processes/threads: None or 1..n_jobs, never -1
    max_depth: int = Field(default=100, ge=1)  # trees
    n_neighbors: int = Field(default=1000, ge=1)
    max_trials: int = Field(default=1000, ge=1)  # search.maxTrials (the CRD caps it at 1000)

    @classmethod
    def from_json(cls, text: str | None) -> SizeLimits:
        """The limits in ``text`` (MODELYARD_SIZE_LIMITS), or the defaults when unset.
        ValueError says what is wrong."""
        if text is None or not text.strip():
            return cls()
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            raise ValueError(f"invalid size limits {text[:200]!r}: {error}") from None


def size_violations(spec: TrainingSpec | ModelSpec, limits: SizeLimits | None = None) -> list[str]:
    """What in ``spec`` exceeds ``limits``, each naming its field as a TrainingJob spells it
    (``spec.model.hyperparameters.n_estimators: ...``); empty when all is within bounds.
    Search candidates count too: each value of a grid, the upper end of a range."""
    limits = limits or SizeLimits()
    model = spec.model if isinstance(spec, TrainingSpec) else spec
    search = spec.search if isinstance(spec, TrainingSpec) else None
    found: list[str] = []
    for name, value in model.hyperparameters.items():
        found += _size_problems(f"spec.model.hyperparameters.{name}", name, value, limits)
    if search is not None:
        if search.max_trials > limits.max_trials:
            found.append(
                f"spec.search.maxTrials: {search.max_trials} exceeds the limit of "
                f"{limits.max_trials}"
            )
        for name, space in search.parameters.items():
            where = f"spec.search.parameters.{name}"
            for index, value in enumerate(space.values or []):
                found += _size_problems(f"{where}.values[{index}]", name, value, limits)
            for end in ("min", "max"):
                bound = getattr(space, end)
                if bound is not None:
                    found += _size_problems(f"{where}.{end}", name, bound, limits)
    return found


def _size_problems(field: str, name: str, value: Any, limits: SizeLimits) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []  # not a size; scikit-learn's own validation judges the type
    if name == "n_jobs":
        if not 1 <= value <= limits.n_jobs:
            return [f"{field}: {value} is not allowed; use 1..{limits.n_jobs} (or leave it unset)"]
        return []
    limit = getattr(limits, name, None) if name in _SIZE_PARAMETERS else None
    if limit is not None and value > limit:
        return [f"{field}: {value} exceeds the limit of {limit}"]
    return []


_SIZE_PARAMETERS = frozenset({"n_estimators", "max_iter", "max_depth", "n_neighbors"})
