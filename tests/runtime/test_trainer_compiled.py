"""The compiled runtime, with the trainer as a real process on real data: a pipeline that
converts with parity is stored as model.onnx beside model.skops, its sha256 in metadata.json
(covered by the artifact digest), and ONNX Runtime gives the stored model's answers (forests
too, through onnx_trees' double-precision TreeEnsemble); one that converts with a mismatch
(distance-weighted neighbours: the graph divides by a zero distance where a holdout row equals
a training row, which scikit-learn special-cases) or does not convert at all (a histogram
gradient boosting model) has no ONNX runtime, the reason recorded, and trains as before. Both
runtimes are timed either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import skops.io
from modelyard_runtime.contract import ONNX_FILE, ModelMetadata, sha256_of
from modelyard_runtime.serve.trusted import SERVER_TRUSTED_TYPES
from runtime_support import TrainerRun, run_trainer

pytestmark = pytest.mark.runtime


def train(tmp_path: Path, dataset: str, estimator: str, **hyper: object) -> TrainerRun:
    spec = {
        "dataset": {"builtin": dataset},
        "model": {"estimator": estimator, "hyperparameters": hyper},
        "validation": {"cvFolds": 0},
        "seed": 3,
    }
    run = run_trainer(spec, tmp_path)
    assert run.result["reason"] == "Succeeded", run.stderr[-3000:]
    return run


def test_a_linear_pipeline_compiles_with_parity(tmp_path: Path) -> None:
    run = train(tmp_path, "iris", "LogisticRegression", max_iter=500)
    metadata = ModelMetadata.model_validate(run.metadata())
    runtimes = metadata.runtimes
    assert runtimes is not None and runtimes.onnx.available, runtimes
    onnx = runtimes.onnx
    assert onnx.precision == "double" and onnx.parity is not None
    assert onnx.parity.label_agreement == 1.0 and onnx.parity.rows == 30
    assert onnx.parity.max_proba_diff is not None and onnx.parity.max_proba_diff <= 1e-6
    onnx_path = run.model_dir / ONNX_FILE
    assert sha256_of(onnx_path) == onnx.sha256, "metadata.json pins the ONNX file"
    assert sha256_of(run.model_dir / "metadata.json") == run.result["model"]["sha256"]
    for timing in (runtimes.sklearn, onnx.timing):
        assert timing is not None and set(timing.p50_us) == {"batch1", "batch32"}
        assert all(v > 0 for v in timing.p50_us.values())

    # ONNX Runtime answers as the stored scikit-learn pipeline does, on the reference sample.
    pipeline = skops.io.load(run.model_dir / "model.skops", trusted=SERVER_TRUSTED_TYPES)
    x = np.array(metadata.reference_sample, dtype=np.float64)
    x[::5, 1] = np.nan  # and where the imputer fills in
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {session.get_inputs()[0].name: x})
    assert (labels == pipeline.predict(x)).all()
    assert np.abs(probabilities - pipeline.predict_proba(x)).max() <= 1e-6


def test_a_regressor_compiles_with_parity(tmp_path: Path) -> None:
    run = train(tmp_path, "diabetes", "Ridge")
    onnx = ModelMetadata.model_validate(run.metadata()).runtimes.onnx  # type: ignore[union-attr]
    assert onnx.available and onnx.parity is not None
    assert onnx.parity.max_relative_diff is not None and onnx.parity.max_relative_diff <= 1e-6
    assert (run.model_dir / ONNX_FILE).is_file()


def test_forests_compile_with_exact_parity(tmp_path: Path) -> None:
    forest = train(tmp_path / "rf", "iris", "RandomForestClassifier", n_estimators=50)
    onnx = ModelMetadata.model_validate(forest.metadata()).runtimes.onnx  # type: ignore[union-attr]
    assert onnx.available and onnx.parity is not None, onnx.reason
    assert onnx.parity.label_agreement == 1.0 and onnx.parity.max_proba_diff == 0.0
    assert onnx.opset == {"": 18, "ai.onnx.ml": 5}  # TreeEnsemble
    assert forest.result["model"]["autoRuntime"] == "onnx"

    regressor = train(tmp_path / "rfr", "diabetes", "RandomForestRegressor", n_estimators=10)
    onnx = ModelMetadata.model_validate(regressor.metadata()).runtimes.onnx  # type: ignore[union-attr]
    assert onnx.available and onnx.parity is not None and onnx.parity.max_relative_diff == 0.0


def test_a_mismatch_or_a_failed_conversion_means_no_onnx_never_an_error(tmp_path: Path) -> None:
    neighbours = train(tmp_path / "knn", "iris", "KNeighborsClassifier", weights="distance")
    onnx = ModelMetadata.model_validate(neighbours.metadata()).runtimes.onnx  # type: ignore[union-attr]
    assert not onnx.available and onnx.sha256 is None
    assert onnx.reason and " differ " in onnx.reason, onnx.reason
    assert onnx.parity is not None  # what was measured stays on record
    assert not (neighbours.model_dir / ONNX_FILE).exists()
    model = neighbours.result["model"]
    assert (model["autoRuntime"], model["onnx"]) == ("sklearn", False)

    boosted = train(tmp_path / "hgb", "iris", "HistGradientBoostingClassifier", max_iter=10)
    onnx = ModelMetadata.model_validate(boosted.metadata()).runtimes.onnx  # type: ignore[union-attr]
    assert not onnx.available and onnx.reason and onnx.reason.startswith("does not convert")
    assert not (boosted.model_dir / ONNX_FILE).exists()
