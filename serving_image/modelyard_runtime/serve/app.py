"""The HTTP transport: Open Inference Protocol V2 routes and /metrics.

Inference runs on a pure-ASGI fast path (bytes in, orjson + NumPy, bytes out: no framework
routing, no pydantic per request); everything else (health, metadata, metrics, 404s) is a
small FastAPI app behind it, which also owns the lifespan that loads the model.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
import sklearn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard_runtime import __version__
from modelyard_runtime.serve import codec
from modelyard_runtime.serve.codec import V2Error
from modelyard_runtime.serve.metrics import CONTENT_TYPE, ServerMetrics
from modelyard_runtime.serve.model import PREDICT, LoadedModel, ModelLoadError, load_model
from modelyard_runtime.serve.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("modelyard.serve")

SERVER_NAME = "modelyard"
PLATFORM = "sklearn"
# Large work runs in a worker thread, so that probes and small requests are not stuck behind
# it on the event loop; small work runs inline, which is faster than any thread hop.
#
# Decoding: bodies above INLINE_DECODE_BYTES (an 8 MiB body takes ~0.5 s). One decoder thread:
# decoding holds the GIL (orjson's parse is one long C call), so parallel decodes gain nothing
# and would queue the loop behind each in turn; one also bounds how many bodies are expanded
# into Python objects at once. It sleeps DECODE_PAUSE_SECONDS between its steps, so that the
# loop, which waited for the GIL, serves what queued meanwhile.
INLINE_DECODE_BYTES = 64 * 1024
DECODE_THREADS = 1
DECODE_PAUSE_SECONDS = 0.005
# Predicting: a batch with more rows than the model predicts in INLINE_PREDICT_SECONDS (timed
# at warm-up), and never more than INLINE_BATCH_ROWS inline.
INLINE_PREDICT_SECONDS = 0.001
INLINE_BATCH_ROWS = 512
INFER_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")
_JSON = b"application/json"


@dataclass
class ServerState:
    settings: Settings
    metrics: ServerMetrics
    model: LoadedModel | None = None
    ready: bool = False
    bound: Any = None
    signature: codec.Signature | None = None
    infer_paths: frozenset[str] = field(default_factory=frozenset)
    inline_rows: int = INLINE_BATCH_ROWS
    inflight: int = 0  # inference requests admitted and not yet answered (event loop only)
    decoders: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(DECODE_THREADS)
    )
    failure: str | None = None  # why the model was refused, for the termination message

    def install(self, model: LoadedModel, seconds_per_row: float) -> None:
        self.model = model
        self.inline_rows = max(
            1, min(INLINE_BATCH_ROWS, int(INLINE_PREDICT_SECONDS / max(seconds_per_row, 1e-9)))
        )
        self.signature = codec.Signature(model.features, model.outputs)
        self.bound = self.metrics.bind(
            model.name, model.version, None if model.classes is None else model.classes.tolist()
        )
        self.infer_paths = frozenset(
            {
                f"/v2/models/{model.name}/infer",
                f"/v2/models/{model.name}/versions/{model.version}/infer",
            }
        )
        self.ready = True


def json_response(status: int, payload: Any) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    return Response(codec.error_body(message), status_code=status, media_type="application/json")


def create_app(settings: Settings, metrics: ServerMetrics | None = None) -> Callable[..., Any]:
    state = ServerState(settings=settings, metrics=metrics or ServerMetrics())
    api = _metadata_api(state)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/infer"):
            await _infer(state, scope, receive, send)
        else:
            await api(scope, receive, send)

    app.state = state  # type: ignore[attr-defined]  # for tests and main
    return app


# --- the inference fast path ------------------------------------------------------------------


async def _send(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, scope: Scope, limit: int) -> tuple[bytes, int | None]:
    """The body, and the JSON header's length when the binary tensor extension is used."""
    header_length: int | None = None
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise V2Error(400, "invalid Content-Length header") from None
            if declared > limit:
                raise V2Error(
                    413, f"request body of {declared} bytes exceeds the limit of {limit} bytes"
                )
        elif key == b"inference-header-content-length":
            try:
                header_length = int(value)
            except ValueError:
                raise V2Error(400, "invalid Inference-Header-Content-Length header") from None
    # Also count what actually arrives: chunked bodies carry no Content-Length.
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise V2Error(413, f"request body exceeds the limit of {limit} bytes")
        return body, header_length
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise V2Error(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks), header_length


