"""The drift window of a real server over real HTTP: every answered row is kept once, in
step with its prediction, under concurrent requests; the window stays bounded; the endpoint's
JSON, its refusals and its Prometheus gauges."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from modelyard_runtime.contract import ENV_DRIFT_MAX_AGE_SECONDS, ENV_DRIFT_WINDOW
from runtime_support import Server, TrainerRun, serving
from v2_requests import INFER, infer_body

pytestmark = pytest.mark.runtime

WINDOW = 400
DRIFT = "/v2/models/iris/drift"
THREADS, REQUESTS, ROWS_PER_REQUEST = 8, 20, 2  # 320 rows: all fit in the window


@pytest.fixture(scope="module")
def server(iris_run: TrainerRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("drift") / "server.log"
    env = {ENV_DRIFT_WINDOW: str(WINDOW), ENV_DRIFT_MAX_AGE_SECONDS: "3600"}
    with serving(iris_run.model_dir, log, **env) as server:
        yield server


def marked_rows(thread: int, request: int) -> list[list[float]]:
    """Iris-like rows whose sepal width encodes (thread, request, row): each is unique."""
    return [
        [5.8, 3.0 + (thread * 1000 + request * 10 + r) / 1e5, 4.3, 1.3]
        for r in range(ROWS_PER_REQUEST)
    ]


def drift(server: Server, **query: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}{DRIFT}", params=query, timeout=30)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_concurrent_requests_keep_every_row_once_with_its_prediction(server: Server) -> None:
    assert drift(server)["window"]["samples"] == 0  # the warm-up is not traffic
    errors: list[str] = []

    def send(thread: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for request in range(REQUESTS):
                answer = client.post(INFER, json=infer_body(marked_rows(thread, request)))
                if answer.status_code != 200:
                    errors.append(answer.text)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    window = drift(server)["window"]
    sent = sorted(
        tuple(row) for t in range(THREADS) for r in range(REQUESTS) for row in marked_rows(t, r)
    )
    assert window["samples"] == len(sent) == THREADS * REQUESTS * ROWS_PER_REQUEST
    assert sorted(tuple(row) for row in window["rows"]) == sent  # none lost, none twice
    # Each prediction is the model's answer for its own row.
    again = httpx.post(f"{server.url}{INFER}", json=infer_body(window["rows"]), timeout=30)
    assert again.json()["outputs"][0]["data"] == window["predictions"]


def test_the_window_is_bounded_and_keeps_the_newest_rows(server: Server) -> None:
    for request in range(3):
        rows = [[6.0, 2.0 + (request * 200 + r) / 1e4, 5.0, 1.8] for r in range(200)]
        assert httpx.post(f"{server.url}{INFER}", json=infer_body(rows), timeout=30).is_success
    window = drift(server)["window"]
    assert window["samples"] == WINDOW == len(window["rows"]) == len(window["predictions"])
    assert window["rows"][-1][1] == pytest.approx(2.0 + 599 / 1e4)
    assert window["rows"][0][1] == pytest.approx(2.0 + 200 / 1e4)


def test_the_endpoint_checks_its_window_and_gives_the_reference_once_asked(
    server: Server,
) -> None:
    answer = drift(server, minSamples="10", alpha="0.01")
    assert answer["name"] == "iris" and answer["version"] == "v1"
    check = answer["check"]
    assert check["state"] == "Drifting"  # rows of two narrow clusters: far from iris
    assert [f["name"] for f in check["features"]] == [
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    ]
    assert {f["test"] for f in check["features"]} == {"KS"}
    assert check["prediction"]["test"] == "ChiSquared"
    assert "reference" not in answer
    reference = drift(server, reference="true")["reference"]
    assert reference["task"] == "classification" and len(reference["features"]) == 4
    assert 0 < len(reference["rows"]) == len(reference["predictions"]) <= 2000
    # The pod's own check is on /metrics: the window's size, and per feature the last check.
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert f'modelyard_drift_window_samples{{model="iris",version="v1"}} {WINDOW}.0' in metrics
    assert 'modelyard_drift_drifted{feature="sepal width (cm)",model="iris",version="v1"} 1.0' in (
        metrics
    )
    assert 'modelyard_drift_p_value{feature="prediction",model="iris",version="v1"}' in metrics


@pytest.mark.parametrize(
    ("path", "query", "status", "says"),
    [
        ("/v2/models/nope/drift", {}, 404, "unknown model"),
        ("/v2/models/iris/versions/v9/drift", {}, 404, "no version"),
        (DRIFT, {"alpha": "2"}, 400, "alpha"),
        (DRIFT, {"correction": "Holm"}, 400, "correction"),
    ],
)
def test_bad_drift_requests_get_a_clear_error(
    server: Server, path: str, query: dict[str, str], status: int, says: str
) -> None:
    answer = httpx.get(f"{server.url}{path}", params=query, timeout=10)
    assert answer.status_code == status and says in answer.json()["error"]


def test_without_a_window_the_endpoint_says_monitoring_is_off(iris_server: Server) -> None:
    answer = httpx.get(f"{iris_server.url}{DRIFT}", timeout=10)
    assert answer.status_code == 404
    assert "spec.monitoring.drift is not enabled" in answer.json()["error"]
    assert "modelyard_drift_window_samples{" not in httpx.get(f"{iris_server.url}/metrics").text
