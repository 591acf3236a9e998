"""The drift window: a ring buffer of the most recent input rows and the model's outputs on
them, for the drift monitor.

Preallocated once (``size`` rows): an append copies the request's rows into place (O(rows),
no allocation), under a lock held only for that copy, never across a predict. A snapshot
copies the buffer out oldest-first and leaves out rows older than ``max_age_seconds``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Snapshot:
    rows: np.ndarray  # (n, features), oldest first
    predictions: np.ndarray  # (n,)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def to_json(self) -> dict[str, Any]:
        """Rows and predictions as JSON values (NaN -> None)."""
        return {
            "samples": len(self),
            "rows": _jsonable(self.rows),
            "predictions": _jsonable(self.predictions),
        }


def _jsonable(values: np.ndarray) -> list[Any]:
    listed: list[Any] = values.tolist()
    if values.dtype.kind in "iub" or (values.dtype.kind == "f" and np.isfinite(values).all()):
        return listed
    return [_clean(v) for v in listed]


def _clean(value: Any) -> Any:
    """NumPy scalars to Python, NaN to None (JSON has no NaN), through nested lists."""
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


class DriftWindow:
    def __init__(
        self,
        size: int,
        n_features: int,
        max_age_seconds: float,
        row_dtype: np.dtype[Any] | type,
        prediction_dtype: np.dtype[Any] | type,
        clock: Any = time.monotonic,
    ) -> None:
        self.size = size
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._rows = np.empty((size, n_features), dtype=row_dtype)
        self._predictions = np.empty(size, dtype=prediction_dtype)
        self._stamps = np.full(size, -np.inf)
        self._next = 0  # where the next row goes
        self._count = 0  # rows held (at most size)
        self._lock = threading.Lock()

    def append(self, rows: np.ndarray, predictions: np.ndarray) -> None:
        """Keep ``rows`` and their ``predictions`` (the last ``size`` of them, if more)."""
        n = rows.shape[0]
        if n > self.size:
            rows, predictions, n = rows[-self.size :], predictions[-self.size :], self.size
        now = self._clock()
        with self._lock:
            start = self._next
            first = min(n, self.size - start)  # up to the end of the buffer, then wrap
            self._rows[start : start + first] = rows[:first]
            self._predictions[start : start + first] = predictions[:first]
            self._stamps[start : start + first] = now
            if first < n:
                self._rows[: n - first] = rows[first:]
                self._predictions[: n - first] = predictions[first:]
                self._stamps[: n - first] = now
            self._next = (start + n) % self.size
            self._count = min(self.size, self._count + n)

    def __len__(self) -> int:
        return self._count

    def snapshot(self) -> Snapshot:
        with self._lock:
            if self._count < self.size:
                order = np.arange(self._count)
            else:
                order = (np.arange(self.size) + self._next) % self.size
            rows, predictions, stamps = (
                self._rows[order],
                self._predictions[order],
                self._stamps[order],
            )
        fresh = stamps >= self._clock() - self.max_age_seconds
        if not fresh.all():
            rows, predictions = rows[fresh], predictions[fresh]
        return Snapshot(rows, predictions)