async def _infer(state: ServerState, scope: Scope, receive: Receive, send: Send) -> None:
    model, bound = state.model, state.bound
    if model is None or scope["path"] not in state.infer_paths or scope["method"] != "POST":
        await _infer_refusal(state, scope, send)
        return
    # Admission before the body is read: what is refused costs neither its body's memory
    # nor decode time, and what is admitted is bounded (each holds several times its body).
    limit = state.settings.max_inflight
    if state.inflight >= limit:
        bound.outcome["overloaded"].inc()
        await _send(
            send,
            503,
            codec.error_body(f"overloaded: {limit} inference requests in progress; retry later"),
        )
        return
    state.inflight += 1
    try:
        await _admitted(state, model, bound, scope, receive, send)
    finally:
        state.inflight -= 1


async def _admitted(
    state: ServerState, model: LoadedModel, bound: Any, scope: Scope, receive: Receive, send: Send
) -> None:
    started = time.perf_counter()
    assert state.signature is not None
    try:
        body, header_length = await _read_body(receive, scope, state.settings.max_body_bytes)
        if len(body) > INLINE_DECODE_BYTES:
            request = await anyio.to_thread.run_sync(
                _decode,
                body,
                header_length,
                state.signature,
                DECODE_PAUSE_SECONDS,
                limiter=state.decoders,
            )
        else:
            request = _decode(body, header_length, state.signature)
    except V2Error as error:
        bound.outcome["too_large" if error.status == 413 else "bad_request"].inc()
        await _send(send, error.status, codec.error_body(error.message))
        return
    try:
        if request.x.shape[0] > state.inline_rows:
            results = await run_in_threadpool(model.predict, request.x, request.outputs)
        else:
            results = model.predict(request.x, request.outputs)
        answer = codec.encode_response(model.name, model.version, request.id, results)
    except Exception as error:
        log.exception("inference failed", extra={"model": model.name, "rows": request.x.shape[0]})
        bound.outcome["error"].inc()
        await _send(
            send, 500, codec.error_body(f"inference failed: {type(error).__name__}: {error}")
        )
        return
    await _send(send, 200, answer)
    if PREDICT in results:
        bound.count_predictions(results[PREDICT])
    bound.outcome["ok"].inc()
    bound.latency.observe(time.perf_counter() - started)


def _decode(
    body: bytes, header_length: int | None, signature: codec.Signature, pause: float = 0.0
) -> codec.InferRequest:
    binary = None
    if header_length is not None:
        body, binary = codec.split_binary(body, header_length)
    parsed = codec.parse_json(body)
    if pause:
        time.sleep(pause)
    request = codec.decode_request(parsed, signature, binary)
    if pause:
        time.sleep(pause)
    return request


async def _infer_refusal(state: ServerState, scope: Scope, send: Send) -> None:
    """Why an .../infer request is not served: not ready, unknown path, model, version or
    method."""
    matched = INFER_PATH.match(scope["path"])
    model = state.model
    if matched is None:
        status, message = 404, f"no route {scope['path']}"
    elif scope["method"] != "POST":
        status, message = 405, "inference takes POST"
    elif model is None:
        status, message = 503, "the model is not loaded yet"
    elif matched["name"] != model.name:
        status, message = (
            404,
            f"unknown model {matched['name']!r}; this server serves {model.name!r}",
        )
    else:
        status, message = (
            404,
            f"model {model.name!r} has no version {matched['version']!r}; "
            f"it serves {model.version!r}",
        )
    if state.bound is not None:
        state.bound.outcome["not_ready" if status == 503 else "not_found"].inc()
    await _send(send, status, codec.error_body(message))


