"""Judging one canary step: what each arm's server pods counted over the step (requests by
outcome, the latency histogram, predicted classes), and the verdict on the canary against the
stable arm over that same window. Pure: the shell (``canary_monitor``) reads the counters."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from scipy.spatial import distance

from modelyard.api import CanaryAnalysis, CanaryAnalysisStatus

# The server's series (modelyard_runtime.serve.metrics): 5xx outcomes count against the arm,
# a client's 4xx (bad_request, not_found, too_large) does not count at all.
SERVER_ERROR_OUTCOMES = frozenset({"error", "overloaded", "not_ready"})
OK_OUTCOME = "ok"


@dataclass(frozen=True)
class Counts:
    """Cumulative counters of one server pod (or their sum over an arm)."""

    ok: int = 0
    server_errors: int = 0
    latency: tuple[tuple[float, float], ...] = ()  # (upper bound, cumulative count), +Inf last
    predictions: Mapping[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return self.ok + self.server_errors

    def __sub__(self, baseline: Counts) -> Counts:
        """What was counted since ``baseline`` (a restarted server's counters start again at
        zero: then everything it counted is new)."""
        if self.requests < baseline.requests:
            return self
        base = dict(baseline.latency)
        return Counts(
            ok=self.ok - baseline.ok,
            server_errors=self.server_errors - baseline.server_errors,
            latency=tuple((le, n - base.get(le, 0.0)) for le, n in self.latency),
            predictions={
                k: v - baseline.predictions.get(k, 0.0) for k, v in self.predictions.items()
            },
        )

    def __add__(self, other: Counts) -> Counts:
        buckets = dict(self.latency)
        for le, n in other.latency:
            buckets[le] = buckets.get(le, 0.0) + n
        predictions = dict(self.predictions)
        for k, v in other.predictions.items():
            predictions[k] = predictions.get(k, 0.0) + v
        return Counts(
            ok=self.ok + other.ok,
            server_errors=self.server_errors + other.server_errors,
            latency=tuple(sorted(buckets.items())),
            predictions=predictions,
        )


def total(counts: Iterable[Counts]) -> Counts:
    summed = Counts()
    for item in counts:
        summed = summed + item
    return summed


def parse_server_metrics(text: str, model: str) -> Counts:
    """A server pod's ``/metrics`` (Prometheus text format), for the model named ``model``."""
    ok = errors = 0.0
    buckets: dict[float, float] = {}
    predictions: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model:
                continue
            if sample.name == "modelyard_inference_requests_total":
                if labels.get("outcome") == OK_OUTCOME:
                    ok += sample.value
                elif labels.get("outcome") in SERVER_ERROR_OUTCOMES:
                    errors += sample.value
            elif sample.name == "modelyard_inference_latency_seconds_bucket":
                le = float(labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name == "modelyard_predictions_total":
                key = labels.get("class", "")
                predictions[key] = predictions.get(key, 0.0) + sample.value
    return Counts(
        ok=int(ok),
        server_errors=int(errors),
        latency=tuple(sorted(buckets.items())),
        predictions=predictions,
    )


def quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated linearly inside its bucket
    (PromQL's ``histogram_quantile``); ``None`` with no observations. Observations above the
    highest finite bound read as that bound."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(le):
                return lower
            inside = cumulative - below
            return lower + (le - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = le, cumulative
    return lower


def prediction_shift(canary: Mapping[str, float], stable: Mapping[str, float]) -> float | None:
    """Jensen-Shannon distance (base 2, in [0, 1]) between the two arms' predicted-class
    shares; ``None`` when either predicted nothing countable (a regressor)."""
    classes = sorted(set(canary) | set(stable))
    p = [max(canary.get(c, 0.0), 0.0) for c in classes]
    s = [max(stable.get(c, 0.0), 0.0) for c in classes]
    if sum(p) <= 0 or sum(s) <= 0:
        return None
    value = float(distance.jensenshannon(p, s, base=2))
    # Equal shares can round to a tiny negative divergence, whose square root is NaN.
    return 0.0 if math.isnan(value) else value


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def evaluate(
    canary: Counts, stable: Counts, spec: CanaryAnalysis, *, at: str
) -> CanaryAnalysisStatus:
    """The verdict on one window: Inconclusive while either arm has fewer than
    ``minRequests`` (never pass or fail on no data), Fail when any bound is broken (each one
    named in ``reason``), else Pass."""
    error_rate = canary.server_errors / canary.requests if canary.requests else None
    stable_error_rate = stable.server_errors / stable.requests if stable.requests else None
    p99, stable_p99 = quantile(0.99, canary.latency), quantile(0.99, stable.latency)
    ratio = p99 / stable_p99 if p99 is not None and stable_p99 else None
    shift = prediction_shift(canary.predictions, stable.predictions)
    measured = dict(
        checked_at=at,
        requests=canary.requests,
        stable_requests=stable.requests,
        error_rate=None if error_rate is None else round(error_rate, 6),
        stable_error_rate=None if stable_error_rate is None else round(stable_error_rate, 6),
        p99_ms=_ms(p99),
        stable_p99_ms=_ms(stable_p99),
        latency_ratio=None if ratio is None else round(ratio, 3),
        prediction_shift=None if shift is None else round(shift, 4),
    )
    short = [
        f"{arm} {n}/{spec.min_requests}"
        for arm, n in (("canary", canary.requests), ("stable", stable.requests))
        if n < spec.min_requests
    ]
    if short:
        reason = f"too few requests this step ({', '.join(short)})"
        return CanaryAnalysisStatus(verdict="Inconclusive", reason=reason, **measured)
    broken = []
    if error_rate is not None and error_rate > spec.max_error_rate:
        broken.append(f"error rate {error_rate:.2%} > {spec.max_error_rate:.2%}")
    if ratio is not None and ratio > spec.max_latency_ratio:
        broken.append(f"p99 latency {ratio:.2f}x stable's > {spec.max_latency_ratio}x")
    limit = spec.max_p99_latency_ms
    if p99 is not None and limit is not None and p99 * 1000 > limit:
        broken.append(f"p99 {p99 * 1000:.1f} ms > {spec.max_p99_latency_ms} ms")
    if shift is not None and shift > spec.max_prediction_shift:
        broken.append(f"prediction shift {shift:.3f} > {spec.max_prediction_shift}")
    if broken:
        return CanaryAnalysisStatus(verdict="Fail", reason="; ".join(broken), **measured)
    return CanaryAnalysisStatus(verdict="Pass", reason="within every bound", **measured)
