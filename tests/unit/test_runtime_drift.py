"""The drift statistics (modelyard_runtime.drift): calibrated on unshifted data, powerful on a
real shift, and no false drift from the degenerate cases that trip p-value-only detectors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from modelyard_runtime.drift import Column, DriftTestSettings, Reference, Window, check

P_ONLY = DriftTestSettings(min_effect=0.0)  # what a p-value-only detector would say


def numeric(n: int) -> tuple[Column, ...]:
    return tuple(Column(f"x{i}", "numeric") for i in range(n))


def numeric_reference(rng: np.random.Generator, n: int = 2000) -> Reference:
    rows = rng.normal(size=(n, 4))
    return Reference("regression", numeric(4), rows.tolist(), rows.sum(axis=1).tolist())


def window_of(rows: np.ndarray | list[list[Any]], predictions: list[Any] | None = None) -> Window:
    rows = rows.tolist() if isinstance(rows, np.ndarray) else rows
    if predictions is None:
        predictions = [float(np.sum(r)) for r in rows]
    return Window(rows, predictions)


WINDOWS = 200
# Two binomial standard deviations of a rate measured over WINDOWS windows, at alpha 0.05.
NOISE = 2 * (0.05 * 0.95 / WINDOWS) ** 0.5


def false_alarm_rates(*settings: DriftTestSettings, n: int = 500) -> list[float]:
    """Over WINDOWS unshifted windows, each against its own reference draw: the tests'
    guarantee is over both samples (against one fixed reference the rate varies around alpha
    with that reference's own sampling noise: 0.02-0.075 over five seeds here)."""
    rng = np.random.default_rng(7)
    alarms = [0] * len(settings)
    for _ in range(WINDOWS):
        reference, window = numeric_reference(rng), window_of(rng.normal(size=(n, 4)))
        for i, each in enumerate(settings):
            alarms[i] += check(reference, window, each).state == "Drifting"
    return [a / WINDOWS for a in alarms]


@pytest.mark.parametrize("correction", ["Bonferroni", "FDR"])
def test_false_alarm_rate_on_unshifted_windows_is_at_most_alpha(correction: Any) -> None:
    # 4 features + the output in one correction family: at most alpha within sampling noise,
    # with the effect threshold (the default) and on p-values alone.
    rates = false_alarm_rates(
        DriftTestSettings(correction=correction),
        DriftTestSettings(min_effect=0.0, correction=correction),
    )
    assert max(rates) <= 0.05 + NOISE, rates


def test_half_sigma_shift_in_one_feature_is_detected_at_n_500() -> None:
    rng = np.random.default_rng(11)
    reference = numeric_reference(rng)
    detected = []
    for _ in range(50):
        rows = rng.normal(size=(500, 4))
        rows[:, 2] += 0.5
        report = check(reference, window_of(rows), DriftTestSettings())
        detected.append(report.drifted)
    assert all("x2" in d for d in detected)
    # Only the shifted feature (and the output, which sums them) is named.
    assert all(set(d) <= {"x2", "prediction"} for d in detected)
    example = check(reference, window_of(rows), DriftTestSettings())
    x2 = next(t for t in example.features if t.name == "x2")
    assert x2.test == "KS" and 0.35 < x2.effect < 0.65  # type: ignore[operator]


def test_too_few_samples_is_insufficient_data_never_drift() -> None:
    rng = np.random.default_rng(1)
    reference = numeric_reference(rng)
    shifted = rng.normal(size=(199, 4)) + 10
    report = check(reference, window_of(shifted), DriftTestSettings(min_samples=200))
    assert report.state == "InsufficientData" and report.samples == 199
    assert "199 samples, fewer than minSamples 200" in report.message


def test_a_one_row_window_does_not_drift() -> None:
    rng = np.random.default_rng(2)
    reference = numeric_reference(rng)
    report = check(reference, window_of(rng.normal(size=(1, 4))), DriftTestSettings(min_samples=1))
    assert report.state == "NoDrift", report


def test_a_constant_column_is_binned_and_does_not_drift() -> None:
    rng = np.random.default_rng(3)
    ref_rows = [[1.0, float(v)] for v in rng.normal(size=1000)]
    reference = Reference("regression", numeric(2), ref_rows, [0.0] * 1000)
    now = [[1.0, float(v)] for v in rng.normal(size=500)]
    report = check(reference, Window(now, [0.0] * 500), P_ONLY)
    constant = report.features[0]
    assert constant.test == "ChiSquared" and constant.p_value == 1.0 and not constant.drifted
    assert report.state == "NoDrift"


def test_tied_integer_values_do_not_drift() -> None:
    rng = np.random.default_rng(4)
    ref = rng.integers(0, 8, size=(2000, 1)).astype(float)  # 8 values: KS with heavy ties
    reference = Reference("regression", numeric(1), ref.tolist(), [])
    alarms = 0
    for _ in range(100):
        now = rng.integers(0, 8, size=(300, 1)).astype(float)
        alarms += check(reference, Window(now.tolist(), [0.0] * 300), P_ONLY).state == "Drifting"
    assert alarms <= 5


def categorical_reference(rng: np.random.Generator) -> Reference:
    # "rare" is 0.4% of the reference; the window sees it a few times more often by chance
    values = rng.choice(["a", "b", "c", "rare"], p=[0.5, 0.3, 0.196, 0.004], size=2000)
    colour = (Column("colour", "categorical"),)
    return Reference("classification", colour, [[v] for v in values.tolist()], values.tolist())


def test_a_rare_category_does_not_produce_false_drift() -> None:
    rng = np.random.default_rng(5)
    reference = categorical_reference(rng)
    now = ["a"] * 100 + ["b"] * 60 + ["c"] * 36 + ["rare"] * 4  # 2% rare: 5x its share
    report = check(reference, Window([[v] for v in now], now), P_ONLY)
    colour = report.features[0]
    assert colour.test == "ChiSquared" and not colour.drifted, colour
    # A category the reference never saw is counted (as "other"), and a real shift is found.
    shifted = ["a"] * 40 + ["b"] * 60 + ["c"] * 60 + ["purple"] * 40
    report = check(reference, Window([[v] for v in shifted], shifted), DriftTestSettings())
    assert report.features[0].drifted and report.prediction and report.prediction.drifted


def test_missing_values_are_left_out() -> None:
    rng = np.random.default_rng(6)
    reference = numeric_reference(rng)
    rows = rng.normal(size=(400, 4)).tolist()
    for row in rows[:200]:
        row[1] = None
    report = check(
        reference, window_of(rows, [0.0] * 400), DriftTestSettings(prediction_drift=False)
    )
    assert report.state == "NoDrift" and report.prediction is None
    all_missing = [[None, *r[1:]] for r in rows]
    report = check(reference, window_of(all_missing, [0.0] * 400), P_ONLY)
    assert report.features[0].test == "None" and not report.features[0].drifted


def test_min_effect_keeps_tiny_shifts_at_large_n_from_drifting() -> None:
    rng = np.random.default_rng(8)
    big = rng.normal(size=(100_000, 4))
    reference = Reference("regression", numeric(4), big[:50_000].tolist(), [])
    rows = big[50_000:].copy()
    rows[:, 0] += 0.05  # significant at this n, and irrelevant
    p_only = check(reference, Window(rows.tolist(), []), P_ONLY)
    assert "x0" in p_only.drifted
    assert check(reference, Window(rows.tolist(), []), DriftTestSettings()).state == "NoDrift"


def test_fdr_finds_what_bonferroni_misses_when_several_features_shift() -> None:
    # Bonferroni multiplies every p by the family size; Benjamini-Hochberg ranks them, so
    # several moderately significant features survive FDR where Bonferroni drops them.
    rng = np.random.default_rng(9)
    reference = Reference("regression", numeric(20), rng.normal(size=(2000, 20)).tolist(), [])
    found = {"Bonferroni": 0, "FDR": 0}
    for _ in range(20):
        rows = rng.normal(size=(300, 20))
        rows[:, :6] += 0.2
        for correction in found:
            settings = DriftTestSettings(min_effect=0.0, correction=correction)  # type: ignore[arg-type]
            found[correction] += len(check(reference, Window(rows.tolist(), []), settings).drifted)
    assert found["FDR"] > found["Bonferroni"], found


def test_status_json_is_rounded_and_finite() -> None:
    rng = np.random.default_rng(10)
    reference = numeric_reference(rng)
    rows = rng.normal(size=(500, 4))
    rows[:, 0] += 3
    shown = check(reference, window_of(rows), DriftTestSettings()).to_status()
    assert shown["state"] == "Drifting" and shown["message"].startswith("drift in x0")
    first = shown["features"][0]
    assert set(first) == {"name", "test", "statistic", "pValue", "effect", "drifted"}
    assert len(repr(first["effect"]).replace(".", "").lstrip("0")) <= 5


def test_settings_round_trip_through_the_query_and_refuse_bad_values() -> None:
    settings = DriftTestSettings(alpha=0.01, correction="FDR", min_effect=0.2, min_samples=50)
    assert DriftTestSettings.from_query(settings.to_query()) == settings
    with pytest.raises(ValueError, match="alpha"):
        DriftTestSettings.from_query({"alpha": "2"})
    with pytest.raises(ValueError, match="correction"):
        DriftTestSettings.from_query({"correction": "Holm"})
    with pytest.raises(ValueError, match="invalid drift test parameter"):
        DriftTestSettings.from_query({"minSamples": "many"})


def test_reference_json_round_trip() -> None:
    reference = Reference("classification", (Column("c", "categorical"),), [["a"]], ["y"])
    assert Reference.from_json(reference.to_json()) == reference


def test_window_json_and_pooling() -> None:
    a = Window.from_json({"window": {"rows": [[1.0], [2.0]], "predictions": [0, 1]}})
    b = Window.from_json({"window": {"rows": [[3.0]], "predictions": [1]}})
    pooled = Window.pool([a, b])
    assert pooled.rows == [[1.0], [2.0], [3.0]] and pooled.predictions == [0, 1, 1]
    with pytest.raises(ValueError, match="predictions"):
        Window.from_json({"window": {"rows": [[1.0]], "predictions": []}})
