"""The estimator allow-list: contract names mapped to scikit-learn classes.

A spec names an estimator; only the classes listed here can ever be built. No import path
from a spec is executed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils._param_validation import InvalidParameterError

from modelyard_runtime.train.errors import InvalidSpec

# Keyed by class name: the contract's names (ESTIMATORS) are the classes' own, so they are
# not written out again here (tests/unit/test_runtime_estimators.py proves the two agree).
ESTIMATOR_CLASSES: Mapping[str, type[BaseEstimator]] = {
    cls.__name__: cls
    for cls in (
        LogisticRegression,
        RandomForestClassifier,
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        DecisionTreeClassifier,
        KNeighborsClassifier,
        SVC,
        GaussianNB,
        SGDClassifier,
        LinearRegression,
        Ridge,
        Lasso,
        ElasticNet,
        RandomForestRegressor,
        ExtraTreesRegressor,
        GradientBoostingRegressor,
        HistGradientBoostingRegressor,
        DecisionTreeRegressor,
        KNeighborsRegressor,
        SVR,
    )
}


def make_estimator(name: str, hyperparameters: Mapping[str, Any], seed: int) -> BaseEstimator:
    """An unfitted estimator with the spec's hyperparameters, each checked by name and value.

    ``random_state`` defaults to the spec's seed so that a run is reproducible.
    """
    cls = ESTIMATOR_CLASSES.get(name)
    if cls is None:
        raise InvalidSpec(f"estimator {name!r} is not in the allow-list")
    estimator = cls()
    check_param_names(name, estimator, hyperparameters)
    params = dict(hyperparameters)
    if "random_state" in estimator.get_params() and "random_state" not in params:
        params["random_state"] = seed
    set_checked_params(name, estimator, params)
    return estimator


def check_param_names(name: str, estimator: BaseEstimator, names: Mapping[str, Any]) -> None:
    known = estimator.get_params(deep=False)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise InvalidSpec(
            f"unknown hyperparameter(s) {unknown} for {name}; it accepts {sorted(known)}"
        )


def set_checked_params(name: str, estimator: BaseEstimator, params: Mapping[str, Any]) -> None:
    """Set ``params`` and run scikit-learn's own parameter validation now, rather than fail
    late inside ``fit`` (possibly after a long search)."""
    try:
        estimator.set_params(**params)
        validate = getattr(estimator, "_validate_params", None)
        if validate is not None:
            validate()
    except InvalidParameterError as error:
        raise InvalidSpec(f"invalid hyperparameter for {name}: {error}") from error
    except (TypeError, ValueError) as error:
        raise InvalidSpec(f"invalid hyperparameters {dict(params)} for {name}: {error}") from error
