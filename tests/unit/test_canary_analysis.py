"""The canary analysis: counters read from a real server's /metrics page, the quantile, and
each verdict (pass, fail on errors / latency / prediction shift, inconclusive on low traffic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from modelyard.api import CanaryAnalysis
from modelyard.canary_analysis import (
    Counts,
    evaluate,
    parse_server_metrics,
    prediction_shift,
    quantile,
    total,
)
from modelyard_runtime.serve.metrics import LATENCY_BUCKETS, ServerMetrics

AT = "2026-12-03T10:00:00Z"
SPEC = CanaryAnalysis(min_requests=100)


def served(ok: int, errors: int = 0, *, seconds: float = 0.002, classes: str = "abc") -> Counts:
    """What an arm counted: ``ok`` answers of ``seconds`` each, spread over ``classes``."""
    buckets = tuple((le, float(ok if seconds <= le else 0)) for le in LATENCY_BUCKETS)
    latency = (*buckets, (math.inf, float(ok)))
    predictions = {c: ok / len(classes) for c in classes}
    return Counts(ok=ok, server_errors=errors, latency=latency, predictions=predictions)


def test_counts_come_from_the_servers_own_metrics_page() -> None:
    metrics = ServerMetrics()
    bound = metrics.bind("iris", "v1", ["setosa", "versicolor"])
    for _ in range(3):
        bound.outcome["ok"].inc()
        bound.latency.observe(0.003)
    bound.outcome["error"].inc()
    bound.outcome["bad_request"].inc(5)  # a client's fault: not counted
    bound.count_predictions(np.array(["setosa", "setosa", "versicolor"]))
    other = metrics.bind("other", "v1", None)
    other.outcome["ok"].inc(100)

    counts = parse_server_metrics(metrics.generate().decode(), "iris")

    assert (counts.ok, counts.server_errors, counts.requests) == (3, 1, 4)
    assert counts.predictions == {"setosa": 2.0, "versicolor": 1.0}
    assert dict(counts.latency)[0.0025] == 0 and dict(counts.latency)[0.005] == 3
    assert counts.latency[-1] == (math.inf, 3.0)


def test_counts_since_a_baseline_and_after_a_server_restart() -> None:
    before, after = served(100), served(250)
    delta = after - before
    assert (delta.ok, delta.latency[-1][1]) == (150, 150.0)
    assert delta.predictions["a"] == pytest.approx(50.0)
    restarted = served(20)  # the counters started again at zero
    assert (restarted - before).ok == 20
    assert total([served(10), served(5, 1)]).requests == 16


def test_quantile_interpolates_inside_its_bucket_like_promql() -> None:
    buckets = ((0.001, 0.0), (0.002, 50.0), (0.004, 100.0), (math.inf, 100.0))
    assert quantile(0.5, buckets) == pytest.approx(0.002)
    assert quantile(0.99, buckets) == pytest.approx(0.002 + 0.002 * 49 / 50)
    assert quantile(0.99, ((0.001, 0.0), (math.inf, 10.0))) == 0.001  # beyond the last bound
    assert quantile(0.99, ()) is None
    assert quantile(0.99, ((0.001, 0.0), (math.inf, 0.0))) is None


def test_prediction_shift_is_a_jensen_shannon_distance() -> None:
    assert prediction_shift({"a": 10, "b": 10}, {"a": 5, "b": 5}) == pytest.approx(0.0)
    assert prediction_shift({"a": 10}, {"b": 10}) == pytest.approx(1.0)
    assert prediction_shift({}, {"a": 1}) is None  # a regressor counts no classes


def test_a_healthy_canary_passes() -> None:
    check = evaluate(served(200), served(600), SPEC, at=AT)
    assert check.verdict == "Pass", check
    assert (check.requests, check.stable_requests, check.latency_ratio) == (200, 600, 1.0)
    assert check.error_rate == 0.0 and check.prediction_shift == pytest.approx(0.0)


def test_too_little_traffic_on_either_arm_is_inconclusive_even_when_failing() -> None:
    check = evaluate(served(40, errors=40), served(600), SPEC, at=AT)
    assert check.verdict == "Inconclusive"
    assert "canary 80/100" in check.reason and "stable" not in check.reason
    assert evaluate(served(600), served(10), SPEC, at=AT).verdict == "Inconclusive"


@pytest.mark.parametrize(
    ("canary", "spec", "named"),
    [
        (served(190, errors=10), SPEC, "error rate 5.00% > 1.00%"),
        (served(200, seconds=0.02), SPEC, "p99 latency"),
        (
            served(200, seconds=0.02),
            CanaryAnalysis(max_latency_ratio=100, min_requests=100, max_p99_latency_ms=10),
            "p99 ",
        ),
        (served(200, classes="a"), SPEC, "prediction shift"),
    ],
    ids=["errors", "latency-ratio", "absolute-p99", "prediction-shift"],
)
def test_each_broken_bound_fails_and_is_named(
    canary: Counts, spec: CanaryAnalysis, named: str
) -> None:
    check = evaluate(canary, served(600), spec, at=AT)
    assert check.verdict == "Fail"
    assert named in check.reason


def test_client_errors_do_not_count_against_the_canary() -> None:
    # bad_request is never parsed into Counts, so only 5xx move the error rate
    check = evaluate(served(200, errors=1), served(600), SPEC, at=AT)
    assert check.verdict == "Pass" and check.error_rate == pytest.approx(1 / 201, rel=1e-3)
