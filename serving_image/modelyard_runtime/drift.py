"""Drift statistics, pure (numpy and scipy only): is a window of recent inputs (and the model's
outputs on them) drawn from the same distribution as the training reference?

Shared by the server (each pod's own window, for its Prometheus gauges) and the operator (the
windows of all ready pods pooled, for ``status.drift``), so both say the same thing.

Per feature (``tests: Auto``): a numeric feature with more than ``MAX_DISCRETE_VALUES``
distinct reference values gets the two-sample Kolmogorov-Smirnov test, its effect the
Wasserstein distance in units of the reference's standard deviation; any other feature is
treated as categorical: chi-squared on the 2 x k table of counts (bins with an expected count
below ``MIN_EXPECTED`` merged, so a rare category cannot decide alone), its effect the
Jensen-Shannon distance (base 2, in [0, 1]). A feature drifts only when its p-value, corrected
across the features (Bonferroni or Benjamini-Hochberg), is below ``alpha`` **and** its effect
is at least ``min_effect``: with large windows every p-value is tiny. The model's outputs
(predicted classes, or the regression output) are one more test in the same correction family,
so that the verdict's false-alarm rate is at most ``alpha``. Missing values are left out of
both samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
from scipy import stats
from scipy.spatial import distance

MAX_DISCRETE_VALUES = 5  # a numeric feature with at most this many distinct values is binned
MIN_EXPECTED = 5.0  # chi-squared bins with a smaller expected count are merged
OTHER = "\x00other"  # the bin of window values the reference never had (and merged rare bins)
SIGNIFICANT_DIGITS = 4  # what status and JSON show of a statistic

State = Literal["NoDrift", "Drifting", "InsufficientData"]
Correction = Literal["Bonferroni", "FDR"]
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class DriftTestSettings:
    alpha: float = 0.05
    correction: Correction = "Bonferroni"
    min_effect: float = 0.1
    min_samples: int = 200
    prediction_drift: bool = True

    def to_query(self) -> dict[str, str]:
        """As the server's drift endpoint takes them (``from_query`` reads them back)."""
        return {
            "alpha": repr(self.alpha),
            "correction": self.correction,
            "minEffect": repr(self.min_effect),
            "minSamples": str(self.min_samples),
            "predictionDrift": "true" if self.prediction_drift else "false",
        }

    @classmethod
    def from_query(cls, query: dict[str, str]) -> DriftTestSettings:
        """Raises ValueError naming the bad parameter."""
        defaults = cls()
        try:
            alpha = float(query.get("alpha", defaults.alpha))
            min_effect = float(query.get("minEffect", defaults.min_effect))
            min_samples = int(query.get("minSamples", defaults.min_samples))
        except ValueError as error:
            raise ValueError(f"invalid drift test parameter: {error}") from None
        correction: Correction
        match query.get("correction", defaults.correction):
            case "Bonferroni":
                correction = "Bonferroni"
            case "FDR":
                correction = "FDR"
            case other:
                raise ValueError(f"correction must be Bonferroni or FDR, not {other!r}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), not {alpha}")
        if not 0 <= min_effect <= 1 or min_samples < 1:
            raise ValueError("minEffect must be in [0, 1] and minSamples at least 1")
        prediction = query.get("predictionDrift", "true").lower()
        return cls(alpha, correction, min_effect, min_samples, prediction != "false")


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


@dataclass(frozen=True)
class Sample:
    """One feature's present values: numbers for a numeric feature with more than
    MAX_DISCRETE_VALUES distinct values (KS), category labels otherwise (chi-squared)."""

    numbers: np.ndarray | None
    labels: list[str] | None

    @classmethod
    def of(cls, kind: Kind, values: Sequence[Any]) -> Sample:
        if kind == "numeric":
            numbers = _numbers(values)
            if np.unique(numbers).size > MAX_DISCRETE_VALUES:
                return cls(numbers, None)
            return cls(None, _labels(numbers.tolist()))
        return cls(None, _labels(values))

    def against(self, kind: Kind, values: Sequence[Any]) -> Sample:
        """The window's values of this feature, in the form the reference takes."""
        if self.numbers is not None:
            return Sample(_numbers(values), None)
        return Sample(None, _labels(_numbers(values).tolist() if kind == "numeric" else values))


