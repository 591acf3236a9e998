"""The trainer's termination message stays within the kubelet's 4 KiB."""

from __future__ import annotations

import json

from modelyard_runtime.contract import (
    TERMINATION_MESSAGE_LIMIT,
    DatasetInfo,
    ModelRef,
    TrainerResult,
)


def _result(message: str = "ok", params: int = 0) -> TrainerResult:
    return TrainerResult(
        reason="Succeeded",
        message=message,
        task="classification",
        model=ModelRef(uri="pvc://models/iris/v1", version="v1", sha256="a" * 64),
        metrics={"accuracy": 0.9},
        cv_metrics={f"m{i}": 0.5 for i in range(params)},
        best_params={f"param_{i}": "x" * 40 for i in range(params)},
        dataset=DatasetInfo(
            source="builtin:iris", digest="sha256:" + "b" * 64, rows=150, columns=5
        ),
    )


def test_small_result_is_kept_whole() -> None:
    text = _result().to_termination_message()
    assert TrainerResult.from_termination_message(text) == _result()


def test_large_optional_parts_are_dropped_first() -> None:
    text = _result(params=200).to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = json.loads(text)
    assert "bestParams" not in parsed
    assert parsed["model"]["sha256"] == "a" * 64  # what the operator needs survives


def test_huge_message_is_cut_to_fit() -> None:
    text = _result(message="é" * 10_000).to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert TrainerResult.from_termination_message(text).model is not None


def test_error_result_fits() -> None:
    result = TrainerResult(reason="InvalidData", message="x" * 50_000)
    text = result.to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert json.loads(text)["reason"] == "InvalidData"
