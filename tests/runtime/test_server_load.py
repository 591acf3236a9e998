"""The server under load: in-flight inference is bounded (503 "overloaded" beyond
MODELYARD_MAX_INFLIGHT), and health probes stay answered while big requests are decoded and
predicted (off the event loop)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from modelyard_runtime.contract import ENV_MAX_INFLIGHT
from runtime_support import Server, TrainerRun, serving
from v2_requests import INFER, assert_good_request, infer_body

pytestmark = pytest.mark.runtime

MAX_INFLIGHT = 4


@pytest.fixture(scope="module")
def server(iris_run: TrainerRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("load") / "server.log"
    # The default body limit (8 MiB): the load below is what any client may send.
    with serving(iris_run.model_dir, log, **{ENV_MAX_INFLIGHT: str(MAX_INFLIGHT)}) as server:
        yield server


def _stalled_request(url: str) -> socket.socket:
    """An inference request whose body never finishes arriving: it is admitted and stays
    in flight until the socket closes."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sock.sendall(
        f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        'Content-Length: 100000\r\n\r\n{"inputs": ['.encode()
    )
    return sock


def _wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _status_of_a_request(url: str) -> int:
    return httpx.post(f"{url}{INFER}", json=infer_body(), timeout=30).status_code


def test_over_the_in_flight_bound_is_503_and_health_still_answers(server: Server) -> None:
    stalled = [_stalled_request(server.url) for _ in range(MAX_INFLIGHT)]
    try:
        # Each is admitted once its headers are read: wait until all of them count.
        _wait_for(lambda: _status_of_a_request(server.url) == 503)
        response = httpx.post(f"{server.url}{INFER}", json=infer_body(), timeout=30)
        assert response.status_code == 503
        assert set(response.json()) == {"error"}
        assert response.json()["error"].startswith("overloaded")
        live = httpx.get(f"{server.url}/v2/health/live", timeout=5)
        assert live.status_code == 200
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
        metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert 'outcome="overloaded"' in metrics
    finally:
        for sock in stalled:
            sock.close()
    # Closed clients leave the bound: the server serves again.
    _wait_for(lambda: _status_of_a_request(server.url) == 200)
    assert_good_request(server.url)


PROBE = """
import json, os, sys, time, urllib.request
url, stop, latencies = sys.argv[1], sys.argv[2], []
while not os.path.exists(stop):
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
    latencies.append(time.monotonic() - started)
    time.sleep(0.05)
print(json.dumps(latencies))
"""


def test_health_answers_within_a_second_while_big_requests_are_in_flight(
    server: Server, tmp_path: Path
) -> None:
    rows = 95_000  # a 2 MiB body: a fifth of a second of decoding each
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [rows, 4],
                    "datatype": "FP64",
                    "data": [[5.1, 3.5, 1.4, 0.2]] * rows,
                }
            ]
        }
    ).encode()
    statuses: list[int] = []

    def post() -> None:
        response = httpx.post(f"{server.url}{INFER}", content=body, timeout=120)
        statuses.append(response.status_code)

    clients = [threading.Thread(target=post) for _ in range(4 * MAX_INFLIGHT)]
    # The probe is a process of its own: in this one, 32 sending threads share the GIL with
    # it, and a probe would time this process as much as the server (a 1.7 s outlier in CI).
    stop = tmp_path / "stop"
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, f"{server.url}/v2/health/live", str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    stop.touch()
    out, _ = probe.communicate(timeout=30)
    assert probe.returncode == 0, out
    latencies = json.loads(out)
    assert set(statuses) <= {200, 503} and 200 in statuses, statuses
    assert len(latencies) >= 3, "the load ended before it could be probed"
    assert max(latencies) < 1.0, sorted(latencies)[-5:]
    assert_good_request(server.url)
