"""The compiled runtime: the fitted pipeline converted to ONNX (skl2onnx), checked for parity
with scikit-learn on the holdout split (``onnx_session.parity``), and both runtimes timed
in-process.

A pipeline that does not convert, or converts with a mismatch, simply has no ONNX runtime: the
reason is recorded, training goes on.
"""

from __future__ import annotations

import functools
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard_runtime import onnx_session
from modelyard_runtime.contract import OnnxRuntimeInfo, Runtimes, RuntimeTiming, Task, sha256_of
from modelyard_runtime.train import onnx_trees

log = logging.getLogger(__name__)

# What skl2onnx is asked for; a tree model's ai.onnx.ml import is then raised to 5 (onnx_trees).
OPSET = {"": 18, "ai.onnx.ml": onnx_trees.DECLARED_ML_OPSET}
TIMING_CALLS = 30
BATCHES = (1, 32)


@dataclass(frozen=True)
class Compiled:
    onnx: bytes | None  # the model file to store beside model.skops, when parity holds
    runtimes: Runtimes


def compile_pipeline(pipeline: Any, x_holdout: np.ndarray, task: Task) -> Compiled:
    """``pipeline`` (fitted) as ONNX when it converts with parity on ``x_holdout``; both
    runtimes' p50 latency at batch 1 and 32 either way."""
    sklearn_timing = _timing(pipeline.predict, x_holdout)
    if x_holdout.dtype != np.float64:
        reason = "categorical features are not converted to ONNX yet"
        return Compiled(None, Runtimes(sklearn=sklearn_timing, onnx=_unavailable(reason)))
    try:
        model, opset = _convert(pipeline, x_holdout, task)
        session = onnx_session.session(model)
    except Exception as error:
        reason = f"does not convert: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
        log.info("no ONNX runtime", extra={"reason": reason})
        return Compiled(None, Runtimes(sklearn=sklearn_timing, onnx=_unavailable(reason)))
    run = onnx_session.runner(session)
    parity, mismatch = onnx_session.parity(pipeline, run, x_holdout, task)
    info = OnnxRuntimeInfo(
        available=mismatch is None,
        reason=mismatch,
        sha256=sha256_of(model) if mismatch is None else None,
        opset=opset,
        precision="double",
        timing=_timing(lambda x: run(x)[0], x_holdout),
        parity=parity,
    )
    log.info("ONNX runtime", extra={"available": info.available, "reason": mismatch})
    return Compiled(
        model if mismatch is None else None, Runtimes(sklearn=sklearn_timing, onnx=info)
    )


def _unavailable(reason: str) -> OnnxRuntimeInfo:
    return OnnxRuntimeInfo(available=False, reason=reason)


@functools.cache
def _register_double_imputer() -> None:
    """skl2onnx writes SimpleImputer as ai.onnx.ml Imputer, which ONNX Runtime implements for
    float only; as Where(IsNaN(x), statistics, x) it runs in double like the rest."""
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxIsNaN, OnnxWhere
    from skl2onnx.common.data_types import guess_numpy_type
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    def convert(scope: Any, operator: Any, container: Any) -> None:
        imputer, x = operator.raw_operator, operator.inputs[0]
        if imputer.add_indicator or not np.all(np.isfinite(imputer.statistics_)):
            raise NotImplementedError("a SimpleImputer with indicators or all-NaN columns")
        fill = imputer.statistics_.astype(guess_numpy_type(x.type))
        opset = container.target_opset
        filled = OnnxWhere(
            OnnxIsNaN(x, op_version=opset),
            fill,
            x,
            op_version=opset,
            output_names=operator.outputs[:1],
        )
        filled.add_to(scope, container)

    update_registered_converter(
        SimpleImputer,
        "SklearnImputer",
        calculate_sklearn_imputer_output_shapes,
        convert,
        overwrite=True,
    )


def _convert(pipeline: Any, x: np.ndarray, task: str) -> tuple[bytes, dict[str, int]]:
    from skl2onnx import to_onnx

    _register_double_imputer()
    onnx_trees.register_double_trees()
    final = pipeline.steps[-1][1]
    options = {id(final): {"zipmap": False}} if task == "classification" else None
    onnx_model = to_onnx(pipeline, x[:1], options=options, target_opset=OPSET)
    opset = onnx_trees.raise_ml_opset(onnx_model)
    data: bytes = onnx_model.SerializeToString()
    return data, opset


def _timing(predict: Callable[[np.ndarray], Any], x: np.ndarray) -> RuntimeTiming:
    """p50 of TIMING_CALLS in-process calls per batch size (rows cycled from ``x``)."""
    p50: dict[str, float] = {}
    for batch in BATCHES:
        rows = x[np.arange(batch) % len(x)]
        predict(rows)  # the first call pays one-off costs
        seconds = []
        for _ in range(TIMING_CALLS):
            started = time.perf_counter()
            predict(rows)
            seconds.append(time.perf_counter() - started)
        p50[f"batch{batch}"] = round(statistics.median(seconds) * 1e6, 1)
    return RuntimeTiming(p50_us=p50)
