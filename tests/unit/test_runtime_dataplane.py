"""The server's dataplane without HTTP: resolving model and version, metadata, readiness,
admission, inference and what is counted; every refusal code has an HTTP status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelyard_runtime.contract import (
    DatasetInfo,
    FeatureInfo,
    ModelMetadata,
    ValidationResult,
)
from modelyard_runtime.serve import app
from modelyard_runtime.serve.codec import InferRequest
from modelyard_runtime.serve.dataplane import OUTCOMES, Dataplane, Served
from modelyard_runtime.serve.errors import Code, V2Error
from modelyard_runtime.serve.metrics import OUTCOMES as METRIC_OUTCOMES
from modelyard_runtime.serve.metrics import ServerMetrics
from modelyard_runtime.serve.model import (
    PREDICT,
    PREDICT_PROBA,
    LoadedModel,
    ModelLoadError,
    PredictCost,
)

NUMERIC = [FeatureInfo(name=n, dtype="float64", kind="numeric") for n in ("a", "b")]
MIXED = [
    FeatureInfo(name="size", dtype="float64", kind="numeric"),
    FeatureInfo(name="colour", dtype="object", kind="categorical"),
    FeatureInfo(name="flag", dtype="bool", kind="numeric"),
]


class Classifier:
    """Predicts class 1 for every row; what LoadedModel needs of a pipeline."""

    classes_ = np.array([0, 1])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.ones(x.shape[0], dtype=np.int64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.tile([0.25, 0.75], (x.shape[0], 1))


class Broken(Classifier):
    def predict(self, x: np.ndarray) -> np.ndarray:
        raise RuntimeError("no luck")


def loaded(pipeline: Any = None, features: list[FeatureInfo] = NUMERIC) -> LoadedModel:
    metadata = ModelMetadata(
        model_version="v1",
        sha256="ab" * 32,
        created_at="2025-01-01T00:00:00Z",
        task="classification",
        estimator="LogisticRegression",
        sklearn_version="1.5",
        python_version="3.11",
        features=features,
        target="y",
        classes=[0, 1],
        dataset=DatasetInfo(source="builtin:iris", digest="cd" * 32, rows=10, columns=2),
        validation=ValidationResult(passed=True),
    )
    return LoadedModel(
        name="iris", metadata=metadata, pipeline=pipeline or Classifier(), digest="ef" * 32
    )


def serving(pipeline: Any = None, max_inflight: int = 2) -> tuple[Dataplane, Served]:
    dataplane = Dataplane(ServerMetrics(), max_inflight)
    return dataplane, dataplane.install(loaded(pipeline), PredictCost(1e-6, 1e-6))


def refusal(call: Any, *args: Any) -> V2Error:
    with pytest.raises(V2Error) as caught:
        call(*args)
    return caught.value


def counted(dataplane: Dataplane, outcome: str) -> float:
    value = dataplane.metrics.registry.get_sample_value(
        "modelyard_inference_requests_total",
        {"model": "iris", "version": "v1", "outcome": outcome},
    )
    return value or 0.0


def test_every_code_has_an_http_status_and_a_counted_outcome() -> None:
    assert set(app.STATUS) == set(Code)
    assert set(OUTCOMES) == set(Code)
    assert set(OUTCOMES.values()) <= set(METRIC_OUTCOMES)


def test_nothing_resolves_before_the_model_is_loaded() -> None:
    dataplane = Dataplane(ServerMetrics(), 2)
    for call, args in [
        (dataplane.resolve, ("iris", None)),
        (dataplane.model_metadata, ("iris", "v1")),
        (dataplane.model_readiness, ("iris", None)),
    ]:
        error = refusal(call, *args)
        assert (error.code, error.message) == (Code.NOT_READY, "the model is not loaded yet")
    assert not dataplane.ready
    dataplane.refused(V2Error(Code.NOT_READY, "x"))  # no series to count on yet: no error


def test_resolve_names_the_served_model_and_version() -> None:
    dataplane, served = serving()
    assert dataplane.resolve("iris", None) is served
    assert dataplane.resolve("iris", "v1") is served
    unknown = refusal(dataplane.resolve, "wine", None)
    assert unknown.code is Code.NOT_FOUND
    assert unknown.message == "unknown model 'wine'; this server serves 'iris'"
    version = refusal(dataplane.resolve, "iris", "v2")
    assert version.code is Code.NOT_FOUND
    assert version.message == "model 'iris' has no version 'v2'; it serves 'v1'"
    # The metadata and readiness routes refuse with the very same errors.
    assert refusal(dataplane.model_metadata, "iris", "v2").message == version.message
    assert refusal(dataplane.model_readiness, "wine", None).message == unknown.message


def test_readiness_follows_the_lifecycle() -> None:
    dataplane, _ = serving()
    assert dataplane.ready
    assert dataplane.model_readiness("iris", None) == {"name": "iris", "ready": True}
    dataplane.stop()
    assert dataplane.model_readiness("iris", "v1") == {
        "name": "iris",
        "version": "v1",
        "ready": False,
    }


def test_server_and_numeric_model_metadata() -> None:
    dataplane, _ = serving()
    assert dataplane.server_metadata()["name"] == "modelyard"
    metadata = dataplane.model_metadata("iris", None)
    assert metadata["versions"] == ["v1"] and metadata["platform"] == "sklearn"
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 2]}]
    assert metadata["outputs"] == [
        {"name": PREDICT, "datatype": "INT64", "shape": [-1]},
        {"name": PREDICT_PROBA, "datatype": "FP64", "shape": [-1, 2]},
    ]
    assert metadata["parameters"]["sha256"] == "ef" * 32
    assert metadata["parameters"]["classes"] == [0, 1]


def test_mixed_model_metadata_has_one_input_per_column() -> None:
    dataplane = Dataplane(ServerMetrics(), 1)
    dataplane.install(loaded(features=MIXED), PredictCost(1e-6, 1e-6))
    inputs = dataplane.model_metadata("iris", "v1")["inputs"]
    assert [(i["name"], i["datatype"], i["shape"]) for i in inputs] == [
        ("size", "FP64", [-1]),
        ("colour", "BYTES", [-1]),
        ("flag", "BOOL", [-1]),
    ]


def test_admission_refuses_beyond_max_inflight_until_released() -> None:
    dataplane, _ = serving(max_inflight=2)
    dataplane.admit()
    dataplane.admit()
    error = refusal(dataplane.admit)
    assert error.code is Code.OVERLOADED
    assert error.message == "overloaded: 2 inference requests in progress; retry later"
    dataplane.release()
    dataplane.admit()
    assert dataplane.inflight == 2


def test_admission_bounds_the_bytes_of_bodies_in_flight() -> None:
    dataplane = Dataplane(ServerMetrics(), max_inflight=100, max_inflight_bytes=1000)
    dataplane.admit(600)
    dataplane.admit(400)
    assert refusal(dataplane.admit, 1).code is Code.OVERLOADED
    dataplane.release(600)
    dataplane.admit(500)
    dataplane.release(400)
    dataplane.release(500)
    dataplane.admit(5000)  # alone, a request is always let in (its body limit applies)
    assert (dataplane.inflight, dataplane.inflight_bytes) == (1, 5000)


def test_infer_and_what_is_counted() -> None:
    dataplane, served = serving()
    request = InferRequest(id="r", x=np.zeros((3, 2)), outputs=(PREDICT,))
    results = dataplane.infer(served, request)
    assert results[PREDICT].tolist() == [1, 1, 1]
    dataplane.answered(served, results, started=0.0)
    assert counted(dataplane, "ok") == 1
    predicted = dataplane.metrics.registry.get_sample_value(
        "modelyard_predictions_total", {"model": "iris", "version": "v1", "class": "1"}
    )
    assert predicted == 3
    for code in Code:
        dataplane.refused(V2Error(code, "x"))
    assert counted(dataplane, "not_found") == 2  # unknown route/model/version, and method
    assert counted(dataplane, "overloaded") == counted(dataplane, "error") == 1


def test_a_failing_model_is_an_internal_error_naming_the_failure() -> None:
    dataplane, served = serving(Broken())
    request = InferRequest(id=None, x=np.zeros((1, 2)), outputs=(PREDICT,))
    error = refusal(dataplane.infer, served, request)
    assert error.code is Code.INTERNAL
    assert error.message == "inference failed: RuntimeError: no luck"


def test_a_refused_model_is_kept_for_the_termination_message(tmp_path: Path) -> None:
    dataplane = Dataplane(ServerMetrics(), 1)
    with pytest.raises(ModelLoadError):
        dataplane.load(str(tmp_path / "missing"), "iris", None)
    assert dataplane.failure is not None and "does not exist" in dataplane.failure
    assert dataplane.served is None and not dataplane.ready
