"""The trainer's reference sample (the server's warm-up input and the drift baseline): at most
REFERENCE_SAMPLE_ROWS rows, stratified by class or target decile, bounded for wide data."""

from __future__ import annotations

import numpy as np
from modelyard_runtime.train import artifact


def test_small_training_sets_are_kept_whole() -> None:
    x, y = np.zeros((150, 4)), np.arange(150) % 3
    assert artifact.reference_sample(x, y, "classification", seed=0).tolist() == list(range(150))


def test_classes_keep_their_training_shares() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice([0, 1, 2], p=[0.9, 0.08, 0.02], size=20_000)
    index = artifact.reference_sample(np.zeros((20_000, 3)), y, "classification", seed=1)
    assert len(index) == artifact.REFERENCE_SAMPLE_ROWS
    assert np.all(np.diff(index) > 0)  # sorted, no repeats
    shares = np.bincount(y[index], minlength=3) / len(index)
    assert np.allclose(shares, np.bincount(y, minlength=3) / len(y), atol=0.002)


def test_a_regression_is_stratified_by_target_decile() -> None:
    y = np.random.default_rng(2).lognormal(size=10_000)  # skewed: a plain sample may miss the tail
    index = artifact.reference_sample(np.zeros((10_000, 2)), y, "regression", seed=3)
    deciles = np.quantile(y, np.linspace(0, 1, 11))
    counts = np.histogram(y[index], bins=deciles)[0]
    assert counts.min() >= 195 and counts.max() <= 205, counts


def test_wide_data_gets_fewer_rows_and_a_singleton_class_still_samples() -> None:
    y = np.zeros(5000, dtype=int)
    y[0] = 1  # a class of one row cannot be stratified: a plain sample instead
    index = artifact.reference_sample(np.zeros((5000, 1000)), y, "classification", seed=4)
    assert len(index) == artifact.REFERENCE_SAMPLE_VALUES // 1000
