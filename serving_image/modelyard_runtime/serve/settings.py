"""The server's configuration, from the environment the operator sets (names in contract.py).

One declarative table: each field of ``Settings`` names its variable and its parser in its
metadata; ``from_env`` reads them all the same way (a value is stripped; unset or empty means
the field's default; a field without a default is required).

Hand parsing rather than pydantic-settings (the operator's): a dozen variables do not warrant two
more packages in the runtime image and its lock, and the refusal a pod's termination message
carries stays one line naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

from modelyard_runtime.contract import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_RESULT_PATH,
    DEFAULT_SERVE_PORT,
    ENV_BATCHING,
    ENV_DRIFT_MAX_AGE_SECONDS,
    ENV_DRIFT_WINDOW,
    ENV_EXPECTED_SHA256,
    ENV_HOST,
    ENV_LOG_LEVEL,
    ENV_MAX_BATCH_DELAY_US,
    ENV_MAX_BATCH_SIZE,
    ENV_MAX_BODY_BYTES,
    ENV_MAX_INFLIGHT,
    ENV_MAX_INFLIGHT_BYTES,
    ENV_MODEL_DIR,
    ENV_MODEL_NAME,
    ENV_PORT,
    ENV_RUNTIME,
    ENV_TERMINATION_LOG,
    MAX_BATCH_DELAY_US,
    MAX_BATCH_SIZE,
    RuntimeChoice,
)

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MODEL_NAME = "model"
# Each admitted request holds several times its body (bytes, lists, arrays): 64 MiB of bodies
# (8 at the 8 MiB body limit) stay within a few hundred MiB. Small requests are bounded by
# count: 256 at once is four full batches of 64 waiting.
DEFAULT_MAX_INFLIGHT = 256
DEFAULT_MAX_INFLIGHT_BYTES = 64 * 1024 * 1024
DEFAULT_DRIFT_MAX_AGE_SECONDS = 3600
MAX_DRIFT_WINDOW = 100_000  # the CRD's bound too: rows x features floats per pod


class SettingsError(ValueError):
    pass


Parser = Callable[[str, str], Any]  # (variable name, stripped non-empty value) -> field value


def _text(_: str, raw: str) -> str:
    return raw


def _lower(_: str, raw: str) -> str:
    return raw.lower()


def _sha256(_: str, raw: str) -> str:
    digest = raw.lower()
    return digest.removeprefix("sha256:")


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError as error:
        raise SettingsError(f"{name}={raw!r} is not an integer") from error
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be positive")
    return value


RUNTIME_CHOICES: dict[str, RuntimeChoice] = {
    choice.lower(): choice for choice in get_args(RuntimeChoice)
}


def _runtime(name: str, raw: str) -> RuntimeChoice:
    try:
        return RUNTIME_CHOICES[raw.lower()]
    except KeyError:
        allowed = ", ".join(get_args(RuntimeChoice))
        raise SettingsError(f"{name}={raw!r} is not one of {allowed}") from None


BATCHING_MODES = {"off": "Off", "opportunistic": "Opportunistic"}


def _batching(name: str, raw: str) -> str:
    try:
        return BATCHING_MODES[raw.lower()]
    except KeyError:
        raise SettingsError(f"{name}={raw!r} is not one of Off, Opportunistic") from None


def _bounded(low: int, high: int) -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError as error:
            raise SettingsError(f"{name}={raw!r} is not an integer") from error
        if not low <= value <= high:
            raise SettingsError(f"{name}={raw!r} must be between {low} and {high}")
        return value

    return parse


def _env(name: str, parse: Parser, required: str = "") -> dict[str, Any]:
    """A field's row of the table: its variable, its parser, and why it is required."""
    return {"env": name, "parse": parse, "required": required}


def _field(name: str, parse: Parser, default: Any) -> Any:
    return dataclasses.field(default=default, metadata=_env(name, parse))


@dataclass(frozen=True)
class Settings:
    model_dir: str = dataclasses.field(
        metadata=_env(ENV_MODEL_DIR, _text, required="it names the model directory")
    )
    model_name: str = _field(ENV_MODEL_NAME, _text, DEFAULT_MODEL_NAME)
    expected_sha256: str | None = _field(ENV_EXPECTED_SHA256, _sha256, None)
    host: str = _field(ENV_HOST, _text, "0.0.0.0")
    port: int = _field(ENV_PORT, _positive_int, DEFAULT_SERVE_PORT)
    max_body_bytes: int = _field(ENV_MAX_BODY_BYTES, _positive_int, DEFAULT_MAX_BODY_BYTES)
    max_inflight: int = _field(ENV_MAX_INFLIGHT, _positive_int, DEFAULT_MAX_INFLIGHT)
    max_inflight_bytes: int = _field(
        ENV_MAX_INFLIGHT_BYTES, _positive_int, DEFAULT_MAX_INFLIGHT_BYTES
    )
    log_level: str = _field(ENV_LOG_LEVEL, _lower, "info")
    runtime: RuntimeChoice = _field(ENV_RUNTIME, _runtime, "Auto")  # noqa: RUF009 (a str)
    termination_log: str = _field(ENV_TERMINATION_LOG, _text, DEFAULT_RESULT_PATH)
    # The drift window: recent rows kept for the drift monitor (0: none kept, no endpoint).
    drift_window: int = _field(ENV_DRIFT_WINDOW, _bounded(0, MAX_DRIFT_WINDOW), 0)
    batching: str = _field(ENV_BATCHING, _batching, "Opportunistic")
    max_batch_size: int = _field(
        ENV_MAX_BATCH_SIZE, _bounded(1, MAX_BATCH_SIZE), DEFAULT_MAX_BATCH_SIZE
    )
    max_batch_delay_us: int = _field(ENV_MAX_BATCH_DELAY_US, _bounded(0, MAX_BATCH_DELAY_US), 0)
    drift_max_age_seconds: int = _field(
        ENV_DRIFT_MAX_AGE_SECONDS, _positive_int, DEFAULT_DRIFT_MAX_AGE_SECONDS
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            name, parse = spec.metadata["env"], spec.metadata["parse"]
            raw = env.get(name, "").strip()
            if raw:
                values[spec.name] = parse(name, raw)
            elif spec.metadata["required"]:
                raise SettingsError(f"{name} is not set: {spec.metadata['required']}")
        return cls(**values)
