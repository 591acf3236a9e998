"""``modelyard-serve``: serve one model directory over Open Inference Protocol V2.

Configuration comes from the environment (contract.py names): MODELYARD_MODEL_DIR (required),
MODELYARD_MODEL_NAME, MODELYARD_EXPECTED_SHA256, MODELYARD_PORT, MODELYARD_MAX_BODY_BYTES,
MODELYARD_MAX_INFLIGHT, MODELYARD_TERMINATION_LOG. One uvicorn worker (httptools + uvloop, no
access log); uvicorn drains in-flight requests on SIGTERM. A server that refuses to serve
writes why to the termination log and exits with a contract.ServerExitCode.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import uvicorn

from modelyard_runtime.contract import (
    DEFAULT_RESULT_PATH,
    ENV_TERMINATION_LOG,
    SERVER_FAILURE_REASONS,
    TERMINATION_MESSAGE_LIMIT,
    ServerExitCode,
    fit_bytes,
)
from modelyard_runtime.logs import configure_logging
from modelyard_runtime.serve.app import create_app
from modelyard_runtime.serve.settings import Settings, SettingsError

log = logging.getLogger("modelyard.serve")

# Connections and tasks at once before uvicorn itself answers 503, per admitted inference
# request: room for health probes and metrics scrapes beside a full inference load.
CONNECTIONS_PER_INFLIGHT = 8


def write_termination_message(path: str, code: ServerExitCode, detail: str) -> None:
    """``<Reason>: <detail>`` where the kubelet reads it into the container's terminated
    state; best effort (outside Kubernetes the path may not be writable)."""
    text = fit_bytes(f"{SERVER_FAILURE_REASONS[code]}: {detail}", TERMINATION_MESSAGE_LIMIT)
    try:
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(text)
    except OSError as error:
        log.warning(
            "cannot write the termination message", extra={"path": path, "error": str(error)}
        )


def main() -> int:
    configure_logging()
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        log.error(f"refusing to start: {error}")
        path = os.environ.get(ENV_TERMINATION_LOG, "").strip() or DEFAULT_RESULT_PATH
        write_termination_message(path, ServerExitCode.INVALID_CONFIG, str(error))
        return ServerExitCode.INVALID_CONFIG
    configure_logging(settings.log_level)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        workers=1,
        access_log=False,
        log_config=None,  # keep our JSON-lines handler
        log_level=settings.log_level,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=20,
        limit_concurrency=CONNECTIONS_PER_INFLIGHT * settings.max_inflight,
    )
    server = uvicorn.Server(config)
    # uvicorn exits with its own code (3) when startup fails: ours say why.
    with contextlib.suppress(SystemExit):
        server.run()
    if server.started:
        return ServerExitCode.OK
    failure = app.state.failure  # type: ignore[attr-defined]
    if failure is not None:
        write_termination_message(
            settings.termination_log, ServerExitCode.MODEL_LOAD_FAILED, failure
        )
        return ServerExitCode.MODEL_LOAD_FAILED
    detail = "the server did not start (see the log, e.g. the port is taken)"
    write_termination_message(settings.termination_log, ServerExitCode.FAILED, detail)
    return ServerExitCode.FAILED


if __name__ == "__main__":
    sys.exit(main())
