"""A third-party V2 client (Triton's HTTP client) works unchanged against the server."""

from __future__ import annotations

import os

import numpy as np
import pytest
from runtime_support import Server, TrainerRun

pytestmark = pytest.mark.runtime

try:
    import tritonclient.http as httpclient
except ImportError:  # pragma: no cover - depends on the dev environment
    if os.environ.get("CI", "").lower() == "true":
        raise ImportError(
            "tritonclient[http] is missing: it belongs to the dev extra, and "
            "CI must run this test, not skip it"
        ) from None
    pytest.skip("tritonclient[http] is not installed (dev extra)", allow_module_level=True)


@pytest.fixture
def client(iris_server: Server):
    client = httpclient.InferenceServerClient(iris_server.url.removeprefix("http://"))
    yield client
    client.close()


def test_health_and_metadata(client, iris_run: TrainerRun) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert not client.is_model_ready("roses")
    metadata = client.get_model_metadata("iris")
    assert metadata["versions"] == [iris_run.result["model"]["version"]]
    assert client.get_server_metadata()["name"] == "modelyard"


@pytest.mark.parametrize("binary", [True, False], ids=["binary-tensors", "json-tensors"])
def test_infer(client, binary: bool) -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
    tensor = httpclient.InferInput("input-0", list(rows.shape), "FP64")  # what metadata says
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=binary),
        httpclient.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = client.infer("iris", [tensor], outputs=outputs, request_id="t-1")
    assert result.as_numpy("predict").tolist() == [0, 2]
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert result.get_response()["id"] == "t-1"


def test_a_datatype_the_model_does_not_declare_is_refused(client) -> None:
    tensor = httpclient.InferInput("input-0", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 4), dtype=np.float32), binary_data=True)
    with pytest.raises(httpclient.InferenceServerException, match="datatype FP32, but"):
        client.infer("iris", [tensor])


def test_errors_surface_as_exceptions(client) -> None:
    tensor = httpclient.InferInput("input-0", [1, 3], "FP64")
    tensor.set_data_from_numpy(np.zeros((1, 3)), binary_data=False)
    with pytest.raises(httpclient.InferenceServerException, match=r"\[batch, 4\]"):
        client.infer("iris", [tensor])
