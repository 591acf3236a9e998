"""The server's settings from the environment."""

from __future__ import annotations

import dataclasses

import pytest
from modelyard_runtime.serve.settings import DEFAULT_MAX_BODY_BYTES, Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({"MODELYARD_MODEL_DIR": "/models/v1"})
    assert settings.model_dir == "/models/v1"
    assert settings.port == 8080
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 8 * 1024 * 1024
    assert settings.expected_sha256 is None
    assert settings.model_name == "model"
    assert settings.runtime == "Auto"


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
        {"MODELYARD_MODEL_DIR": "/m", "MODELYARD_RUNTIME": "tensorrt"},
    ],
)
def test_invalid(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_every_field_reads_one_variable_of_the_contract() -> None:
    from modelyard_runtime import contract

    variables = [f.metadata["env"] for f in dataclasses.fields(Settings)]
    assert len(set(variables)) == len(variables) == len(dataclasses.fields(Settings))
    names = {v for k, v in vars(contract).items() if k.startswith("ENV_")}
    assert set(variables) <= names


def test_blank_means_the_default_and_values_are_stripped() -> None:
    settings = Settings.from_env(
        {
            "MODELYARD_MODEL_DIR": " /m ",
            "MODELYARD_PORT": " ",
            "MODELYARD_MAX_INFLIGHT": " 3 ",
            "MODELYARD_LOG_LEVEL": "DEBUG",
            "MODELYARD_TERMINATION_LOG": "",
        }
    )
    assert (settings.model_dir, settings.port, settings.max_inflight) == ("/m", 8080, 3)
    assert settings.log_level == "debug"
    assert settings.termination_log == "/dev/termination-log"


def test_the_refusal_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="MODELYARD_MODEL_DIR is not set: it names the model"):
        Settings.from_env({"MODELYARD_MODEL_DIR": "  "})
    with pytest.raises(SettingsError, match=r"MODELYARD_MAX_INFLIGHT='0' must be positive"):
        Settings.from_env({"MODELYARD_MODEL_DIR": "/m", "MODELYARD_MAX_INFLIGHT": "0"})


@pytest.mark.parametrize(
    ("raw", "choice"), [("auto", "Auto"), ("ONNX", "onnx"), ("sklearn", "sklearn")]
)
def test_the_runtime_choice_is_read_case_insensitively(raw: str, choice: str) -> None:
    settings = Settings.from_env({"MODELYARD_MODEL_DIR": "/m", "MODELYARD_RUNTIME": raw})
    assert settings.runtime == choice
