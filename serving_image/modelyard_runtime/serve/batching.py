"""Opportunistic batching: inference requests that queue while the model is busy are merged into
its next predict call, as Triton's dynamic batcher does with no queue delay (its default).

An idle server never waits: a request that finds no predict running is predicted at once, as
without batching (a small predict runs inline, so a fast model is never batched: there is no
waiting to save). A request that comes while a predict runs (in a worker thread: a slow model or
a large batch) queues; when the predict ends, one drain task merges what queued, up to
``max_batch_rows`` rows, into the next predict, and hands each caller its own rows. With
``max_delay_seconds`` a request that finds the server idle waits that long for company. Requests
are decoded and checked before they queue, so a bad request never enters a batch; a merged
predict that fails is retried request by request, so that a failure stays with the request that
caused it. Each future is resolved from its own request's offsets in the merged result, whose
row count is checked: a caller gets its rows or an error, never another caller's rows or an
empty answer.

A predict that costs more than ``INLINE_PREDICT_SECONDS`` (by the warm-up's timing) runs in a
worker thread, so that probes and small requests are not stuck behind it on the event
loop; smaller ones run inline, which is faster than any thread hop. Transport-free: the ASGI
fast path awaits ``infer``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Literal

import anyio
import numpy as np

from modelyard_runtime.contract import DEFAULT_MAX_BATCH_SIZE
from modelyard_runtime.serve import codec
from modelyard_runtime.serve.dataplane import Dataplane, Served
from modelyard_runtime.serve.model import PredictCost

BatchingMode = Literal["Off", "Opportunistic"]
INLINE_PREDICT_SECONDS = 0.001
INLINE_ROWS_LIMIT = 512


@dataclass(frozen=True)
class BatchingConfig:
    mode: BatchingMode = "Opportunistic"
    max_batch_rows: int = DEFAULT_MAX_BATCH_SIZE
    max_delay_seconds: float = 0.0


@dataclass
class _Queued:
    served: Served
    request: codec.InferRequest
    future: asyncio.Future[dict[str, np.ndarray]]

    @property
    def rows(self) -> int:
        return int(self.request.x.shape[0])


def inline_rows(cost: PredictCost) -> int:
    """The most rows a predict runs inline on the event loop: 0 for a model whose every call
    costs more than INLINE_PREDICT_SECONDS (a forest in scikit-learn), which then always runs
    in a thread, and so batches under load."""
    room = INLINE_PREDICT_SECONDS - cost.per_call
    if room <= 0:
        return 0
    return min(INLINE_ROWS_LIMIT, int(room / max(cost.per_row, 1e-9)))


class Batcher:
    """Event-loop state only: ``infer`` and the drain task run on the loop."""

    def __init__(self, dataplane: Dataplane, config: BatchingConfig) -> None:
        self.dataplane = dataplane
        self.config = config
        self.inline_rows = INLINE_ROWS_LIMIT  # set from the warm-up's timing (``install``)
        self._queue: deque[_Queued] = deque()
        self._busy = False  # a predict is running (or a drain task is on its way)
        self._drainer: asyncio.Task[None] | None = None  # held: the loop keeps tasks weakly

    def install(self, served: Served) -> None:
        self.inline_rows = inline_rows(served.cost)

    async def infer(self, served: Served, request: codec.InferRequest) -> dict[str, np.ndarray]:
        """The requested outputs for ``request``; ``V2Error`` for what failed it."""
        if self.config.mode == "Off":
            (answer,) = await self._merged(served, [request])
            return answer
        if not self._busy and not self._queue and self.config.max_delay_seconds == 0:
            self._busy = True  # idle: predict at once; who comes meanwhile queues
            try:
                (answer,) = await self._merged(served, [request])
                return answer
            finally:
                self._busy = False
                self._start_draining()
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(served, request, future))
        self._start_draining()
        return await future

    def _start_draining(self) -> None:
        if self._queue and not self._busy:
            self._busy = True
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            if self.config.max_delay_seconds:  # the window: others may join the first
                await asyncio.sleep(self.config.max_delay_seconds)
            while self._queue:  # what queued while the last batch ran is the next batch
                batch = self._take()
                if batch:
                    await self._run(batch)
        finally:
            self._busy = False

    def _take(self) -> list[_Queued]:
        """The oldest waiting requests of one model, up to ``max_batch_rows`` rows (at least
        one request, however large); callers who went away are dropped."""
        batch: list[_Queued] = []
        rows = 0
        while self._queue:
            head = self._queue[0]
            if head.future.done():  # cancelled: the client disconnected
                self._queue.popleft()
                continue
            full = rows + head.rows > self.config.max_batch_rows
            if batch and (head.served is not batch[0].served or full):
                break
            batch.append(self._queue.popleft())
            rows += head.rows
        return batch

    async def _run(self, batch: list[_Queued]) -> None:
        served = batch[0].served
        try:
            answers = await self._merged(served, [q.request for q in batch])
        except Exception:
            # One of them (or the merge) failed: each on its own, so a failure stays its own.
            for queued in batch:
                try:
                    (answer,) = await self._merged(served, [queued.request])
                except Exception as error:
                    _resolve(queued.future, error=error)
                else:
                    _resolve(queued.future, answer)
            return
        for queued, answer in zip(batch, answers, strict=True):
            _resolve(queued.future, answer)

    async def _merged(
        self, served: Served, requests: list[codec.InferRequest]
    ) -> list[dict[str, np.ndarray]]:
        rows = sum(int(r.x.shape[0]) for r in requests)
        if rows > self.inline_rows:
            return await anyio.to_thread.run_sync(self.dataplane.infer_batch, served, requests)
        return self.dataplane.infer_batch(served, requests)


def _resolve(
    future: asyncio.Future[dict[str, np.ndarray]],
    answer: dict[str, np.ndarray] | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the caller went away
        return
    if error is not None:
        future.set_exception(error)
    elif answer is not None:
        future.set_result(answer)
