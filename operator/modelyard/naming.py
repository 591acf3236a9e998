"""Deterministic names, labels and owner references: the same input always names the same
child, so a handler that runs twice (kopf is at-least-once) finds what it made the first time."""

from __future__ import annotations

import hashlib
from typing import Any

from modelyard.api import (
    API_GROUP_VERSION,
    MODEL_DEPLOYMENT_KIND,
    TRAINING_JOB_KIND,
    ObjectMeta,
)

LABEL_TRAINING_JOB = "modelyard.io/training-job"
LABEL_MODEL_DEPLOYMENT = "modelyard.io/model-deployment"
LABEL_COMPONENT = "modelyard.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
# On canary server pods only: the stable Deployment's selector predates canaries and a
# Deployment's selector is immutable, so stable pods are the ones without it.
LABEL_ARM = "modelyard.io/arm"
# On a retraining TrainingJob: the ModelDeployment it retrains for, why, and its run number.
LABEL_RETRAINING_FOR = "modelyard.io/retraining-for"
LABEL_TRIGGER = "modelyard.io/trigger"
LABEL_RUN = "modelyard.io/retraining-run"
ARM_CANARY = "canary"
ANNOTATION_SPEC_HASH = "modelyard.io/spec-hash"
ANNOTATION_GENERATION = "modelyard.io/generation"
ANNOTATION_MODEL_SHA = "modelyard.io/model-sha256"
ANNOTATION_MODEL_URI = "modelyard.io/model-uri"
ANNOTATION_MODEL_VERSION = "modelyard.io/model-version"

MAX_NAME = 63  # a label value, and a Job name (its pods' job-name label carries it)


def fit_name(name: str, limit: int = MAX_NAME) -> str:
    """``name`` if it fits ``limit``, else a trimmed prefix plus a short hash of the whole."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-.')}-{digest}"


def job_name(training_job: str, generation: int) -> str:
    """``<tj>-g<generation>``: a spec change (new generation) names a new Job, so it retrains."""
    return fit_name(f"{training_job}-g{generation}")


def model_version(generation: int, uid: str) -> str:
    """The version a TrainingJob's generation writes: stable across retries of the Job."""
    return f"v{generation}-{uid[:8]}" if uid else f"v{generation}"


def trainer_labels(name: str) -> dict[str, str]:
    return {
        LABEL_TRAINING_JOB: fit_name(name),
        LABEL_COMPONENT: "trainer",
        LABEL_MANAGED_BY: "modelyard",
    }


def server_selector(name: str) -> dict[str, str]:
    return {LABEL_MODEL_DEPLOYMENT: fit_name(name)}


def server_labels(name: str) -> dict[str, str]:
    return {**server_selector(name), LABEL_COMPONENT: "server", LABEL_MANAGED_BY: "modelyard"}


def canary_name(name: str) -> str:
    """The canary Deployment of ModelDeployment ``name`` (its pods match the same Service)."""
    return f"{name}-canary"


def is_canary_pod(pod: dict[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL_ARM) == ARM_CANARY


def owner_reference(kind: str, meta: ObjectMeta) -> dict[str, Any]:
    return {
        "apiVersion": API_GROUP_VERSION,
        "kind": kind,
        "name": meta.name,
        "uid": meta.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The uid of ``obj``'s controlling owner, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def owner_name(obj: dict[str, Any], kind: str) -> str | None:
    """The name of ``obj``'s controlling owner of ``kind``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return str(ref["name"])
    return None


def training_job_owner(meta: ObjectMeta) -> dict[str, Any]:
    return owner_reference(TRAINING_JOB_KIND, meta)


def model_deployment_owner(meta: ObjectMeta) -> dict[str, Any]:
    return owner_reference(MODEL_DEPLOYMENT_KIND, meta)


def service_url(name: str, namespace: str) -> str:
    """The in-cluster Open Inference Protocol V2 endpoint of a ModelDeployment."""
    return f"http://{name}.{namespace}.svc.cluster.local/v2/models/{name}"
