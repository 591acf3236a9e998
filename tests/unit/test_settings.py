"""Operator settings from MODELYARD_* environment variables."""

from __future__ import annotations

import pydantic
import pytest
from modelyard.settings import OperatorSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "NAMESPACES",
        "DEFAULT_STORAGE_URI",
        "RUNTIME_IMAGE",
        "LOG_FORMAT",
        "RESYNC_INTERVAL_SECONDS",
    ):
        monkeypatch.delenv(f"MODELYARD_{name}", raising=False)
    settings = OperatorSettings()
    assert settings.namespaces == [] and settings.cluster_wide
    assert settings.default_storage_uri == "pvc://modelyard-models"
    assert settings.log_format == "json"
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert settings.resync_interval_seconds == 300


@pytest.mark.parametrize(
    ("value", "namespaces"),
    [("", []), ("*", []), ("team-a", ["team-a"]), (" team-a , team-b,", ["team-a", "team-b"])],
)
def test_namespaces(monkeypatch: pytest.MonkeyPatch, value: str, namespaces: list[str]) -> None:
    monkeypatch.setenv("MODELYARD_NAMESPACES", value)
    settings = OperatorSettings()
    assert settings.namespaces == namespaces
    assert settings.cluster_wide == (not namespaces)


def test_everything_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_DEFAULT_STORAGE_URI", "pvc://store/models")
    monkeypatch.setenv("MODELYARD_RUNTIME_IMAGE", "registry.local/runtime:1.2")
    monkeypatch.setenv("MODELYARD_LOG_FORMAT", "text")
    monkeypatch.setenv("MODELYARD_RESYNC_INTERVAL_SECONDS", "30")
    settings = OperatorSettings()
    assert settings.default_storage_uri == "pvc://store/models"
    assert settings.runtime_image == "registry.local/runtime:1.2"
    assert settings.log_format == "text"
    assert settings.resync_interval_seconds == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODELYARD_LOG_FORMAT", "xml"),
        ("MODELYARD_DEFAULT_STORAGE_URI", "s3://bucket"),
        ("MODELYARD_RESYNC_INTERVAL_SECONDS", "0"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(pydantic.ValidationError):
        OperatorSettings()
