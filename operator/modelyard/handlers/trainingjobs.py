"""TrainingJob handlers: any change to a TrainingJob, its Job or its pods reconciles it."""

from __future__ import annotations

from typing import Any

import kopf

from modelyard import API_GROUP, API_VERSION, naming
from modelyard.api import TRAINING_JOB_KIND, TRAINING_JOB_PLURAL
from modelyard.handlers.lifecycle import reconciler


def owner_name(body: kopf.Body, kind: str) -> str | None:
    for ref in body.metadata.get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return str(ref["name"])
    return None


def reconcile(namespace: str, name: str) -> None:
    reconciler().training_job(namespace, name)
    reconciler().deployments_following(namespace, name)


@kopf.on.event(API_GROUP, API_VERSION, TRAINING_JOB_PLURAL)
def training_job_changed(type: str, namespace: str | None, name: str, **_: Any) -> None:
    if type != "DELETED" and namespace:
        reconcile(namespace, name)


@kopf.on.event("batch", "v1", "jobs", labels={naming.LABEL_COMPONENT: "trainer"})
def trainer_job_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    owner = owner_name(body, TRAINING_JOB_KIND)
    if owner and namespace:
        reconcile(namespace, owner)


@kopf.on.event("", "v1", "pods", labels={naming.LABEL_COMPONENT: "trainer"})
def trainer_pod_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    owner = body.metadata.annotations.get(naming.LABEL_TRAINING_JOB)
    if owner and namespace:
        reconcile(namespace, owner)
