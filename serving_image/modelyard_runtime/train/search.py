"""Hyperparameter candidates (grid or random) and the cross-validated choice between them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import loguniform, randint, uniform
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ParameterGrid,
    ParameterSampler,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline

from modelyard_runtime.contract import LOWER_IS_BETTER, Task
from modelyard_runtime.spec import ParameterSpace, SearchSpec
from modelyard_runtime.train.errors import InvalidSpec
from modelyard_runtime.train.estimators import check_param_names, set_checked_params
from modelyard_runtime.train.metrics import natural_cv_score
from modelyard_runtime.train.preprocessing import MODEL_STEP

log = logging.getLogger(__name__)
PREFIX = f"{MODEL_STEP}__"


class _IntLogUniform:
    """Integers spread evenly on a log scale (scipy has no discrete log-uniform)."""

    def __init__(self, low: float, high: float) -> None:
        self._dist = loguniform(low, high + 1)
        self._low, self._high = int(low), int(high)

    def rvs(self, random_state: Any = None) -> int:
        value = int(self._dist.rvs(random_state=random_state))
        return min(max(value, self._low), self._high)


def _distribution(space: ParameterSpace) -> Any:
    if space.values is not None:
        return list(space.values)
    if space.min is None or space.max is None:  # ParameterSpace refuses this; not -O-stripped
        raise InvalidSpec("a search space needs either values or both min and max")
    if space.type == "int":
        if space.scale == "log":
            return _IntLogUniform(space.min, space.max)
        return randint(int(space.min), int(space.max) + 1)
    if space.scale == "log":
        return loguniform(space.min, space.max)
    return uniform(space.min, space.max - space.min)


@dataclass
class Candidates:
    params: list[dict[str, Any]]
    note: str = ""  # said in the result message, e.g. that a grid was capped


def candidates(search: SearchSpec, seed: int) -> Candidates:
    """Parameter sets (keys without the pipeline prefix) to compare, at most maxTrials."""
    if search.strategy == "grid":
        grid = ParameterGrid({k: list(v.values or []) for k, v in search.parameters.items()})
        total = len(grid)
        if total <= search.max_trials:
            return Candidates([dict(p) for p in grid])
        # A seeded subset rather than the first N points: those would vary only the last
        # parameter.
        picked = np.random.default_rng(seed).choice(total, size=search.max_trials, replace=False)
        note = (
            f"grid of {total} combinations capped to maxTrials={search.max_trials} "
            "(a seeded random subset)"
        )
        log.warning(note)
        return Candidates([dict(grid[int(i)]) for i in sorted(picked)], note)
    space = {k: _distribution(v) for k, v in search.parameters.items()}
    sampled = list(ParameterSampler(space, n_iter=search.max_trials, random_state=seed))
    return Candidates([_plain(p) for p in sampled])


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """NumPy scalars -> Python ones, so params serialise to JSON and sklearn checks pass."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}


def check_candidates(
    name: str,
    estimator: BaseEstimator,
    params: Sequence[Mapping[str, Any]],
) -> None:
    """Fail on a bad name or value before fitting anything."""
    for candidate in params:
        check_param_names(name, estimator, candidate)
        set_checked_params(name, clone(estimator), candidate)


def folds(task: Task, n_folds: int, seed: int) -> KFold | StratifiedKFold:
    if task == "classification":
        return StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return KFold(n_splits=n_folds, shuffle=True, random_state=seed)


@dataclass
class SearchOutcome:
    model: Pipeline
    best_params: dict[str, Any] | None
    cv_metrics: dict[str, float] = field(default_factory=dict)
    trials: int = 1


def cross_validated_fit(
    pipeline: Pipeline,
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: Task,
    params: Sequence[Mapping[str, Any]],
    scorers: Mapping[str, Any],
    objective: str,
    maximize: bool,
    n_folds: int,
    seed: int,
) -> SearchOutcome:
    """Score every candidate by k-fold CV on the training split, then refit the best one on
    the whole training split. With a single candidate the CV still yields cv metrics."""
    if objective not in scorers:
        raise InvalidSpec(f"objective metric {objective!r} cannot be computed for this model")

    def pick_best(results: Mapping[str, Any]) -> int:
        scores = np.array(
            [natural_cv_score(objective, s) for s in results[f"mean_test_{objective}"]], dtype=float
        )
        scores = np.where(np.isnan(scores), -np.inf if maximize else np.inf, scores)
        return int(np.argmax(scores) if maximize else np.argmin(scores))

    grid = [{PREFIX + k: [v] for k, v in candidate.items()} for candidate in params] or [{}]
    search = GridSearchCV(
        pipeline,
        grid,
        scoring=dict(scorers),
        refit=pick_best,
        cv=folds(task, n_folds, seed),
        error_score="raise",
        n_jobs=None,
    )
    search.fit(x, y)
    best = search.best_index_
    cv_metrics = {
        name: round(natural_cv_score(name, float(search.cv_results_[f"mean_test_{name}"][best])), 6)
        for name in scorers
    }
    best_params = {k[len(PREFIX) :]: v for k, v in search.best_params_.items()} if params else None
    return SearchOutcome(search.best_estimator_, best_params, cv_metrics, trials=len(grid))


def default_direction(metric: str) -> bool:
    """True when greater is better."""
    return metric not in LOWER_IS_BETTER
