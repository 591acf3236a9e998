"""The V2 dataplane, without a transport: which model and version a request names, whether it
is ready, its metadata, admission, inference, and the counts of what happened.

Both of app.py's paths call it: the raw-ASGI inference fast path and the FastAPI routes. It
decides; they read bodies, map ``errors.Code`` to HTTP statuses and encode responses. Every
refusal is an ``errors.V2Error`` raised here (or by the codec), spelled once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn

from modelyard_runtime import __version__, drift
from modelyard_runtime.contract import RuntimeChoice
from modelyard_runtime.serve import codec
from modelyard_runtime.serve.errors import Code, V2Error
from modelyard_runtime.serve.metrics import ServerMetrics
from modelyard_runtime.serve.model import (
    PREDICT,
    PREDICT_PROBA,
    LoadedModel,
    ModelLoadError,
    PredictCost,
    load_model,
)
from modelyard_runtime.serve.window import DriftWindow

log = logging.getLogger("modelyard.serve")

SERVER_NAME = "modelyard"
# V2 ``platform`` by runtime: Triton's name for ONNX Runtime, so clients recognise it.
PLATFORMS = {"sklearn": "sklearn", "onnx": "onnxruntime_onnx"}
# The Prometheus outcome each refusal is counted under.
OUTCOMES: dict[Code, str] = {
    Code.INVALID: "bad_request",
    Code.TOO_LARGE: "too_large",
    Code.NOT_FOUND: "not_found",
    Code.METHOD_NOT_ALLOWED: "not_found",
    Code.NOT_READY: "not_ready",
    Code.OVERLOADED: "overloaded",
    Code.INTERNAL: "error",
}


@dataclass(frozen=True)
class Served:
    """The loaded model with what each request needs of it, bound once."""

    model: LoadedModel
    signature: codec.Signature  # what the decoder checks a request against
    metrics: Any  # metrics._BoundMetrics: the model's labelled series
    cost: PredictCost  # a warm predict, timed at warm-up
    window: DriftWindow | None = None  # recent rows for the drift monitor, when it is on
    reference: drift.Reference | None = None  # the training reference the window is tested on


class Dataplane:
    """One server's model and its rules. Event-loop state (``inflight``) is touched by the
    event loop only; ``infer`` may run in a worker thread."""

    def __init__(
        self,
        metrics: ServerMetrics,
        max_inflight: int,
        max_inflight_bytes: int | None = None,
        drift_window: int = 0,
        drift_max_age_seconds: float = 3600,
    ) -> None:
        self.metrics = metrics
        self.max_inflight = max_inflight
        self.max_inflight_bytes = max_inflight_bytes  # None: the count alone bounds
        self.drift_window = drift_window
        self.drift_max_age_seconds = drift_max_age_seconds
        self.served: Served | None = None
        self.ready = False
        self.inflight = 0  # inference requests admitted and not yet answered
        self.inflight_bytes = 0  # the bodies they declared (or may still send)
        self.failure: str | None = None  # why the model was refused, for the termination log

    # --- the model's lifecycle -----------------------------------------------------------------

    def load(
        self,
        model_dir: str,
        name: str,
        expected_sha256: str | None,
        runtime: RuntimeChoice = "Auto",
    ) -> Served:
        """Load, verify and warm up the model, then serve it; a refusal is kept in
        ``failure`` and raised as the ModelLoadError."""
        # Requests are checked for NaN/inf by the codec, so sklearn's own finiteness scans
        # are redundant work on the hot path (sklearn's config is per thread: this is the
        # calling thread's, the event loop's, set before the warm-up so that it times the
        # hot path).
        sklearn.set_config(assume_finite=True)
        try:
            model = load_model(model_dir, name, expected_sha256, runtime)
            cost = model.warm_up()
        except ModelLoadError as error:
            self.failure = str(error)
            raise
        return self.install(model, cost)

    def install(self, model: LoadedModel, cost: PredictCost) -> Served:
        classes = None if model.classes is None else model.classes.tolist()
        bound = self.metrics.bind(model.name, model.version, classes)
        window = reference = None
        if self.drift_window > 0:
            window = DriftWindow(
                self.drift_window,
                model.n_features,
                self.drift_max_age_seconds,
                row_dtype=np.float64 if model.numeric_only else object,
                prediction_dtype=object if model.classes is not None else np.float64,
            )
            reference = drift_reference(model)
            bound.watch_window(window.__len__)
        served = Served(
            model=model,
            signature=codec.Signature(model.features, model.outputs),
            metrics=bound,
            cost=cost,
            window=window,
            reference=reference,
        )
        self.served = served
        self.ready = True
        return served

    def stop(self) -> None:
        self.ready = False

    # --- which model a request names ------------------------------------------------------------

    def resolve(self, name: str, version: str | None) -> Served:
        """The served model if ``name`` (and ``version``, when given) name it."""
        served = self.served
        if served is None:
            raise V2Error(Code.NOT_READY, "the model is not loaded yet")
        model = served.model
        if name != model.name:
            raise V2Error(
                Code.NOT_FOUND, f"unknown model {name!r}; this server serves {model.name!r}"
            )
        if version is not None and version != model.version:
            raise V2Error(
                Code.NOT_FOUND,
                f"model {name!r} has no version {version!r}; it serves {model.version!r}",
            )
        return served

    # --- metadata and readiness -----------------------------------------------------------------

    @staticmethod
    def server_metadata() -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": []}

    def model_metadata(self, name: str, version: str | None) -> dict[str, Any]:
        return model_metadata(self.resolve(name, version).model)

    def model_readiness(self, name: str, version: str | None) -> dict[str, Any]:
        model = self.resolve(name, version).model
        if version is None:
            return {"name": model.name, "ready": self.ready}
        return {"name": model.name, "version": model.version, "ready": self.ready}

    # --- inference ------------------------------------------------------------------------------

    def admit(self, body_bytes: int = 0) -> None:
        """Take one of ``max_inflight`` places for a body of up to ``body_bytes``, within
        ``max_inflight_bytes`` of bodies in flight (one request is always let in), or refuse;
        ``release`` gives it back. Each admitted request holds a few times its body, so the
        byte budget bounds memory while many small requests (a batch's worth) are let in."""
        budget = self.max_inflight_bytes
        over_budget = (
            budget is not None and self.inflight > 0 and self.inflight_bytes + body_bytes > budget
        )
        if self.inflight >= self.max_inflight or over_budget:
            raise V2Error(
                Code.OVERLOADED,
                f"overloaded: {self.inflight} inference requests in progress; retry later",
            )
        self.inflight += 1
        self.inflight_bytes += body_bytes

    def release(self, body_bytes: int = 0) -> None:
        self.inflight -= 1
        self.inflight_bytes -= body_bytes

    @staticmethod
    def infer(served: Served, request: codec.InferRequest) -> dict[str, np.ndarray]:
        """The requested outputs of the model on ``request`` (kept in the drift window)."""
        try:
            results = served.model.predict(request.x, request.outputs)
        except Exception as error:
            raise inference_failed(served, request, error) from error
        if served.window is not None:
            served.window.append(request.x, predicted(served.model, results))
        return results

    @staticmethod
    def infer_batch(
        served: Served, requests: list[codec.InferRequest]
    ) -> list[dict[str, np.ndarray]]:
        """Each request's outputs from one predict call on all their rows (in order), each
        its own rows of each output it asked for. A failed merged predict raises what the
        model raised (the batcher then predicts each request on its own); one request's
        failure is its ``V2Error``."""
        served.metrics.batch.observe(len(requests))
        if len(requests) == 1:
            return [Dataplane.infer(served, requests[0])]
        model = served.model
        outputs = tuple(o for o in model.outputs if any(o in r.outputs for r in requests))
        x = np.concatenate([r.x for r in requests])
        results = model.predict(x, outputs)
        if any(values.shape[0] != x.shape[0] for values in results.values()):
            raise ValueError(f"the model answered {x.shape[0]} rows with another row count")
        if served.window is not None:
            served.window.append(x, predicted(model, results))
        answers, start = [], 0
        for request in requests:
            end = start + request.x.shape[0]
            answers.append({name: results[name][start:end] for name in request.outputs})
            start = end
        return answers

    # --- drift ----------------------------------------------------------------------------------

    def drift(self, name: str, version: str | None, query: Mapping[str, str]) -> dict[str, Any]:
        """The drift window (what the operator pools across pods), this pod's own check of it
        with the tests the query names (also its Prometheus gauges), and with
        ``reference=true`` the training reference to test against."""
        served = self.resolve(name, version)
        if served.window is None or served.reference is None:
            raise V2Error(
                Code.NOT_FOUND,
                f"model {name!r} keeps no drift window: spec.monitoring.drift is not enabled",
            )
        try:
            settings = drift.DriftTestSettings.from_query(dict(query))
        except ValueError as error:
            raise V2Error(Code.INVALID, str(error)) from None
        window = served.window.snapshot().to_json()
        report = drift.check(
            served.reference, drift.Window(window["rows"], window["predictions"]), settings
        )
        served.metrics.drift_checked(
            [
                (t.name, t.p_value, t.effect, t.drifted)
                for t in (*report.features, *([report.prediction] if report.prediction else []))
            ]
        )
        answer: dict[str, Any] = {
            "name": served.model.name,
            "version": served.model.version,
            "window": window,
            "check": report.to_status(),
        }
        if query.get("reference", "").lower() == "true":
            answer["reference"] = served.reference.to_json()
        return answer

    def refused(self, error: V2Error) -> None:
        """Count a refused inference request (once the model's series exist)."""
        served = self.served
        if served is not None:
            served.metrics.outcome[OUTCOMES[error.code]].inc()

    @staticmethod
    def answered(served: Served, results: dict[str, np.ndarray], started: float) -> None:
        """Count an answered inference request: outcome, predicted classes, latency since
        ``started`` (``time.perf_counter``)."""
        bound = served.metrics
        if PREDICT in results:
            bound.count_predictions(results[PREDICT])
        bound.outcome["ok"].inc()
        bound.latency.observe(time.perf_counter() - started)


def inference_failed(served: Served, request: codec.InferRequest, error: Exception) -> V2Error:
    """The refusal for a valid request the model (or the answer's encoding) failed on,
    logged with its traceback."""
    log.error(
        "inference failed",
        exc_info=error,
        extra={"model": served.model.name, "rows": request.x.shape[0]},
    )
    return V2Error(Code.INTERNAL, f"inference failed: {type(error).__name__}: {error}")


def predicted(model: LoadedModel, results: dict[str, np.ndarray]) -> np.ndarray:
    """The predicted values (a request may ask for probabilities only)."""
    if PREDICT in results or model.classes is None:  # only a classifier has probabilities
        return results[PREDICT]
    labels: np.ndarray = model.classes[np.argmax(results[PREDICT_PROBA], axis=1)]
    return labels


def drift_reference(model: LoadedModel) -> drift.Reference:
    """The training reference of the drift tests: the artifact's sample (sha256-verified with
    metadata.json) and the model's outputs on it (computed here for an older artifact)."""
    metadata = model.metadata
    predictions = metadata.reference_predictions
    if not predictions:
        outputs = model.predict(model.reference_matrix(), (PREDICT,))[PREDICT]
        predictions = [v.item() if isinstance(v, np.generic) else v for v in outputs.tolist()]
    return drift.Reference(
        metadata.task,
        tuple(drift.Column(f.name, f.kind) for f in model.features),
        metadata.reference_sample,
        predictions,
    )


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    """V2 model metadata, with what a client needs to build rows in ``parameters``."""
    features = model.features
    if model.numeric_only:
        inputs = [{"name": "input-0", "datatype": "FP64", "shape": [-1, len(features)]}]
    else:
        inputs = [
            {"name": f.name, "datatype": codec.declared_datatype(f), "shape": [-1]}
            for f in features
        ]
    classes = model.classes
    predict_type = "FP64" if classes is None else codec.datatype_of(classes)
    outputs: list[dict[str, Any]] = [{"name": PREDICT, "datatype": predict_type, "shape": [-1]}]
    if len(model.outputs) > 1:
        n_classes = -1 if classes is None else len(classes)
        outputs.append({"name": model.outputs[1], "datatype": "FP64", "shape": [-1, n_classes]})
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": PLATFORMS[model.runtime],
        "inputs": inputs,
        "outputs": outputs,
        # Not in the V2 schema, which allows extra fields: what a client needs to build rows.
        "parameters": {
            "task": model.metadata.task,
            "estimator": model.metadata.estimator,
            "features": [f.model_dump() for f in features],
            "classes": None if classes is None else classes.tolist(),
            "sha256": model.digest,
            "runtime": model.runtime,
        },
    }