# --- health, metadata, metrics ----------------------------------------------------------------


def _metadata_api(state: ServerState) -> FastAPI:
    settings = state.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started = time.monotonic()
        # Requests are checked for NaN/inf by the codec, so sklearn's own finiteness scans
        # are redundant work on the hot path (sklearn's config is per thread: this is the
        # event loop's, set before the warm-up so that it times the hot path).
        sklearn.set_config(assume_finite=True)
        try:
            model = load_model(settings.model_dir, settings.model_name, settings.expected_sha256)
            seconds_per_row = model.warm_up()
        except ModelLoadError as error:
            state.failure = str(error)
            log.error(
                f"refusing to start: {error}",
                extra={"modelDir": settings.model_dir, "event": "model_load_failed"},
            )
            raise
        state.install(model, seconds_per_row)
        log.info(
            "model ready",
            extra={
                "model": model.name,
                "version": model.version,
                "sha256": model.digest,
                "modelSha256": model.metadata.sha256,
                "estimator": model.metadata.estimator,
                "features": model.n_features,
                "inlineRows": state.inline_rows,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        yield
        state.ready = False
        log.info("shutting down")

    api = FastAPI(
        title="modelyard-serve",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Response:
        return error_response(error.status_code, str(error.detail))

    @api.exception_handler(Exception)
    async def internal_error(_: Request, error: Exception) -> Response:
        log.exception("request failed")
        return error_response(500, f"internal error: {type(error).__name__}")

    def ready_model(name: str, version: str | None) -> LoadedModel:
        model = state.model
        if model is None:
            raise StarletteHTTPException(503, "the model is not loaded yet")
        if name != model.name:
            raise StarletteHTTPException(
                404, f"unknown model {name!r}; this server serves {model.name!r}"
            )
        if version is not None and version != model.version:
            raise StarletteHTTPException(
                404, f"model {name!r} has no version {version!r}; it serves {model.version!r}"
            )
        return model

    @api.get("/v2/health/live")
    async def live() -> Response:
        return json_response(200, {"live": True})

    @api.get("/v2/health/ready")
    async def ready() -> Response:
        return json_response(200 if state.ready else 503, {"ready": state.ready})

    @api.get("/v2")
    async def server_metadata() -> Response:
        return json_response(200, {"name": SERVER_NAME, "version": __version__, "extensions": []})

    @api.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        return json_response(200, _model_metadata(ready_model(name, None)))

    @api.get("/v2/models/{name}/versions/{version}")
    async def model_version_metadata(name: str, version: str) -> Response:
        return json_response(200, _model_metadata(ready_model(name, version)))

    @api.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        model = ready_model(name, None)
        return json_response(200, {"name": model.name, "ready": state.ready})

    @api.get("/v2/models/{name}/versions/{version}/ready")
    async def model_version_ready(name: str, version: str) -> Response:
        model = ready_model(name, version)
        return json_response(
            200, {"name": model.name, "version": model.version, "ready": state.ready}
        )

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.generate(), media_type=CONTENT_TYPE)

    return api


def _model_metadata(model: LoadedModel) -> dict[str, Any]:
    features = model.features
    if model.numeric_only:
        inputs = [{"name": "input-0", "datatype": "FP64", "shape": [-1, len(features)]}]
    else:
        inputs = [
            {
                "name": f.name,
                "datatype": "BOOL"
                if f.dtype == "bool"
                else "BYTES"
                if f.kind == "categorical"
                else "FP64",
                "shape": [-1],
            }
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
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs,
        # Not in the V2 schema, which allows extra fields: what a client needs to build rows.
        "parameters": {
            "task": model.metadata.task,
            "estimator": model.metadata.estimator,
            "features": [f.model_dump() for f in features],
            "classes": None if classes is None else classes.tolist(),
            "sha256": model.digest,
        },
    }
