"""The server's drift window: a ring buffer that keeps the last ``size`` rows in order, with
their predictions, and leaves out rows older than its maximum age."""

from __future__ import annotations

import numpy as np
from modelyard_runtime.serve.window import DriftWindow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def numeric_window(size: int, clock: Clock, max_age: float = 60) -> DriftWindow:
    return DriftWindow(size, 2, max_age, np.float64, np.float64, clock=clock)


def rows(start: int, n: int) -> np.ndarray:
    return np.array([[i, -i] for i in range(start, start + n)], dtype=np.float64)


def test_keeps_the_last_rows_in_order_across_the_wrap() -> None:
    window = numeric_window(5, Clock())
    for start in range(0, 12, 3):  # 12 rows in batches of 3: wraps twice
        batch = rows(start, 3)
        window.append(batch, batch[:, 0] * 10)
    snap = window.snapshot()
    assert snap.rows[:, 0].tolist() == [7, 8, 9, 10, 11] and len(window) == 5
    assert snap.predictions.tolist() == [70, 80, 90, 100, 110]


def test_a_batch_larger_than_the_window_keeps_its_tail() -> None:
    window = numeric_window(4, Clock())
    window.append(rows(0, 2), np.zeros(2))
    window.append(rows(10, 9), np.arange(9.0))
    assert window.snapshot().rows[:, 0].tolist() == [15, 16, 17, 18]


def test_rows_older_than_the_maximum_age_are_left_out() -> None:
    clock = Clock()
    window = numeric_window(10, clock, max_age=30)
    window.append(rows(0, 3), np.zeros(3))
    clock.now += 20
    window.append(rows(3, 2), np.zeros(2))
    assert len(window.snapshot()) == 5
    clock.now += 15  # the first three are 35 s old now
    assert window.snapshot().rows[:, 0].tolist() == [3, 4]


def test_json_has_no_nan_and_mixed_rows_keep_their_types() -> None:
    window = numeric_window(3, Clock())
    window.append(np.array([[1.0, np.nan]]), np.array([0.5]))
    shown = window.snapshot().to_json()
    assert shown == {"samples": 1, "rows": [[1.0, None]], "predictions": [0.5]}
    mixed = DriftWindow(3, 2, 60, object, object, clock=Clock())
    batch = np.empty((2, 2), dtype=object)
    batch[:, 0], batch[:, 1] = [1.5, np.nan], ["red", "blue"]
    mixed.append(batch, np.array(["a", "b"], dtype=object))
    assert mixed.snapshot().to_json()["rows"] == [[1.5, "red"], [None, "blue"]]
