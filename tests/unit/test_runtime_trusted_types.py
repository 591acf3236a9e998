"""SERVER_TRUSTED_TYPES covers every pipeline the trainer can build.

For each allow-listed estimator (and the hyperparameters that change what gets stored, such
as the neighbours' search structure), fit the trainer's pipeline on numeric + categorical +
boolean data, dump it with skops and ask skops which types it would not load by default. A
type missing from the server's list fails here, not in production.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from modelyard_runtime.contract import ESTIMATORS, task_of
from modelyard_runtime.serve.trusted import SERVER_TRUSTED_TYPES
from modelyard_runtime.train.estimators import make_estimator
from modelyard_runtime.train.preprocessing import build_pipeline, describe_features, to_matrix

VARIANTS: list[tuple[str, dict[str, Any]]] = (
    [(name, {}) for name in ESTIMATORS]
    + [
        ("KNeighborsClassifier", {"algorithm": algorithm, "metric": metric})
        for algorithm in ("kd_tree", "ball_tree")
        for metric in ("manhattan", "chebyshev")
    ]
    + [
        ("KNeighborsRegressor", {"algorithm": "ball_tree"}),
        ("KNeighborsClassifier", {"metric": "minkowski", "p": 3}),
        ("SVC", {"probability": True}),
        ("SGDClassifier", {"loss": "log_loss"}),
        ("GradientBoostingClassifier", {"n_estimators": 5}),
    ]
)


def _data(task: str, n_classes: int) -> tuple[np.ndarray, np.ndarray, Any]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=80),
            "x2": rng.normal(size=80),
            "city": rng.choice(["a", "b", "c"], size=80),
            "flag": rng.choice([True, False], size=80),
        }
    )
    frame.loc[4, "x1"] = np.nan
    described = describe_features(frame)
    y = rng.integers(0, n_classes, size=80) if task == "classification" else rng.normal(size=80)
    return to_matrix(frame, described), y, described


_NEEDED: set[str] = set()  # what the parametrised test saw, for the dead-entry check


@pytest.mark.parametrize(
    ("name", "params"),
    VARIANTS,
    ids=[f"{n}-{'-'.join(map(str, p.values())) or 'default'}" for n, p in VARIANTS],
)
def test_pipeline_types_are_trusted_by_the_server(name: str, params: dict[str, Any]) -> None:
    task = task_of(name)
    for n_classes in (2, 3) if task == "classification" else (0,):
        x, y, described = _data(task, n_classes)
        pipeline = build_pipeline(described, make_estimator(name, params, seed=0)).fit(x, y)
        dumped = skops.io.dumps(pipeline)
        untrusted = skops.io.get_untrusted_types(data=dumped)
        _NEEDED.update(untrusted)
        missing = sorted(set(untrusted) - set(SERVER_TRUSTED_TYPES))
        assert not missing, f"add to SERVER_TRUSTED_TYPES: {missing}"
        loaded = skops.io.loads(dumped, trusted=list(SERVER_TRUSTED_TYPES))
        np.testing.assert_array_equal(loaded.predict(x[:5]), pipeline.predict(x[:5]))


def test_the_list_has_no_dead_entries() -> None:
    """Every listed type is needed by some pipeline: the list stays minimal. (Runs after the
    parametrised test, in file order; alone it has nothing to compare.)"""
    if len(_NEEDED) == 0:
        pytest.skip("run with test_pipeline_types_are_trusted_by_the_server")
    assert set(SERVER_TRUSTED_TYPES) <= _NEEDED, set(SERVER_TRUSTED_TYPES) - _NEEDED
