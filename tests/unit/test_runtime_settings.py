"""The server's settings from the environment."""

from __future__ import annotations

import pytest
from modelyard_runtime.serve.settings import DEFAULT_MAX_BODY_BYTES, Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({"MODELYARD_MODEL_DIR": "/models/v1"})
    assert settings.model_dir == "/models/v1"
    assert settings.port == 8080
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 8 * 1024 * 1024
    assert settings.expected_sha256 is None
    assert settings.model_name == "model"


def test_overrides_and_sha256_prefix() -> None:
    settings = Settings.from_env(
        {
            "MODELYARD_MODEL_DIR": "/m",
            "MODELYARD_MODEL_NAME": "iris",
            "MODELYARD_PORT": "9000",
            "MODELYARD_MAX_BODY_BYTES": "1024",
            "MODELYARD_EXPECTED_SHA256": "sha256:ABC",
        }
    )
    assert (settings.model_name, settings.port, settings.max_body_bytes) == ("iris", 9000, 1024)
    assert settings.expected_sha256 == "abc"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"MODELYARD_MODEL_DIR": "/m", "MODELYARD_PORT": "http"},
        {"MODELYARD_MODEL_DIR": "/m", "MODELYARD_MAX_BODY_BYTES": "-1"},
    ],
)
def test_invalid(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)
