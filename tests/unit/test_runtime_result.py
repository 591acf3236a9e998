"""The trainer's termination message stays within the kubelet's 4 KiB, and the wire models
tolerate a newer writer."""

from __future__ import annotations

import json

import pytest
from modelyard_runtime.contract import (
    TERMINATION_MESSAGE_LIMIT,
    DatasetInfo,
    GateResult,
    ModelRef,
    TrainerResult,
    ValidationResult,
)
from modelyard_runtime.spec import TrainingSpec
from pydantic import ValidationError


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


def _worst_case() -> TrainerResult:
    """What the CRD allows: URIs of up to 1024 characters, here non-ASCII, and many gates."""
    cjk = "数据集" * 134  # 402 CJK characters, 3 UTF-8 bytes each
    storage = "pvc://models/" + "s" * (1024 - len("pvc://models/"))
    gates = [GateResult(metric="accuracy", value=0.5, min=0.9, passed=False) for _ in range(16)]
    return TrainerResult(
        reason="GateNotMet",
        message="accuracy 0.5 < 0.9; " * 40,
        task="classification",
        model=ModelRef(uri=f"{storage}/v20261202-101010-123", version="v1", sha256="a" * 64),
        metrics={m: 0.5 for m in ("accuracy", "f1", "precision", "recall", "roc_auc")},
        cv_metrics={m: 0.5 for m in ("accuracy", "f1", "precision", "recall", "roc_auc")},
        best_params={"C": 1.0, "max_iter": 500},
        dataset=DatasetInfo(
            source=f"pvc://data/{cjk}.csv", digest="sha256:" + "b" * 64, rows=1, columns=2
        ),
        validation=ValidationResult(passed=False, results=gates),
    )


def test_non_ascii_uris_long_storage_uri_and_16_gates_fit() -> None:
    text = _worst_case().to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = TrainerResult.from_termination_message(text)
    assert parsed.model == _worst_case().model  # the model reference survives whole
    assert parsed.reason == "GateNotMet"
    assert "数据集" in text  # written as UTF-8, not as \\u escapes


def test_every_field_is_budgeted() -> None:
    """Even if each field were as long as it can be, the JSON parses and fits."""
    worst = _worst_case()
    huge = worst.model_copy(
        update={
            "model": ModelRef(uri="pvc://m/" + "模" * 1020, version="v" * 63, sha256="a" * 64),
            "dataset": worst.dataset.model_copy(update={"source": "pvc://d/" + '"\\' * 600}),
            "message": '\n"' * 5000,
        }
    )
    text = huge.to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert TrainerResult.from_termination_message(text).reason == "GateNotMet"


def test_wire_models_ignore_unknown_fields_from_a_newer_writer() -> None:
    newer = json.loads(_result().to_termination_message())
    newer["fieldOfTomorrow"] = 1
    newer["model"]["signature"] = "x"
    newer["dataset"]["schemaVersion"] = 2
    assert TrainerResult.from_termination_message(json.dumps(newer)) == _result()


def test_spec_models_still_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        TrainingSpec.model_validate(
            {"dataset": {"builtin": "iris"}, "model": {"estimator": "SVC", "hyperparams": {}}}
        )
