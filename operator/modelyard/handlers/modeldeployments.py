"""ModelDeployment handlers: any change to a ModelDeployment, its Deployment or its pods
reconciles it (a TrainingJob it follows reconciles it too, see ``trainingjobs``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from modelyard import API_GROUP, API_VERSION, naming
from modelyard.api import MODEL_DEPLOYMENT_KIND, MODEL_DEPLOYMENT_PLURAL
from modelyard.handlers.lifecycle import reconciler
from modelyard.handlers.trainingjobs import owner_name


def status_caught_up(body: Mapping[str, Any]) -> bool:
    """The status already answers the current spec (``observedGeneration == generation``): a
    MODIFIED event then comes from a status or metadata write -- most often the operator's own
    -- and nothing it decides on has changed (children have their own handlers)."""
    status = body.get("status") or {}
    generation = (body.get("metadata") or {}).get("generation")
    return generation is not None and status.get("observedGeneration") == generation


@kopf.on.event(API_GROUP, API_VERSION, MODEL_DEPLOYMENT_PLURAL)
def model_deployment_changed(
    type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> None:
    if type == "DELETED" or not namespace:
        return
    if type == "MODIFIED" and status_caught_up(body):
        return
    reconciler().model_deployment(namespace, name)


@kopf.on.event("apps", "v1", "deployments", labels={naming.LABEL_COMPONENT: "server"})
def server_deployment_changed(type: str, body: kopf.Body, namespace: str | None, **_: Any) -> None:
    owner = owner_name(body, MODEL_DEPLOYMENT_KIND)
    if owner and namespace:
        reconciler().model_deployment(namespace, owner)


@kopf.on.event("", "v1", "pods", labels={naming.LABEL_COMPONENT: "server"})
def server_pod_changed(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    owner = body.metadata.annotations.get(naming.LABEL_MODEL_DEPLOYMENT)
    if owner and namespace:
        reconciler().model_deployment(namespace, owner)
