"""The server under uvicorn as a real process, over real HTTP: every V2 endpoint, a battery of
bad requests (each followed by a good one), metrics, and refusals to start."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from runtime_support import (
    Server,
    TrainerRun,
    run_trainer,
    serving,
)
from v2_requests import (
    BAD_REQUESTS,
    MAX_BODY_BYTES,
    ROWS,
    BadRequest,
    assert_good_request,
    assert_refused_then_serving,
    infer_body,
)

pytestmark = pytest.mark.runtime


def test_health_and_server_metadata(iris_server: Server) -> None:
    live = httpx.get(f"{iris_server.url}/v2/health/live")
    assert (live.status_code, live.json()) == (200, {"live": True})
    ready = httpx.get(f"{iris_server.url}/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    meta = httpx.get(f"{iris_server.url}/v2").json()
    assert meta["name"] == "modelyard" and meta["extensions"] == [] and meta["version"]


def test_model_metadata_and_readiness(iris_server: Server, iris_run: TrainerRun) -> None:
    version = iris_run.result["model"]["version"]
    for path in ("/v2/models/iris", f"/v2/models/iris/versions/{version}"):
        meta = httpx.get(iris_server.url + path).json()
        assert meta["name"] == "iris" and meta["versions"] == [version]
        # Auto: the compiled copy, measured ~50x faster than the pipeline at training.
        assert iris_run.result["model"]["autoRuntime"] == "onnx"
        assert meta["platform"] == "onnxruntime_onnx" and meta["parameters"]["runtime"] == "onnx"
        assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
        assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
        assert meta["outputs"][1]["shape"] == [-1, 3]
    for path in ("/v2/models/iris/ready", f"/v2/models/iris/versions/{version}/ready"):
        response = httpx.get(iris_server.url + path)
        assert response.status_code == 200 and response.json()["ready"] is True
    for path in (
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/iris/versions/v0",
        "/v2/models/iris/versions/v0/ready",
    ):
        response = httpx.get(iris_server.url + path)
        assert response.status_code == 404 and "error" in response.json()


def test_predict_and_probabilities(iris_server: Server, iris_run: TrainerRun) -> None:
    version = iris_run.result["model"]["version"]
    for path in ("/v2/models/iris/infer", f"/v2/models/iris/versions/{version}/infer"):
        response = httpx.post(
            iris_server.url + path,
            json=infer_body(id="req-42", outputs=[{"name": "predict"}, {"name": "predict_proba"}]),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == "req-42"
        assert body["model_name"] == "iris" and body["model_version"] == version
        predict, proba = body["outputs"]
        assert predict == {"name": "predict", "shape": [3], "datatype": "INT64", "data": [0, 2, 1]}
        assert proba["name"] == "predict_proba" and proba["shape"] == [3, 3]
        assert proba["datatype"] == "FP64"
        matrix = np.asarray(proba["data"]).reshape(3, 3)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
        assert matrix.argmax(axis=1).tolist() == [0, 2, 1]


def test_one_input_per_feature_column(iris_server: Server, iris_run: TrainerRun) -> None:
    names = [f["name"] for f in iris_run.metadata()["features"]]
    columns = list(zip(*ROWS, strict=True))
    body = {
        "inputs": [
            {"name": n, "shape": [3], "datatype": "FP64", "data": list(c)}
            for n, c in zip(names, columns, strict=True)
        ]
    }
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [0, 2, 1]


def test_no_content_type_and_extra_parameters(iris_server: Server) -> None:
    body = infer_body(
        parameters={"binary_data_output": False, "custom": 1},
        outputs=[{"name": "predict", "parameters": {"binary_data": False}}],
    )
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer", content=json.dumps(body).encode()
    )
    assert "content-type" not in response.request.headers
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=[b.case for b in BAD_REQUESTS])
def test_bad_request_then_good_request(iris_server: Server, bad: BadRequest) -> None:
    assert_refused_then_serving(iris_server.url, bad)
    assert iris_server.process.poll() is None


def test_oversized_streamed_body_without_content_length(iris_server: Server) -> None:
    def chunks():  # a chunked upload: only the streamed size can be checked
        yield b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":['
        for _ in range(MAX_BODY_BYTES // 1000 + 10):
            yield b"1.0," * 250
        yield b"1.0]}]}"

    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", content=chunks())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert "error" in response.json()
    assert_good_request(iris_server.url)


def test_get_on_infer_and_unknown_routes(iris_server: Server) -> None:
    response = httpx.get(f"{iris_server.url}/v2/models/iris/infer")
    assert response.status_code == 405 and "error" in response.json()
    response = httpx.get(f"{iris_server.url}/v3/whatever")
    assert response.status_code == 404 and "error" in response.json()


def test_prometheus_metrics(iris_server: Server, iris_run: TrainerRun) -> None:
    assert_good_request(iris_server.url)
    httpx.post(f"{iris_server.url}/v2/models/iris/infer", content=b"{")
    text = httpx.get(f"{iris_server.url}/metrics").text
    version = iris_run.result["model"]["version"]
    labels = f'model="iris",outcome="ok",version="{version}"'
    assert f"modelyard_inference_requests_total{{{labels}}}" in text
    assert 'outcome="bad_request"' in text
    assert "modelyard_inference_latency_seconds_bucket" in text
    assert f'modelyard_predictions_total{{class="2",model="iris",version="{version}"}}' in text


def test_mixed_features_model_by_columns(tmp_path: Path) -> None:
    """A model with categorical and boolean features: BYTES and BOOL columns."""
    rng = np.random.default_rng(1)
    rows = 90
    city = rng.choice(["oslo", "rome"], rows)
    frame = pd.DataFrame(
        {
            "size": rng.uniform(10, 100, rows),
            "city": city,
            "garden": rng.choice([True, False], rows),
            "label": np.where(city == "rome", "south", "north"),
        }
    )
    csv = tmp_path / "d.csv"
    frame.to_csv(csv, index=False)
    run = run_trainer(
        {
            "dataset": {"uri": f"file://{csv}", "target": "label"},
            "model": {
                "estimator": "RandomForestClassifier",
                "hyperparameters": {"n_estimators": 10},
            },
            "validation": {"cvFolds": 0},
        },
        tmp_path / "train",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    with serving(run.model_dir, tmp_path / "server.log", name="houses") as server:
        meta = httpx.get(f"{server.url}/v2/models/houses").json()
        assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
            "size": "FP64",
            "city": "BYTES",
            "garden": "BOOL",
        }
        body = {
            "inputs": [
                {"name": "size", "shape": [2], "datatype": "FP64", "data": [20.0, 80.0]},
                {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["rome", "oslo"]},
                {"name": "garden", "shape": [2], "datatype": "BOOL", "data": [True, False]},
            ],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        }
        response = httpx.post(f"{server.url}/v2/models/houses/infer", json=body)
        assert response.status_code == 200, response.text
        predict = response.json()["outputs"][0]
        assert predict["datatype"] == "BYTES" and predict["data"] == ["south", "north"]
        matrix = {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 3],
                    "datatype": "BYTES",
                    "data": [["50", "oslo", "false"]],
                }
            ]
        }
        response = httpx.post(f"{server.url}/v2/models/houses/infer", json=matrix)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == ["north"]
        # An unseen category is ignored by the encoder rather than refused.
        body["inputs"][1]["data"] = ["paris", "oslo"]
        assert httpx.post(f"{server.url}/v2/models/houses/infer", json=body).status_code == 200
        numeric = {
            "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]
        }
        response = httpx.post(f"{server.url}/v2/models/houses/infer", json=numeric)
        assert response.status_code == 400 and "BYTES" in response.json()["error"]


def test_sigterm_stops_the_server_cleanly(iris_run: TrainerRun, tmp_path: Path) -> None:
    with serving(iris_run.model_dir, tmp_path / "server.log") as server:
        assert_good_request(server.url)
        server.process.terminate()
        # uvicorn drains, runs the lifespan shutdown, then re-raises the signal it caught.
        assert server.process.wait(timeout=30) in (0, -15)
        assert "shutting down" in server.log()
        assert "Finished server process" in server.log()
