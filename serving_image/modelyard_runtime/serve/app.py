"""The HTTP transport of the V2 dataplane (dataplane.py): routing, body reading and limits,
status codes, response encoding.

Inference runs on a pure-ASGI fast path (bytes in, orjson + NumPy, bytes out: no framework
routing, no pydantic per request); everything else (health, metadata, metrics, 404s) is a
small FastAPI app behind it, which also owns the lifespan that loads the model. Both ask the
dataplane what to answer and map its ``errors.Code`` to a status here.
"""

from __future__ import annotations

import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelyard_runtime import __version__
from modelyard_runtime.serve import codec
from modelyard_runtime.serve.batching import Batcher, BatchingConfig
from modelyard_runtime.serve.dataplane import Dataplane, Served, inference_failed
from modelyard_runtime.serve.errors import Code, V2Error
from modelyard_runtime.serve.metrics import CONTENT_TYPE, ServerMetrics
from modelyard_runtime.serve.model import ModelLoadError
from modelyard_runtime.serve.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("modelyard.serve")

# The HTTP status of each refusal.
STATUS: dict[Code, int] = {
    Code.INVALID: 400,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.TOO_LARGE: 413,
    Code.INTERNAL: 500,
    Code.NOT_READY: 503,
    Code.OVERLOADED: 503,
}
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
INFER_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")
_JSON = b"application/json"


@dataclass
class ServerState:
    settings: Settings
    dataplane: Dataplane
    # The fast path's lookup: the paths that resolve to the served model (dataplane.resolve).
    infer_paths: frozenset[str] = field(default_factory=frozenset)
    decoders: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(DECODE_THREADS)
    )

    @property
    def failure(self) -> str | None:
        """Why the model was refused, for the termination message."""
        return self.dataplane.failure

    batcher: Batcher = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        config = BatchingConfig(
            mode="Off" if settings.batching == "Off" else "Opportunistic",
            max_batch_rows=settings.max_batch_size,
            max_delay_seconds=settings.max_batch_delay_us / 1e6,
        )
        self.batcher = Batcher(self.dataplane, config)

    def install(self, served: Served) -> None:
        model = served.model
        self.batcher.install(served)
        self.infer_paths = frozenset(
            {
                f"/v2/models/{model.name}/infer",
                f"/v2/models/{model.name}/versions/{model.version}/infer",
            }
        )


def json_response(status: int, payload: Any) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    return Response(codec.error_body(message), status_code=status, media_type="application/json")


def create_app(settings: Settings, metrics: ServerMetrics | None = None) -> Callable[..., Any]:
    dataplane = Dataplane(
        metrics or ServerMetrics(),
        settings.max_inflight,
        max_inflight_bytes=settings.max_inflight_bytes,
        drift_window=settings.drift_window,
        drift_max_age_seconds=settings.drift_max_age_seconds,
    )
    state = ServerState(settings=settings, dataplane=dataplane)
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


async def _read_body(
    receive: Receive, scope: Scope, limit: int, declared: int | None
) -> tuple[bytes, int | None]:
    """The body (``declared``: its Content-Length), and the JSON header's length when the
    binary tensor extension is used."""
    if declared is not None and declared > limit:
        raise V2Error(
            Code.TOO_LARGE, f"request body of {declared} bytes exceeds the limit of {limit} bytes"
        )
    header_length: int | None = None
    for key, value in scope["headers"]:
        if key == b"inference-header-content-length":
            try:
                header_length = int(value)
            except ValueError:
                raise V2Error(
                    Code.INVALID, "invalid Inference-Header-Content-Length header"
                ) from None
    # Also count what actually arrives: chunked bodies carry no Content-Length.
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise V2Error(Code.TOO_LARGE, f"request body exceeds the limit of {limit} bytes")
        return body, header_length
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise V2Error(Code.TOO_LARGE, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks), header_length


async def _infer(state: ServerState, scope: Scope, receive: Receive, send: Send) -> None:
    dataplane = state.dataplane
    served = dataplane.served
    try:
        if served is None or scope["path"] not in state.infer_paths or scope["method"] != "POST":
            served = _route(dataplane, scope)
        # Admission before the body is read: what is refused costs neither its body's memory
        # nor decode time, and what is admitted is bounded (each holds several times its body;
        # a body without Content-Length may grow to the limit).
        limit = state.settings.max_body_bytes
        declared = _declared_length(scope)
        body_bytes = min(limit, declared or limit)
        dataplane.admit(body_bytes)
    except V2Error as error:
        await _refuse(dataplane, send, error)
        return
    try:
        await _admitted(state, served, scope, receive, send, declared)
    finally:
        dataplane.release(body_bytes)


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise V2Error(Code.INVALID, "invalid Content-Length header") from None
    return None


