"""The model runtime: load, verify and predict. No HTTP here.

Loading refuses anything it cannot vouch for: a metadata.json whose sha256 (the artifact
digest) differs from the operator's pin, a model file whose sha256 differs from what
metadata.json records, or one that needs a type outside SERVER_TRUSTED_TYPES.

Predictions come from one of two runtimes (``contract.served_runtime`` picks): the
scikit-learn pipeline itself, or its compiled copy (model.onnx, sha256-pinned in metadata.json)
on ONNX Runtime, which the warm-up re-checks for parity with the pipeline before the model is
served. The pipeline is loaded either way: it is the reference the compiled copy must match.
"""

from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import skops.io
from pydantic import ValidationError

from modelyard_runtime import onnx_session
from modelyard_runtime.contract import (
    METADATA_FILE,
    FeatureInfo,
    ModelMetadata,
    OnnxRuntimeInfo,
    RuntimeChoice,
    RuntimeName,
    served_runtime,
    sha256_of,
)
from modelyard_runtime.serve.trusted import SERVER_TRUSTED_TYPES

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
# The warm-up times a predict of one row and of this many reference rows: the cost per call and
# per row, which decides what runs inline (the reference sample itself holds up to 2,000 rows).
WARM_UP_TIMED_ROWS = 100
WARM_UP_TIMED_CALLS = 5


@dataclass(frozen=True)
class PredictCost:
    """A warm predict's cost, timed at warm-up: seconds per call and per row."""

    per_call: float
    per_row: float


class ModelLoadError(Exception):
    """The model cannot be served; the message says why, for the log line before exit."""


