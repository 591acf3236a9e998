"""Size bounds on hyperparameters: SizeLimits and size_violations name every field too big."""

from __future__ import annotations

from typing import Any

import pytest
from modelyard_runtime.spec import ModelSpec, SizeLimits, TrainingSpec, size_violations


def _spec(hyperparameters: dict[str, Any], search: dict[str, Any] | None = None) -> TrainingSpec:
    body: dict[str, Any] = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": "RandomForestClassifier", "hyperparameters": hyperparameters},
    }
    if search is not None:
        body["search"] = search
    return TrainingSpec.model_validate(body)


def test_defaults() -> None:
    limits = SizeLimits()
    assert (limits.n_estimators, limits.max_iter, limits.n_jobs) == (1000, 100_000, 4)
    assert (limits.max_depth, limits.n_neighbors, limits.max_trials) == (100, 1000, 1000)


def test_within_bounds() -> None:
    spec = _spec({"n_estimators": 1000, "n_jobs": 4, "max_depth": None})
    assert size_violations(spec) == []
    assert size_violations(ModelSpec(estimator="SVC", hyperparameters={"max_iter": -1})) == []


def test_the_review_trigger_is_refused() -> None:
    problems = size_violations(_spec({"n_estimators": 1_000_000_000, "n_jobs": -1}))
    assert problems == [
        "spec.model.hyperparameters.n_estimators: 1000000000 exceeds the limit of 1000",
        "spec.model.hyperparameters.n_jobs: -1 is not allowed; use 1..4 (or leave it unset)",
    ]


@pytest.mark.parametrize(
    ("estimator", "name", "value"),
    [
        ("LogisticRegression", "max_iter", 10**12),
        ("HistGradientBoostingClassifier", "max_iter", 100_001),
        ("DecisionTreeRegressor", "max_depth", 101),
        ("KNeighborsClassifier", "n_neighbors", 1001),
        ("KNeighborsRegressor", "n_jobs", 0),
        ("ExtraTreesRegressor", "n_jobs", 5),
    ],
)
def test_each_bound(estimator: str, name: str, value: int) -> None:
    problems = size_violations(ModelSpec(estimator=estimator, hyperparameters={name: value}))
    assert len(problems) == 1 and problems[0].startswith(f"spec.model.hyperparameters.{name}:")


def test_search_candidates_count() -> None:
    search = {
        "strategy": "random",
        "maxTrials": 50,
        "parameters": {
            "n_estimators": {"values": [10, 5000]},
            "max_depth": {"min": 1, "max": 500, "type": "int"},
        },
    }
    problems = size_violations(_spec({}, search), SizeLimits(max_trials=20))
    assert problems == [
        "spec.search.maxTrials: 50 exceeds the limit of 20",
        "spec.search.parameters.n_estimators.values[1]: 5000 exceeds the limit of 1000",
        "spec.search.parameters.max_depth.max: 500.0 exceeds the limit of 100",
    ]


def test_limits_from_json() -> None:
    assert SizeLimits.from_json(None) == SizeLimits()
    assert SizeLimits.from_json("") == SizeLimits()
    limits = SizeLimits.from_json('{"nEstimators": 50, "nJobs": 1}')
    assert (limits.n_estimators, limits.n_jobs, limits.max_iter) == (50, 1, 100_000)
    assert SizeLimits.model_validate_json(limits.model_dump_json(by_alias=True)) == limits
    with pytest.raises(ValueError, match="invalid size limits"):
        SizeLimits.from_json('{"nEstimators": 0}')
    with pytest.raises(ValueError, match="invalid size limits"):
        SizeLimits.from_json("{")
