"""Requests to an iris V2 server, shared by the runtime tier (a local process) and the image
tier (the built image in Docker): one table of bad bodies, each followed by a good request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

INFER = "/v2/models/iris/infer"
# The servers under test run with this body limit (MODELYARD_MAX_BODY_BYTES): room for a
# nesting bomb that is deep enough to crash a parser without a depth limit.
MAX_BODY_BYTES = 4 * 1024 * 1024
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
ROWS_CLASSES = [0, 2, 1]  # setosa, virginica, versicolor


def infer_body(rows: list[list[float]] = ROWS, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(rows), 4],
                "datatype": "FP64",
                "data": [v for row in rows for v in row],
            }
        ],
        **extra,
    }


def _tensor(shape: list[int], datatype: str, data: Any, **extra: Any) -> bytes:
    body = {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}
    return json.dumps({**body, **extra}).encode()


_BOMB = b"[" * 1_000_000 + b"]" * 1_000_000


@dataclass(frozen=True)
class BadRequest:
    case: str
    body: bytes
    status: int
    path: str = INFER


BAD_REQUESTS: list[BadRequest] = [
    BadRequest("wrong-shape", _tensor([1, 3], "FP64", [1, 2, 3]), 400),
    BadRequest("count-mismatch", _tensor([2, 4], "FP64", [1, 2, 3, 4]), 400),
    BadRequest("zero-rows", _tensor([0, 4], "FP64", []), 400),
    BadRequest("zero-rows-by-column", _tensor([0], "FP64", []), 400),
    BadRequest("wrong-datatype", _tensor([1, 4], "FP64", ["a", "b", "c", "d"]), 400),
    BadRequest("unknown-datatype", _tensor([1, 4], "FP128", [1, 2, 3, 4]), 400),
    BadRequest("int-with-floats", _tensor([1, 4], "INT32", [1.5, 2, 3, 4]), 400),
    BadRequest("undeclared-datatype", _tensor([1, 4], "FP32", [1, 2, 3, 4]), 400),
    BadRequest("booleans-for-fp64", _tensor([1, 4], "FP64", [True, False, True, True]), 400),
    BadRequest(
        "nan", b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[NaN,1,2,3]}]}', 400
    ),
    BadRequest("null", _tensor([1, 4], "FP64", [None, 1, 2, 3]), 400),
    BadRequest(
        "unknown-output", _tensor([1, 4], "FP64", [1, 2, 3, 4], outputs=[{"name": "logits"}]), 400
    ),
    BadRequest("malformed-json", b'{"inputs": [', 400),
    BadRequest("not-an-object", b"[1, 2, 3]", 400),
    BadRequest("empty-body", b"", 400),
    # 2 MB of nesting: orjson < 3.9.15 overflows the C stack on it (SIGSEGV, no answer).
    BadRequest("nesting-bomb", _BOMB, 400),
    BadRequest("nesting-bomb-in-an-object", b'{"inputs": ' + _BOMB + b"}", 400),
    BadRequest("unknown-model", json.dumps(infer_body()).encode(), 404, "/v2/models/roses/infer"),
    BadRequest(
        "unknown-version",
        json.dumps(infer_body()).encode(),
        404,
        "/v2/models/iris/versions/v999/infer",
    ),
    BadRequest("oversized", _tensor([1, 4], "FP64", [1.0] * (MAX_BODY_BYTES // 4)), 413),
]


def assert_good_request(url: str) -> None:
    response = httpx.post(f"{url}{INFER}", json=infer_body(), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == ROWS_CLASSES


def assert_refused_then_serving(url: str, bad: BadRequest) -> None:
    """``bad`` gets its status and a ``{"error": ...}`` body, and the server goes on serving."""
    response = httpx.post(
        url + bad.path,
        content=bad.body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == bad.status, (bad.case, response.text[:500])
    assert set(response.json()) == {"error"} and response.json()["error"]
    assert_good_request(url)
