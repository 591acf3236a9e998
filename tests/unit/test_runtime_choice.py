"""Which runtime serves a model: ``spec.server.runtime`` against what the trainer measured."""

from __future__ import annotations

import pytest
from modelyard_runtime.contract import (
    OnnxParity,
    OnnxRuntimeInfo,
    Runtimes,
    RuntimeTiming,
    served_runtime,
)


def runtimes(sklearn_us: tuple[float, float], onnx_us: tuple[float, float] | None) -> Runtimes:
    def timing(us: tuple[float, float]) -> RuntimeTiming:
        return RuntimeTiming(p50_us={"batch1": us[0], "batch32": us[1]})

    if onnx_us is None:
        onnx = OnnxRuntimeInfo(available=False, reason="labels differ on 3.33% of 30 rows")
    else:
        onnx = OnnxRuntimeInfo(
            available=True,
            sha256="0" * 64,
            timing=timing(onnx_us),
            parity=OnnxParity(rows=30, label_agreement=1.0, max_proba_diff=1e-15),
        )
    return Runtimes(sklearn=timing(sklearn_us), onnx=onnx)


@pytest.mark.parametrize(
    ("measured", "auto"),
    [
        (runtimes((1300, 1400), (28, 40)), "onnx"),  # faster at both batch sizes
        (runtimes((1300, 30), (28, 40)), "sklearn"),  # slower at one: not clearly faster
        (runtimes((20, 30), (28, 40)), "sklearn"),
        (runtimes((1300, 1400), None), "sklearn"),  # no parity: never served
    ],
)
def test_auto_serves_the_runtime_measured_faster_where_parity_holds(
    measured: Runtimes, auto: str
) -> None:
    assert measured.auto() == auto
    assert served_runtime("Auto", measured) == auto


def test_an_explicit_choice_is_honoured_or_refused_with_the_reason() -> None:
    compiled, plain = runtimes((20, 30), (28, 40)), runtimes((1300, 1400), None)
    assert served_runtime("onnx", compiled) == "onnx"  # asked for, although slower
    assert served_runtime("sklearn", compiled) == "sklearn"
    with pytest.raises(ValueError, match="no parity-checked ONNX model: labels differ"):
        served_runtime("onnx", plain)


def test_an_artifact_from_before_compiled_runtimes() -> None:
    assert served_runtime("Auto", None) == served_runtime("sklearn", None) == "sklearn"
    with pytest.raises(ValueError, match="predates compiled runtimes"):
        served_runtime("onnx", None)
