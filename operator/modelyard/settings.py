"""Operator settings, read from ``MODELYARD_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Literal

from modelyard_runtime.spec import SizeLimits
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from modelyard.api import STORAGE_URI_PATTERN, ResourceRequirements


class OperatorSettings(BaseSettings):
    """``MODELYARD_NAMESPACES``: comma-separated namespaces to watch; empty or ``*`` means the
    whole cluster. ``MODELYARD_DEFAULT_STORAGE_URI``: where a TrainingJob without
    ``spec.output.storageUri`` writes (``<uri>/<trainingjob name>``). ``MODELYARD_RUNTIME_IMAGE``:
    the image with ``modelyard-train`` and ``modelyard-serve``. ``MODELYARD_ALLOWED_IMAGES``:
    comma-separated images a ModelDeployment's ``spec.image`` may name besides the runtime image
    (``*`` allows any: then the right to create a ModelDeployment is the right to run any image
    with the models volume mounted). ``MODELYARD_TRAINING_DEFAULT_RESOURCES`` (JSON) and
    ``MODELYARD_TRAINING_DEFAULT_DEADLINE_SECONDS``: what a TrainingJob without
    ``spec.resources`` / ``spec.activeDeadlineSeconds`` gets, so no trainer is BestEffort or
    unbounded in time."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_storage_uri: str = Field(default="pvc://modelyard-models", pattern=STORAGE_URI_PATTERN)
    runtime_image: str = Field(default="modelyard-runtime:latest", min_length=1)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    resync_interval_seconds: float = Field(default=300.0, gt=0)
    liveness_endpoint: str = "http://0.0.0.0:8080/healthz"
    # The operator's own Prometheus metrics (reconciles, durations, queue): 0 turns them off.
    metrics_port: int = Field(default=8081, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    allowed_images: Annotated[list[str], NoDecode] = Field(default_factory=list)
    training_default_resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "500m", "memory": "512Mi"}, limits={"memory": "2Gi"}
        )
    )
    training_default_deadline_seconds: int = Field(default=3600, ge=1)
    # MODELYARD_SIZE_LIMITS (JSON): caps on n_estimators, max_iter, n_jobs, ... checked at
    # reconcile time and passed to the trainer, which checks again.
    size_limits: SizeLimits = Field(default_factory=SizeLimits)
    # Hot standbys: replicas elect one leader on a Lease; the others only watch.
    leader_election: bool = False
    leader_election_namespace: str = "modelyard-system"
    leader_election_lease_seconds: int = Field(default=15, ge=2)

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip() not in ("", "*")]
        return value

    @field_validator("allowed_images", mode="before")
    @classmethod
    def _split_images(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def cluster_wide(self) -> bool:
        return not self.namespaces