@dataclass(frozen=True)
class Reference:
    """The training reference: its features (in order), a sample of training rows and the
    model's outputs on them."""

    task: str  # "classification" | "regression"
    columns: tuple[Column, ...]
    rows: list[list[Any]]
    predictions: list[Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reference:
        columns = tuple(Column(str(f["name"]), f["kind"]) for f in data["features"])
        return cls(str(data["task"]), columns, list(data["rows"]), list(data["predictions"]))

    @cached_property
    def samples(self) -> tuple[Sample, ...]:
        """Each feature's reference values, prepared once (the monitor keeps the Reference)."""
        return tuple(
            Sample.of(c.kind, [row[j] for row in self.rows]) for j, c in enumerate(self.columns)
        )

    @cached_property
    def prediction_sample(self) -> Sample:
        kind: Kind = "numeric" if self.task == "regression" else "categorical"
        return Sample.of(kind, self.predictions)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "features": [{"name": c.name, "kind": c.kind} for c in self.columns],
            "rows": self.rows,
            "predictions": self.predictions,
        }


@dataclass(frozen=True)
class Window:
    """Recent input rows (in feature order) and the model's outputs on them."""

    rows: list[list[Any]]
    predictions: list[Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        """From the server's drift answer (``{"window": {"rows", "predictions"}, ...}``)."""
        window = data["window"]
        rows, predictions = list(window["rows"]), list(window["predictions"])
        if len(rows) != len(predictions):
            raise ValueError(f"{len(rows)} rows but {len(predictions)} predictions")
        return cls(rows, predictions)

    @classmethod
    def pool(cls, windows: Sequence[Window]) -> Window:
        return cls(
            [row for w in windows for row in w.rows],
            [p for w in windows for p in w.predictions],
        )

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Test:
    """One feature's (or the output's) test on the window."""

    name: str
    test: str  # "KS" | "ChiSquared" | "None" (nothing to compare: no values present)
    statistic: float | None
    p_value: float | None  # corrected across the features' family
    effect: float | None
    drifted: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "test": self.test,
            "statistic": _shown(self.statistic),
            "pValue": _shown(self.p_value),
            "effect": _shown(self.effect),
            "drifted": self.drifted,
        }


@dataclass(frozen=True)
class DriftReport:
    state: State
    samples: int
    features: tuple[Test, ...] = ()
    prediction: Test | None = None
    message: str = ""

    @property
    def drifted(self) -> list[str]:
        names = [t.name for t in self.features if t.drifted]
        if self.prediction is not None and self.prediction.drifted:
            names.append(self.prediction.name)
        return names

    def to_status(self) -> dict[str, Any]:
        """camelCase, as ``status.drift`` shows it (and the server's JSON)."""
        shown: dict[str, Any] = {
            "state": self.state,
            "samples": self.samples,
            "features": [t.to_json() for t in self.features],
            "message": self.message,
        }
        if self.prediction is not None:
            shown["prediction"] = self.prediction.to_json()
        return shown


@dataclass
class _Raw:
    name: str
    test: str
    statistic: float | None = None
    p_value: float | None = None
    effect: float | None = None
    corrected: float | None = None


def check(reference: Reference, window: Window, settings: DriftTestSettings) -> DriftReport:
    """Test ``window`` against ``reference``. Fewer than ``min_samples`` rows is
    InsufficientData, never drift."""
    samples = len(window)
    if samples < settings.min_samples:
        return DriftReport(
            "InsufficientData",
            samples,
            message=f"{samples} samples, fewer than minSamples {settings.min_samples}",
        )
    raws = [
        _test(
            column.name,
            ref,
            ref.against(column.kind, [row[j] if j < len(row) else None for row in window.rows]),
        )
        for j, (column, ref) in enumerate(zip(reference.columns, reference.samples, strict=True))
    ]
    prediction_raw = None
    if settings.prediction_drift and reference.predictions:
        ref = reference.prediction_sample
        kind: Kind = "numeric" if ref.numbers is not None else "categorical"
        prediction_raw = _test("prediction", ref, ref.against(kind, window.predictions))
    # One family: the verdict is one decision over all of its tests.
    _correct([*raws, *([prediction_raw] if prediction_raw else [])], settings.correction)
    features = tuple(_judged(raw, settings) for raw in raws)
    prediction = _judged(prediction_raw, settings) if prediction_raw else None
    report = DriftReport("NoDrift", samples, features, prediction)
    drifted = report.drifted
    message = (
        f"drift in {', '.join(drifted)} ({samples} samples)"
        if drifted
        else f"no drift in {len(features)} features ({samples} samples)"
    )
    return DriftReport("Drifting" if drifted else "NoDrift", samples, features, prediction, message)


