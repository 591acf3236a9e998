"""The estimator allow-list and hyperparameter checks of the trainer."""

from __future__ import annotations

import pytest
from modelyard_runtime.contract import CLASSIFIERS, ESTIMATORS, REGRESSORS, ExitCode
from modelyard_runtime.train.errors import InvalidSpec
from modelyard_runtime.train.estimators import ESTIMATOR_CLASSES, make_estimator
from sklearn.base import is_classifier, is_regressor


def test_mapping_covers_exactly_the_contract_allow_list() -> None:
    assert set(ESTIMATOR_CLASSES) == set(ESTIMATORS)
    assert len(ESTIMATOR_CLASSES) == len(ESTIMATORS)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifiers_are_classifiers(name: str) -> None:
    assert is_classifier(ESTIMATOR_CLASSES[name]())
    assert ESTIMATOR_CLASSES[name].__name__ == name


@pytest.mark.parametrize("name", REGRESSORS)
def test_regressors_are_regressors(name: str) -> None:
    assert is_regressor(ESTIMATOR_CLASSES[name]())
    assert ESTIMATOR_CLASSES[name].__name__ == name


def test_seed_becomes_random_state_unless_given() -> None:
    assert make_estimator("RandomForestClassifier", {}, seed=7).get_params()["random_state"] == 7
    forest = make_estimator("RandomForestClassifier", {"random_state": 3}, seed=7)
    assert forest.get_params()["random_state"] == 3
    assert "random_state" not in make_estimator("GaussianNB", {}, seed=7).get_params()


def test_hyperparameters_are_applied() -> None:
    model = make_estimator("LogisticRegression", {"C": 0.5, "max_iter": 50}, seed=0)
    assert model.get_params()["C"] == 0.5
    assert model.get_params()["max_iter"] == 50


def test_unknown_estimator_is_invalid_spec() -> None:
    with pytest.raises(InvalidSpec, match="allow-list"):
        make_estimator("os.system", {}, seed=0)


def test_unknown_hyperparameter_names_what_is_accepted() -> None:
    with pytest.raises(InvalidSpec) as caught:
        make_estimator("Ridge", {"alhpa": 1.0}, seed=0)
    assert "alhpa" in caught.value.message
    assert "alpha" in caught.value.message
    assert caught.value.exit_code == ExitCode.INVALID_SPEC


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("LogisticRegression", {"C": "lots"}),
        ("RandomForestClassifier", {"n_estimators": -3}),
        ("KNeighborsClassifier", {"weights": "heaviest"}),
        ("SVR", {"kernel": 3}),
    ],
)
def test_ill_typed_hyperparameters_are_invalid_spec(name: str, params: dict[str, object]) -> None:
    with pytest.raises(InvalidSpec) as caught:
        make_estimator(name, params, seed=0)
    assert next(iter(params)) in caught.value.message