def _route(dataplane: Dataplane, scope: Scope) -> Served:
    """What the fast path's lookup missed: the model an .../infer request names, or why it
    is not served (unknown path, method, not ready, unknown model or version)."""
    matched = INFER_PATH.match(scope["path"])
    if matched is None:
        raise V2Error(Code.NOT_FOUND, f"no route {scope['path']}")
    if scope["method"] != "POST":
        raise V2Error(Code.METHOD_NOT_ALLOWED, "inference takes POST")
    return dataplane.resolve(matched["name"], matched["version"])


async def _refuse(dataplane: Dataplane, send: Send, error: V2Error) -> None:
    dataplane.refused(error)
    await _send(send, STATUS[error.code], codec.error_body(error.message))


async def _admitted(
    state: ServerState,
    served: Served,
    scope: Scope,
    receive: Receive,
    send: Send,
    declared: int | None,
) -> None:
    started = time.perf_counter()
    dataplane, model = state.dataplane, served.model
    try:
        body, header_length = await _read_body(
            receive, scope, state.settings.max_body_bytes, declared
        )
        if len(body) > INLINE_DECODE_BYTES:
            request = await anyio.to_thread.run_sync(
                _decode,
                body,
                header_length,
                served.signature,
                DECODE_PAUSE_SECONDS,
                limiter=state.decoders,
            )
        else:
            request = _decode(body, header_length, served.signature)
        results = await state.batcher.infer(served, request)
        try:
            answer = codec.encode_response(model.name, model.version, request.id, results)
        except Exception as error:
            raise inference_failed(served, request, error) from error
    except V2Error as error:
        await _refuse(dataplane, send, error)
        return
    await _send(send, 200, answer)
    dataplane.answered(served, results, started)


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


# --- health, metadata, metrics ----------------------------------------------------------------


def _metadata_api(state: ServerState) -> FastAPI:
    settings, dataplane = state.settings, state.dataplane

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started = time.monotonic()
        try:
            served = dataplane.load(
                settings.model_dir,
                settings.model_name,
                settings.expected_sha256,
                settings.runtime,
            )
        except ModelLoadError as error:
            log.error(
                f"refusing to start: {error}",
                extra={"modelDir": settings.model_dir, "event": "model_load_failed"},
            )
            raise
        state.install(served)
        # What is loaded now (the pipeline, the libraries, the reference sample: ~180,000
        # objects) lives as long as the process; frozen out of the collector, a full collection
        # scans only what requests allocate, and no request waits ~100 ms behind one.
        gc.collect()
        gc.freeze()
        model = served.model
        log.info(
            "model ready",
            extra={
                "model": model.name,
                "version": model.version,
                "sha256": model.digest,
                "modelSha256": model.metadata.sha256,
                "estimator": model.metadata.estimator,
                "runtime": model.runtime,
                "runtimeAsked": settings.runtime,
                "features": model.n_features,
                "inlineRows": state.batcher.inline_rows,
                "batching": settings.batching,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        yield
        dataplane.stop()
        log.info("shutting down")

    api = FastAPI(
        title="modelyard-serve",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @api.exception_handler(V2Error)
    async def refused(_: Request, error: V2Error) -> Response:
        return error_response(STATUS[error.code], error.message)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Response:
        return error_response(error.status_code, str(error.detail))

    @api.exception_handler(Exception)
    async def internal_error(_: Request, error: Exception) -> Response:
        log.exception("request failed")
        return error_response(500, f"internal error: {type(error).__name__}")

    @api.get("/v2/health/live")
    async def live() -> Response:
        return json_response(200, {"live": True})

    @api.get("/v2/health/ready")
    async def ready() -> Response:
        return json_response(200 if dataplane.ready else 503, {"ready": dataplane.ready})

    @api.get("/v2")
    async def server_metadata() -> Response:
        return json_response(200, dataplane.server_metadata())

    @api.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        return json_response(200, dataplane.model_metadata(name, None))

    @api.get("/v2/models/{name}/versions/{version}")
    async def model_version_metadata(name: str, version: str) -> Response:
        return json_response(200, dataplane.model_metadata(name, version))

    @api.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        return json_response(200, dataplane.model_readiness(name, None))

    @api.get("/v2/models/{name}/versions/{version}/ready")
    async def model_version_ready(name: str, version: str) -> Response:
        return json_response(200, dataplane.model_readiness(name, version))

    # The drift window and this pod's check of it (a few ms of scipy: off the event loop).
    @api.get("/v2/models/{name}/drift")
    async def model_drift(name: str, request: Request) -> Response:
        query = dict(request.query_params)
        return json_response(200, await run_in_threadpool(dataplane.drift, name, None, query))

    @api.get("/v2/models/{name}/versions/{version}/drift")
    async def model_version_drift(name: str, version: str, request: Request) -> Response:
        query = dict(request.query_params)
        answer = await run_in_threadpool(dataplane.drift, name, version, query)
        return json_response(200, answer)

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(dataplane.metrics.generate(), media_type=CONTENT_TYPE)

    return api
