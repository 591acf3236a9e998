"""Logging: one JSON object per line (for log pipelines) or plain text (for a terminal)."""

from __future__ import annotations

import logging
from typing import Literal

# The project's one JSON formatter, shared with the runtime image's entrypoints.
from modelyard_runtime.logs import JsonFormatter

__all__ = ["JsonFormatter", "configure"]


def configure(fmt: Literal["json", "text"], level: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