def _judged(raw: _Raw, settings: DriftTestSettings) -> Test:
    drifted = (
        raw.corrected is not None
        and raw.effect is not None
        and raw.corrected < settings.alpha
        and raw.effect >= settings.min_effect
    )
    return Test(raw.name, raw.test, raw.statistic, raw.corrected, raw.effect, drifted)


def _correct(raws: list[_Raw], correction: Correction) -> None:
    tested = [raw for raw in raws if raw.p_value is not None]
    if not tested:
        return
    p = np.array([raw.p_value for raw in tested], dtype=np.float64)
    if correction == "Bonferroni":
        adjusted = np.minimum(1.0, p * len(p))
    else:
        adjusted = stats.false_discovery_control(p, method="bh")
    for raw, value in zip(tested, adjusted.tolist(), strict=True):
        raw.corrected = float(value)


def _test(name: str, ref: Sample, now: Sample) -> _Raw:
    if ref.numbers is not None and now.numbers is not None:
        return _ks(name, ref.numbers, now.numbers) if now.numbers.size else _Raw(name, "None")
    return _chi2(name, ref.labels or [], now.labels or [])


def _ks(name: str, ref: np.ndarray, now: np.ndarray) -> _Raw:
    result = stats.ks_2samp(ref, now)
    scale = float(ref.std())
    shift = float(stats.wasserstein_distance(ref, now))
    # (a reference with > 5 distinct values has spread; the guard is for the type checker)
    effect = shift / scale if scale > 0 else 0.0
    return _Raw(name, "KS", float(result.statistic), float(result.pvalue), effect)


def _chi2(name: str, ref: list[str], now: list[str]) -> _Raw:
    if not ref or not now:
        return _Raw(name, "None")
    categories = sorted(set(ref))
    known = set(categories)
    now = [v if v in known else OTHER for v in now]
    if OTHER in now:
        categories.append(OTHER)
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((2, len(categories)), dtype=np.float64)
    np.add.at(table[0], [index[v] for v in ref], 1)
    np.add.at(table[1], [index[v] for v in now], 1)
    effect = float(distance.jensenshannon(table[0], table[1], base=2))
    merged = _merge_rare(table)
    if merged.shape[1] < 2:  # one category left: nothing can differ
        return _Raw(name, "ChiSquared", 0.0, 1.0, effect)
    result = stats.chi2_contingency(merged, correction=False)
    return _Raw(name, "ChiSquared", float(result.statistic), float(result.pvalue), effect)


def _merge_rare(table: np.ndarray) -> np.ndarray:
    """Columns whose smallest expected count is below MIN_EXPECTED merged into one, merged
    with the rarest remaining column if that one is still too small."""
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    rare = expected.min(axis=0) < MIN_EXPECTED
    if not rare.any():
        return table
    kept = table[:, ~rare]
    pooled: np.ndarray = table[:, rare].sum(axis=1, keepdims=True)
    if kept.shape[1] == 0:
        return pooled
    merged = np.hstack([kept, pooled])
    total = merged.sum()
    expected = merged.sum(axis=1, keepdims=True) * merged.sum(axis=0) / total
    if expected[:, -1].min() < MIN_EXPECTED:  # still too small: fold into the rarest kept
        rarest = int(np.argmin(kept.sum(axis=0)))
        merged[:, rarest] += merged[:, -1]
        merged = merged[:, :-1]
    return merged


def _numbers(values: Sequence[Any]) -> np.ndarray:
    array = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return array[np.isfinite(array)]


def _labels(values: Sequence[Any]) -> list[str]:
    labels = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        # 1 and 1.0 are one category (a JSON round trip may turn one into the other)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        labels.append(str(v))
    return labels


def _shown(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):  # JSON has no NaN or inf
        return None
    if value == 0:
        return 0.0
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
