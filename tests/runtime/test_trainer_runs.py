"""The trainer as a real process: datasets, search, gate, bad inputs and their exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from modelyard_runtime.contract import ExitCode, ModelMetadata, TrainerResult, sha256_of
from modelyard_runtime.serve.trusted import SERVER_TRUSTED_TYPES
from runtime_support import TrainerRun, run_trainer

pytestmark = pytest.mark.runtime


def check_artifact(run: TrainerRun) -> ModelMetadata:
    result = TrainerResult.model_validate(run.result)
    assert result.model is not None
    files = sorted(p.name for p in run.model_dir.iterdir())
    metadata = ModelMetadata.model_validate(run.metadata())
    compiled = metadata.runtimes is not None and metadata.runtimes.onnx.available
    assert files == ["metadata.json", *(["model.onnx"] if compiled else []), "model.skops"]
    # The artifact digest pins metadata.json, which pins every other file.
    assert result.model.sha256 == sha256_of(run.model_dir / "metadata.json")
    assert metadata.sha256 == sha256_of(run.model_dir / "model.skops")
    if compiled:
        assert metadata.runtimes is not None
        assert metadata.runtimes.onnx.sha256 == sha256_of(run.model_dir / "model.onnx")
    assert result.model.uri == f"file://{run.output_dir}/{result.model.version}"
    assert metadata.model_version == result.model.version
    assert 0 < len(metadata.reference_sample) <= 2000
    assert len(metadata.reference_predictions) == len(metadata.reference_sample)
    assert len(metadata.reference_sample[0]) == len(metadata.features)
    assert [r.name for r in metadata.reference] == [f.name for f in metadata.features]
    assert metadata.dataset.digest.startswith("sha256:")
    # No leftovers from the atomic write.
    assert [p.name for p in run.output_dir.iterdir()] == [result.model.version]
    # Serving gets raw features: the stored pipeline predicts from them.
    model = skops.io.load(run.model_dir / "model.skops", trusted=list(SERVER_TRUSTED_TYPES))
    # (as the server reads it: a missing value, None in JSON, is NaN to the pipeline)
    rows = [[np.nan if v is None else v for v in row] for row in metadata.reference_sample]
    sample = np.asarray(rows, dtype=object)
    if all(f.kind == "numeric" for f in metadata.features):
        sample = np.asarray(metadata.reference_sample, dtype=float)
    # The output baseline is the stored model's own predictions on the stored sample.
    assert model.predict(sample).tolist() == metadata.reference_predictions
    return metadata


def test_iris_classification(iris_run: TrainerRun) -> None:
    assert iris_run.result["reason"] == "Succeeded"
    metadata = check_artifact(iris_run)
    assert metadata.task == "classification"
    assert metadata.classes == [0, 1, 2]
    assert set(metadata.metrics) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert metadata.metrics["accuracy"] >= 0.8
    assert set(metadata.cv_metrics) == set(metadata.metrics)
    assert metadata.validation.passed
    assert metadata.params["max_iter"] == 500
    assert metadata.params["random_state"] == 42
    assert metadata.dataset.rows == 150
    assert metadata.dataset.columns == 5
    assert len(metadata.features) == 4
    assert all(f.kind == "numeric" and f.dtype == "float64" for f in metadata.features)
    # Logs are JSON lines on stderr.
    lines = [json.loads(line) for line in iris_run.stderr.splitlines() if line.startswith("{")]
    assert any(line["message"] == "wrote artifact" for line in lines)


def test_wine_random_forest_is_reproducible(tmp_path: Path) -> None:
    spec = {
        "dataset": {"builtin": "wine"},
        "model": {
            "estimator": "RandomForestClassifier",
            "hyperparameters": {"n_estimators": 20, "max_depth": 4},
        },
        "validation": {"cvFolds": 3, "metrics": ["accuracy", "f1"]},
        "seed": 3,
    }
    first = run_trainer(spec, tmp_path / "a")
    second = run_trainer(spec, tmp_path / "b")
    assert first.returncode == 0, first.stderr[-2000:]
    metadata = check_artifact(first)
    assert set(metadata.metrics) == {"accuracy", "f1"}
    assert first.result["metrics"] == second.result["metrics"]
    assert first.result["cvMetrics"] == second.result["cvMetrics"]


def test_diabetes_regression_with_grid_search(tmp_path: Path) -> None:
    spec = {
        "dataset": {"builtin": "diabetes"},
        "model": {"estimator": "Ridge"},
        "validation": {"cvFolds": 4, "testSize": 0.25, "gate": [{"metric": "r2", "min": 0.2}]},
        "search": {
            "strategy": "grid",
            "metric": "rmse",
            "parameters": {
                "alpha": {"values": [0.01, 0.1, 1.0, 10.0]},
                "fit_intercept": {"values": [True, False]},
            },
        },
    }
    run = run_trainer(spec, tmp_path)
    assert run.returncode == ExitCode.OK, run.stderr[-2000:]
    metadata = check_artifact(run)
    assert metadata.task == "regression"
    assert metadata.classes is None
    assert set(metadata.metrics) == {"r2", "rmse", "mae"}
    assert metadata.metrics["rmse"] > 0 and metadata.cv_metrics["rmse"] > 0
    assert metadata.best_params is not None
    assert metadata.best_params["alpha"] in (0.01, 0.1, 1.0, 10.0)
    assert metadata.best_params["fit_intercept"] is True  # the target is far from 0
    assert metadata.params["alpha"] == metadata.best_params["alpha"]


def test_grid_capped_to_max_trials_says_so(tmp_path: Path) -> None:
    spec = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": "DecisionTreeClassifier"},
        "validation": {"cvFolds": 3},
        "search": {
            "strategy": "grid",
            "maxTrials": 3,
            "parameters": {
                "max_depth": {"values": [1, 2, 3, 4]},
                "min_samples_leaf": {"values": [1, 2]},
            },
        },
    }
    run = run_trainer(spec, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "capped to maxTrials=3" in run.result["message"]


def test_random_search_with_ranges(tmp_path: Path) -> None:
    spec = {
        "dataset": {"builtin": "breast_cancer"},
        "model": {"estimator": "LogisticRegression", "hyperparameters": {"max_iter": 300}},
        "validation": {"cvFolds": 3, "gate": [{"metric": "roc_auc", "min": 0.9}]},
        "search": {
            "strategy": "random",
            "maxTrials": 4,
            "metric": "roc_auc",
            "parameters": {
                "C": {"min": 0.001, "max": 100, "scale": "log"},
                "tol": {"values": [0.0001, 0.001]},
            },
        },
    }
    run = run_trainer(spec, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    best = run.result["bestParams"]
    assert 0.001 <= best["C"] <= 100 and best["tol"] in (0.0001, 0.001)
    assert run.result["metrics"]["roc_auc"] >= 0.9


def write_csv(path: Path, rows: int = 120) -> Path:
    rng = np.random.default_rng(0)
    size = rng.uniform(20, 200, rows)
    city = rng.choice(["oslo", "rome", "lima"], rows)
    price = size * 3 + np.where(city == "rome", 100, 0) + rng.normal(0, 5, rows)
    frame = pd.DataFrame(
        {
            "size": size,
            "rooms": rng.integers(1, 6, rows).astype(float),
            "city": city,
            "garden": rng.choice([True, False], rows),
            "expensive": np.where(price > 400, "yes", "no"),
            "price": price,
        }
    )
    frame.loc[::7, "size"] = np.nan  # missing numbers: median-imputed
    frame.loc[::11, "city"] = None  # missing categories: most-frequent-imputed
    frame.to_csv(path, index=False)
    return path


def test_csv_with_missing_values_and_a_categorical_column(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "houses.csv")
    spec = {
        "dataset": {"uri": f"file://{csv}", "target": "expensive"},
        "model": {
            "estimator": "HistGradientBoostingClassifier",
            "hyperparameters": {"max_iter": 30},
        },
        "validation": {"cvFolds": 3},
    }
    run = run_trainer({**spec}, tmp_path / "run")
    assert run.returncode == 0, run.stderr[-3000:]
    metadata = check_artifact(run)
    kinds = {f.name: (f.kind, f.dtype) for f in metadata.features}
    assert kinds["city"] == ("categorical", "object")
    assert kinds["garden"] == ("categorical", "bool")
    assert kinds["size"] == ("numeric", "float64")
    assert "price" in kinds  # every non-target column is a feature
    assert metadata.classes == ["no", "yes"]
    stats = {s.name: s for s in metadata.reference}
    assert stats["size"].missing > 0 and stats["size"].quantiles is not None
    assert stats["city"].frequencies is not None and set(stats["city"].frequencies) <= {
        "oslo",
        "rome",
        "lima",
    }
    assert metadata.dataset.source == f"file://{csv}"


def test_parquet_under_the_data_root(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "claim" / "sets").mkdir(parents=True)
    pd.read_csv(write_csv(tmp_path / "h.csv")).to_parquet(root / "claim" / "sets" / "h.parquet")
    spec = {
        "dataset": {"uri": "pvc://claim/sets/h.parquet", "target": "price"},
        "model": {"estimator": "RandomForestRegressor", "hyperparameters": {"n_estimators": 10}},
        "validation": {"cvFolds": 0},
    }
    run = run_trainer(spec, tmp_path / "run", MODELYARD_DATA_ROOT=str(root))
    assert run.returncode == 0, run.stderr[-3000:]
    assert check_artifact(run).cv_metrics == {}


def test_gate_not_met_still_writes_the_artifact(tmp_path: Path) -> None:
    spec = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": "DecisionTreeClassifier", "hyperparameters": {"max_depth": 1}},
        "validation": {"cvFolds": 0, "gate": [{"metric": "accuracy", "min": 0.99}]},
    }
    run = run_trainer(spec, tmp_path)
    assert run.returncode == ExitCode.GATE_NOT_MET
    assert run.result["reason"] == "GateNotMet"
    assert "accuracy" in run.result["message"]
    assert run.result["validation"]["passed"] is False
    check_artifact(run)


def test_generated_version_when_none_is_given(tmp_path: Path) -> None:
    spec = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": "GaussianNB"},
        "validation": {"cvFolds": 0},
    }
    run = run_trainer(spec, tmp_path, version=None, MODELYARD_STORAGE_URI="pvc://models/iris")
    assert run.returncode == 0, run.stderr[-2000:]
    version = run.result["model"]["version"]
    assert version.startswith("v20")
    assert run.result["model"]["uri"] == f"pvc://models/iris/{version}"


def _bad(tmp_path: Path, spec: Any, **env: str) -> TrainerRun:
    run = run_trainer(spec, tmp_path, **env)
    assert run.result["message"], run.result
    assert not (run.output_dir.exists() and any(run.output_dir.iterdir()))
    return run


IRIS = {"dataset": {"builtin": "iris"}, "model": {"estimator": "LogisticRegression"}}


@pytest.mark.parametrize(
    ("spec", "code", "fragment"),
    [
        ("{not json", ExitCode.INVALID_SPEC, "not valid JSON"),
        (
            {"dataset": {"builtin": "iris"}, "model": {"estimator": "os.system"}},
            ExitCode.INVALID_SPEC,
            "estimator",
        ),
        (
            {**IRIS, "model": {"estimator": "LogisticRegression", "hyperparameters": {"Cee": 1}}},
            ExitCode.INVALID_SPEC,
            "Cee",
        ),
        (
            {**IRIS, "model": {"estimator": "LogisticRegression", "hyperparameters": {"C": "big"}}},
            ExitCode.INVALID_SPEC,
            "C",
        ),
        (
            {**IRIS, "search": {"parameters": {"max_iter": {"values": [10, -5]}}}},
            ExitCode.INVALID_SPEC,
            "max_iter",
        ),
        (
            {
                **IRIS,
                "model": {"estimator": "SVC"},
                "validation": {"gate": [{"metric": "roc_auc", "min": 0.5}]},
            },
            ExitCode.INVALID_SPEC,
            "predict_proba",
        ),
        (
            {"dataset": {"builtin": "diabetes"}, "model": {"estimator": "LogisticRegression"}},
            ExitCode.INVALID_DATA,
            "continuous",
        ),
        (
            {
                "dataset": {"builtin": "iris", "target": "species"},
                "model": {"estimator": "LogisticRegression"},
            },
            ExitCode.INVALID_DATA,
            "species",
        ),
    ],
    ids=[
        "malformed-json",
        "estimator-not-allowed",
        "unknown-hyperparameter",
        "ill-typed-hyperparameter",
        "bad-search-value",
        "roc-auc-without-proba",
        "classifier-on-continuous-target",
        "unknown-target-column",
    ],
)
def test_invalid_spec_or_data(tmp_path: Path, spec: Any, code: int, fragment: str) -> None:
    run = _bad(tmp_path, spec)
    assert run.returncode == code, run.result
    assert run.result["reason"] == (
        "InvalidSpec" if code == ExitCode.INVALID_SPEC else "InvalidData"
    )
    assert fragment in run.result["message"]


@pytest.mark.parametrize(
    ("content", "target", "fragment"),
    [
        (None, "y", "does not exist"),
        ("", "y", "empty"),
        ("a,y\n", "y", "empty"),
        ("a,b\n1,2\n3,4\n", "y", "'y'"),
        ("a,y\n1,0\n2,1\n3,0\n", "y", "too few"),
    ],
    ids=["missing-file", "empty-file", "header-only", "missing-target", "too-few-rows"],
)
def test_bad_files(tmp_path: Path, content: str | None, target: str, fragment: str) -> None:
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    spec = {
        "dataset": {"uri": f"file://{path}", "target": target},
        "model": {"estimator": "LogisticRegression"},
        "validation": {"cvFolds": 0},
    }
    run = _bad(tmp_path / "run", spec)
    assert run.returncode == ExitCode.INVALID_DATA, run.result
    assert fragment in run.result["message"]


def test_no_spec_at_all(tmp_path: Path) -> None:
    run = _bad(tmp_path, "")
    assert run.returncode == ExitCode.INVALID_SPEC
    assert "MODELYARD_TRAINING_SPEC" in run.result["message"]


def test_too_few_rows_for_the_folds(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(12)))
    spec = {
        "dataset": {"uri": f"file://{path}", "target": "y"},
        "model": {"estimator": "LogisticRegression"},
        "validation": {"cvFolds": 5},
    }
    run = _bad(tmp_path / "run", spec)
    assert run.returncode == ExitCode.INVALID_DATA, run.result
    assert "CV folds" in run.result["message"]


def test_high_cardinality_category_with_a_dense_only_estimator(tmp_path: Path) -> None:
    """One-hot output stays dense, which GaussianNB and HistGradientBoosting require."""
    rng = np.random.default_rng(0)
    rows = 300
    path = tmp_path / "wide.csv"
    pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "code": [f"c{i}" for i in rng.integers(0, 120, rows)],
            "y": rng.integers(0, 2, rows),
        }
    ).to_csv(path, index=False)
    spec = {
        "dataset": {"uri": f"file://{path}", "target": "y"},
        "model": {"estimator": "GaussianNB"},
        "validation": {"cvFolds": 2},
    }
    run = run_trainer(spec, tmp_path / "run")
    assert run.returncode == 0, run.result
    check_artifact(run)
