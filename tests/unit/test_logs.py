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
    assert entry["level"] == "info" and entry["logger"] == "modelyard.x"
    assert entry["k8s_ref"] == {"name": "iris"}


def test_the_operator_and_the_runtime_share_one_formatter() -> None:
    import modelyard_runtime.logs

    assert JsonFormatter is modelyard_runtime.logs.JsonFormatter