@dataclass
class LoadedModel:
    name: str
    metadata: ModelMetadata
    pipeline: Any
    digest: str  # the artifact digest: sha256 of metadata.json's bytes
    onnx: onnx_session.Runner | None = None  # the compiled copy, when it is what serves
    features: list[FeatureInfo] = field(init=False)
    numeric_only: bool = field(init=False)
    outputs: tuple[str, ...] = field(init=False)
    classes: np.ndarray | None = field(init=False)

    def __post_init__(self) -> None:
        self.features = list(self.metadata.features)
        self.numeric_only = all(f.kind == "numeric" for f in self.features)
        has_proba = self.metadata.task == "classification" and hasattr(
            self.pipeline, "predict_proba"
        )
        self.outputs = (PREDICT, PREDICT_PROBA) if has_proba else (PREDICT,)
        classes = getattr(self.pipeline, "classes_", None)
        self.classes = np.asarray(classes) if classes is not None else None

    @property
    def version(self) -> str:
        return self.metadata.model_version

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def runtime(self) -> RuntimeName:
        return "sklearn" if self.onnx is None else "onnx"

    def predict(self, x: np.ndarray, outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
        if self.onnx is not None:
            return self._predict_compiled(self.onnx, x, outputs)
        results: dict[str, np.ndarray] = {}
        for output in outputs:
            if output == PREDICT:
                results[output] = np.asarray(self.pipeline.predict(x))
            else:
                results[output] = np.asarray(self.pipeline.predict_proba(x), dtype=np.float64)
        return results

    def _predict_compiled(
        self, run: onnx_session.Runner, x: np.ndarray, outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        graph = run(x)  # one call gives the label and the probabilities
        results: dict[str, np.ndarray] = {}
        if PREDICT in outputs:
            labels = graph[0].ravel()
            if self.classes is not None:  # the pipeline's own label type (int64 -> str, ...)
                labels = labels.astype(self.classes.dtype)
            results[PREDICT] = labels.astype(np.float64) if self.classes is None else labels
        if PREDICT_PROBA in outputs:
            results[PREDICT_PROBA] = np.asarray(graph[1], dtype=np.float64)
        return results

    def reference_matrix(self) -> np.ndarray:
        """The training reference sample as the pipeline takes it (None -> NaN)."""
        rows = self.metadata.reference_sample
        if not rows:
            raise ModelLoadError("metadata.json has no reference sample to warm up with")
        if self.numeric_only:
            return np.array(
                [[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64
            )
        matrix = np.empty((len(rows), self.n_features), dtype=object)
        for j, info in enumerate(self.features):
            column = [np.nan if row[j] is None else row[j] for row in rows]
            numeric = info.kind == "numeric"
            matrix[:, j] = np.asarray(column, dtype=np.float64) if numeric else column
        return matrix

    def warm_up(self) -> PredictCost:
        """Run every output once on the reference sample: the first real request then pays
        no lazy-initialisation cost, and a model that cannot predict never becomes ready.
        Returns what a warm ``predict`` costs (for the server's choice of running a batch
        inline or in a thread)."""
        x = self.reference_matrix()
        if self.onnx is not None:
            self._check_parity(self.onnx, x)
        try:
            results = self.predict(x, self.outputs)
            one = _median_seconds(lambda: self.predict(x[:1], (PREDICT,)))
            many = _median_seconds(lambda: self.predict(x[:WARM_UP_TIMED_ROWS], (PREDICT,)))
        except Exception as error:
            raise ModelLoadError(
                f"warm-up prediction failed: {type(error).__name__}: {error}"
            ) from error
        if len(results[PREDICT]) != len(x):
            raise ModelLoadError("warm-up prediction returned the wrong number of rows")
        rows = min(len(x), WARM_UP_TIMED_ROWS)
        per_row = max(0.0, (many - one) / (rows - 1)) if rows > 1 else many
        return PredictCost(per_call=one, per_row=per_row)

    def _check_parity(self, run: onnx_session.Runner, x: np.ndarray) -> None:
        """The compiled copy answers as the pipeline does on the reference sample, by the
        trainer's rule, or the model is not served."""
        try:
            _, mismatch = onnx_session.parity(self.pipeline, run, x, self.metadata.task)
        except Exception as error:
            raise ModelLoadError(
                f"warm-up prediction failed (ONNX Runtime): {type(error).__name__}: {error}"
            ) from error
        if mismatch is not None:
            raise ModelLoadError(
                f"the ONNX model does not match the pipeline on the reference sample: {mismatch}"
            )


def _median_seconds(call: Any) -> float:
    seconds = []
    for _ in range(WARM_UP_TIMED_CALLS):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return sorted(seconds)[len(seconds) // 2]


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError as error:
        raise ModelLoadError(f"{what} {path} does not exist") from error
    except OSError as error:
        raise ModelLoadError(f"cannot read {what} {path}: {error.strerror}") from error


def verified_metadata(
    model_dir: str, expected_sha256: str | None = None
) -> tuple[ModelMetadata, str]:
    """``metadata.json`` parsed from the very bytes that were hashed, and that hash (the
    artifact digest), checked against ``expected_sha256`` when given."""
    metadata_path = os.path.join(model_dir, METADATA_FILE)
    metadata_bytes = _read(metadata_path, "metadata file")
    digest = sha256_of(metadata_bytes)
    if expected_sha256 is not None and not hmac.compare_digest(digest, expected_sha256):
        raise ModelLoadError(
            f"sha256 mismatch: {metadata_path} has {digest}, the deployment expects "
            f"{expected_sha256}; refusing to load"
        )
    try:
        return ModelMetadata.model_validate_json(metadata_bytes), digest
    except ValidationError as error:
        raise ModelLoadError(f"cannot read {metadata_path}: {error}") from error


def load_model(
    model_dir: str,
    name: str,
    expected_sha256: str | None = None,
    runtime: RuntimeChoice = "sklearn",
) -> LoadedModel:
    """Each file is read once, and what is verified is what is used: the metadata bytes are
    hashed (the artifact digest, the deployment's pin) and parsed; the model bytes are hashed
    (against the metadata), type-checked and loaded; so is the ONNX file when ``runtime``
    resolves to it. Nothing is re-read after its check."""
    metadata, digest = verified_metadata(model_dir, expected_sha256)
    try:
        chosen = served_runtime(runtime, metadata.runtimes)
    except ValueError as error:
        raise ModelLoadError(f"runtime {runtime} cannot serve this model: {error}") from error

    model_path = os.path.join(model_dir, os.path.basename(metadata.model_file))
    data = _read(model_path, "model file")
    actual = sha256_of(data)
    if not hmac.compare_digest(actual, metadata.sha256.lower()):
        raise ModelLoadError(
            f"sha256 mismatch: {model_path} has {actual}, metadata.json records "
            f"{metadata.sha256}; refusing to load a modified model file"
        )
    try:
        needed = skops.io.get_untrusted_types(data=data)
    except Exception as error:
        raise ModelLoadError(
            f"cannot read {model_path}: {type(error).__name__}: {error}"
        ) from error
    untrusted = [t for t in needed if t not in SERVER_TRUSTED_TYPES]
    if untrusted:
        raise ModelLoadError(
            f"{model_path} needs types the server does not trust: {untrusted}; refusing to load"
        )
    try:
        pipeline = skops.io.loads(data, trusted=list(SERVER_TRUSTED_TYPES))
    except Exception as error:
        raise ModelLoadError(
            f"cannot load {model_path}: {type(error).__name__}: {error}"
        ) from error
    if not hasattr(pipeline, "predict"):
        raise ModelLoadError(f"{model_path} holds a {type(pipeline).__name__}, not a model")
    onnx = None
    if chosen == "onnx" and metadata.runtimes is not None:
        onnx = _load_onnx(model_dir, metadata.runtimes.onnx)
    model = LoadedModel(name=name, metadata=metadata, pipeline=pipeline, digest=digest, onnx=onnx)
    if model.classes is None and metadata.classes is not None:
        model.classes = np.asarray(metadata.classes)
    return model


def _load_onnx(model_dir: str, info: OnnxRuntimeInfo) -> onnx_session.Runner:
    path = os.path.join(model_dir, os.path.basename(info.file))
    data = _read(path, "ONNX model file")
    actual = sha256_of(data)
    if info.sha256 is None or not hmac.compare_digest(actual, info.sha256.lower()):
        raise ModelLoadError(
            f"sha256 mismatch: {path} has {actual}, metadata.json records {info.sha256}; "
            "refusing to load a modified model file"
        )
    try:
        return onnx_session.runner(onnx_session.session(data))
    except Exception as error:
        raise ModelLoadError(f"cannot load {path}: {type(error).__name__}: {error}") from error
