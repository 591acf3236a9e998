"""Operator settings, read from ``MODELYARD_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from modelyard.api import STORAGE_URI_PATTERN


class OperatorSettings(BaseSettings):
    """``MODELYARD_NAMESPACES``: comma-separated namespaces to watch; empty or ``*`` means the
    whole cluster. ``MODELYARD_DEFAULT_STORAGE_URI``: where a TrainingJob without
    ``spec.output.storageUri`` writes (``<uri>/<trainingjob name>``). ``MODELYARD_RUNTIME_IMAGE``:
    the image with ``modelyard-train`` and ``modelyard-serve``."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_storage_uri: str = Field(default="pvc://modelyard-models", pattern=STORAGE_URI_PATTERN)
    runtime_image: str = Field(default="modelyard-runtime:latest", min_length=1)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    resync_interval_seconds: float = Field(default=300.0, gt=0)
    liveness_endpoint: str = "http://0.0.0.0:8080/healthz"

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip() not in ("", "*")]
        return value

    @property
    def cluster_wide(self) -> bool:
        return not self.namespaces
