"""JSON logs: one object per line with the extras kopf and we attach."""

from __future__ import annotations

import json
import logging

from modelyard.logs import JsonFormatter


def test_json_line_with_extras() -> None:
    record = logging.makeLogRecord(
        {
            "name": "modelyard.x",
            "levelname": "INFO",
            "msg": "hello %s",
            "args": ("world",),
            "k8s_ref": {"name": "iris"},
        }
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "hello world"
    assert entry["level"] == "INFO" and entry["logger"] == "modelyard.x"
    assert entry["k8s_ref"] == {"name": "iris"}
