"""Opportunistic batching without HTTP: concurrent callers of one Batcher on a real event loop.
Each caller gets exactly its own rows' answers, in order, with its own outputs; a request the
model fails on fails alone; an idle server predicts at once; Off never merges."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from modelyard_runtime.serve.batching import Batcher, BatchingConfig
from modelyard_runtime.serve.codec import InferRequest
from modelyard_runtime.serve.dataplane import Dataplane
from modelyard_runtime.serve.errors import Code, V2Error
from modelyard_runtime.serve.metrics import ServerMetrics
from modelyard_runtime.serve.model import PREDICT, PREDICT_PROBA, PredictCost
from test_runtime_dataplane import loaded

POISON = 666.0


class Echo:
    """Predicts each row's first value (so every answer names its row), fails on POISON,
    and records the size of each call."""

    classes_ = np.array([0, 1])

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(x.shape[0])
        if (x == POISON).any():
            raise ValueError("poisoned row")
        return x[:, 0].astype(np.int64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([x[:, 1], 1 - x[:, 1]])


def setup(
    config: BatchingConfig, seconds_per_call: float = 0.01
) -> tuple[Batcher, Dataplane, Echo, Any]:
    """A batcher on the Echo model; by default a slow one, whose predicts run in a thread
    (the case where requests queue), ``seconds_per_call=1e-6`` a fast one (inline)."""
    echo = Echo()
    dataplane = Dataplane(ServerMetrics(), max_inflight=1000)
    served = dataplane.install(loaded(echo), PredictCost(seconds_per_call, 1e-6))
    batcher = Batcher(dataplane, config)
    batcher.install(served)
    return batcher, dataplane, echo, served


def request(first: int, rows: int, outputs: tuple[str, ...] = (PREDICT,)) -> InferRequest:
    x = np.array([[first + i, (first + i) / 1000] for i in range(rows)], dtype=np.float64)
    return InferRequest(id=f"r{first}", x=x, outputs=outputs)


async def concurrently(
    batcher: Batcher, dataplane: Dataplane, served: Any, requests: list[InferRequest]
) -> list[Any]:
    async def call(r: InferRequest) -> Any:
        try:
            return await batcher.infer(served, r)
        except V2Error as error:
            return error

    return await asyncio.gather(*(call(r) for r in requests))


def test_each_caller_gets_its_own_rows_in_order() -> None:
    batcher, dataplane, echo, served = setup(BatchingConfig(max_batch_rows=64))
    outputs = [(PREDICT,), (PREDICT_PROBA,), (PREDICT_PROBA, PREDICT)]
    requests = [request(1000 * i, 1 + i % 5, outputs[i % 3]) for i in range(40)]
    answers = asyncio.run(concurrently(batcher, dataplane, served, requests))
    for r, answer in zip(requests, answers, strict=True):
        assert list(answer) == list(r.outputs), "its own outputs, in the order asked"
        rows = r.x.shape[0]
        if PREDICT in answer:
            assert answer[PREDICT].tolist() == r.x[:, 0].astype(int).tolist()
        if PREDICT_PROBA in answer:
            assert answer[PREDICT_PROBA].shape == (rows, 2)
            assert answer[PREDICT_PROBA][:, 0].tolist() == r.x[:, 1].tolist()
    assert len(echo.calls) < len(requests), "requests were merged"
    assert max(echo.calls) <= 64
    labels = {"model": "iris", "version": "v1"}
    registry = dataplane.metrics.registry
    sample = registry.get_sample_value
    assert sample("modelyard_inference_batch_requests_count", labels) < len(requests)
    assert sample("modelyard_inference_batch_requests_sum", labels) == len(requests)


def test_a_failing_request_fails_alone() -> None:
    batcher, dataplane, _, served = setup(BatchingConfig())
    requests = [request(10 * i, 3) for i in range(12)]
    poisoned = 5
    requests[poisoned].x[1, 0] = POISON
    answers = asyncio.run(concurrently(batcher, dataplane, served, requests))
    for i, (r, answer) in enumerate(zip(requests, answers, strict=True)):
        if i == poisoned:
            assert isinstance(answer, V2Error) and answer.code == Code.INTERNAL
            assert "poisoned row" in answer.message
        else:
            assert answer[PREDICT].tolist() == r.x[:, 0].astype(int).tolist()


def test_an_idle_server_predicts_at_once_and_off_never_merges() -> None:
    batcher, dataplane, echo, served = setup(BatchingConfig(), 1e-6)
    one = request(7, 2)
    answer = asyncio.run(batcher.infer(served, one))  # nothing else in flight: no queue
    assert answer[PREDICT].tolist() == [7, 8] and not batcher._queue

    batcher, dataplane, echo, served = setup(BatchingConfig(mode="Off"))
    requests = [request(10 * i, 2) for i in range(10)]
    asyncio.run(concurrently(batcher, dataplane, served, requests))
    assert echo.calls == [2] * 10


def test_a_batch_is_bounded_in_rows_but_takes_one_large_request_whole() -> None:
    batcher, dataplane, echo, served = setup(BatchingConfig(max_batch_rows=8))
    requests = [request(100 * i, n) for i, n in enumerate([3, 3, 3, 20, 1, 1])]
    answers = asyncio.run(concurrently(batcher, dataplane, served, requests))
    assert all(not isinstance(a, V2Error) for a in answers)
    assert max(echo.calls) == 20 and all(c <= 8 for c in echo.calls if c != 20)


@pytest.mark.parametrize(("delay", "calls"), [(0.0, [1, 1]), (0.05, [2])])
def test_a_window_waits_for_company(delay: float, calls: list[int]) -> None:
    """maxDelayMicroseconds: a request waits that long for others to join; 0 never waits."""
    batcher, _, echo, served = setup(BatchingConfig(max_delay_seconds=delay), 1e-6)

    async def staggered() -> list[Any]:
        first = asyncio.ensure_future(batcher.infer(served, request(1, 1)))
        await asyncio.sleep(0.005)
        second = asyncio.ensure_future(batcher.infer(served, request(2, 1)))
        return list(await asyncio.gather(first, second))

    answers = asyncio.run(staggered())
    assert [a[PREDICT].tolist() for a in answers] == [[1], [2]]
    assert echo.calls == calls
