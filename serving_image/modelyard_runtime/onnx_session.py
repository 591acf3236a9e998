"""ONNX Runtime sessions and the parity rule, one copy for both sides: the trainer checks parity
on the holdout split before it stores ``model.onnx``; the server re-checks it on the artifact's
reference sample before it reports ready with the compiled runtime.

Parity means, on every row: identical labels (classifiers), and probabilities or regression
outputs within ``TOLERANCE`` (absolute for probabilities, which live in [0, 1]; relative to
max(1, |y|) for regressions). 1e-6 holds for double-precision graphs (differences ~1e-15) and
rejects float32 ones, whose rounding moves tree thresholds and flips rows: a served answer must
be the validated model's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from modelyard_runtime.contract import OnnxParity, Task

TOLERANCE = 1e-6

# x (float64 rows) -> the graph's outputs: [label, probabilities] (a classifier converted
# without ZipMap) or [values] (a regressor).
Runner = Callable[[np.ndarray], list[np.ndarray]]


def session(model: bytes) -> Any:
    """An ONNX Runtime session from the model's bytes (the bytes that were hashed). One thread:
    a request runs on one core and the server scales by processes, as scikit-learn does."""
    import onnxruntime as ort  # imported here: a server on the sklearn runtime never loads it

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def runner(onnx_session: Any) -> Runner:
    name = onnx_session.get_inputs()[0].name

    def run(x: np.ndarray) -> list[np.ndarray]:
        rows = np.ascontiguousarray(x, dtype=np.float64)
        return [np.asarray(o) for o in onnx_session.run(None, {name: rows})]

    return run


def parity(pipeline: Any, run: Runner, x: np.ndarray, task: Task) -> tuple[OnnxParity, str | None]:
    """The compiled graph against the scikit-learn pipeline on ``x``: the measured agreement,
    and why it fails the rule (``None`` when it holds)."""
    outputs = run(x)
    if task == "classification":
        expected = np.asarray(pipeline.predict(x))
        agreement = float(np.mean(outputs[0].ravel().astype(expected.dtype) == expected))
        diff = None
        if len(outputs) > 1 and hasattr(pipeline, "predict_proba"):
            diff = float(np.max(np.abs(outputs[1] - pipeline.predict_proba(x))))
        measured = OnnxParity(rows=len(x), label_agreement=agreement, max_proba_diff=diff)
        if agreement < 1.0:
            return measured, f"labels differ on {1 - agreement:.2%} of {len(x)} rows"
        if diff is not None and not diff <= TOLERANCE:
            return measured, f"probabilities differ by up to {diff:.3g} (> {TOLERANCE:g})"
        return measured, None
    predicted = outputs[0].ravel().astype(np.float64)
    expected_values = np.asarray(pipeline.predict(x), dtype=np.float64).ravel()
    scale = np.maximum(1.0, np.abs(expected_values))
    relative = float(np.max(np.abs(predicted - expected_values) / scale))
    measured = OnnxParity(rows=len(x), max_relative_diff=relative)
    if not relative <= TOLERANCE:
        return measured, f"predictions differ by up to {relative:.3g} relative (> {TOLERANCE:g})"
    return measured, None
