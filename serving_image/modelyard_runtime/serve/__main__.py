"""``modelyard-serve``: serve one model directory over Open Inference Protocol V2.

Configuration comes from the environment (contract.py names): MODELYARD_MODEL_DIR (required),
MODELYARD_MODEL_NAME, MODELYARD_EXPECTED_SHA256, MODELYARD_PORT, MODELYARD_MAX_BODY_BYTES.
One uvicorn worker (httptools + uvloop, no access log); uvicorn drains in-flight requests on
SIGTERM. A model that fails verification or warm-up stops the process with a non-zero exit.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from modelyard_runtime.logs import configure_logging
from modelyard_runtime.serve.app import create_app
from modelyard_runtime.serve.settings import Settings, SettingsError

log = logging.getLogger("modelyard.serve")

EXIT_CONFIG_ERROR = 2


def main() -> int:
    configure_logging()
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        log.error(f"refusing to start: {error}")
        return EXIT_CONFIG_ERROR
    configure_logging(settings.log_level)
    config = uvicorn.Config(
        create_app(settings),
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
    )
    server = uvicorn.Server(config)
    server.run()
    # uvicorn.Server.run returns normally even when startup (the model load) failed.
    return 0 if server.started else 3


if __name__ == "__main__":
    sys.exit(main())
