"""The server's configuration, from the environment the operator sets (names in contract.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from modelyard_runtime.contract import (
    DEFAULT_RESULT_PATH,
    DEFAULT_SERVE_PORT,
    ENV_EXPECTED_SHA256,
    ENV_HOST,
    ENV_LOG_LEVEL,
    ENV_MAX_BODY_BYTES,
    ENV_MAX_INFLIGHT,
    ENV_MODEL_DIR,
    ENV_MODEL_NAME,
    ENV_PORT,
    ENV_TERMINATION_LOG,
)

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MODEL_NAME = "model"
# Each admitted request holds several times its body (bytes, lists, arrays): 8 at the 8 MiB
# body limit stay within a few hundred MiB. Small requests run inline and rarely overlap.
DEFAULT_MAX_INFLIGHT = 8


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    model_dir: str
    model_name: str = DEFAULT_MODEL_NAME
    expected_sha256: str | None = None
    host: str = "0.0.0.0"
    port: int = DEFAULT_SERVE_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    log_level: str = "info"
    termination_log: str = DEFAULT_RESULT_PATH

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        model_dir = env.get(ENV_MODEL_DIR, "").strip()
        if not model_dir:
            raise SettingsError(f"{ENV_MODEL_DIR} is not set: it names the model directory")
        expected = env.get(ENV_EXPECTED_SHA256, "").strip().lower() or None
        if expected is not None and expected.startswith("sha256:"):
            expected = expected[len("sha256:") :]
        return cls(
            model_dir=model_dir,
            model_name=env.get(ENV_MODEL_NAME, "").strip() or DEFAULT_MODEL_NAME,
            expected_sha256=expected,
            host=env.get(ENV_HOST, "0.0.0.0"),
            port=_int(env, ENV_PORT, DEFAULT_SERVE_PORT),
            max_body_bytes=_int(env, ENV_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES),
            max_inflight=_int(env, ENV_MAX_INFLIGHT, DEFAULT_MAX_INFLIGHT),
            log_level=env.get(ENV_LOG_LEVEL, "info").lower(),
            termination_log=env.get(ENV_TERMINATION_LOG, "").strip() or DEFAULT_RESULT_PATH,
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise SettingsError(f"{name}={raw!r} is not an integer") from error
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be positive")
    return value
