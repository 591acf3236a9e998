"""ModelDeployment handlers: any change to a ModelDeployment or one of its children (Deployment,
pods, Service, HPA, PodDisruptionBudget) reconciles it (a TrainingJob it follows reconciles it
too, see ``trainingjobs``)."""

from __future__ import annotations

from typing import Any

import kopf

from modelyard import API_GROUP, API_VERSION, naming
from modelyard.api import MODEL_DEPLOYMENT_KIND, MODEL_DEPLOYMENT_PLURAL, status_caught_up
from modelyard.handlers.lifecycle import state


@kopf.on.event(API_GROUP, API_VERSION, MODEL_DEPLOYMENT_PLURAL)
def model_deployment_changed(
    type: str, body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    shared = state(memo)
    if shared is None or type == "DELETED" or not namespace:
        return
    if type == "MODIFIED" and status_caught_up(body):
        return
    shared.run(shared.reconciler.model_deployment, namespace, name)


def _child_changed(body: kopf.Body, namespace: str | None, memo: kopf.Memo) -> None:
    shared = state(memo)
    owner = naming.owner_name(dict(body), MODEL_DEPLOYMENT_KIND)
    if shared is not None and owner and namespace:
        shared.run(shared.reconciler.model_deployment, namespace, owner)


@kopf.on.event("apps", "v1", "deployments", labels={naming.LABEL_COMPONENT: "server"})
def server_deployment_changed(
    body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    _child_changed(body, namespace, memo)


@kopf.on.event("", "v1", "services", labels={naming.LABEL_COMPONENT: "server"})
def server_service_changed(
    body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    _child_changed(body, namespace, memo)


@kopf.on.event(
    "autoscaling", "v2", "horizontalpodautoscalers", labels={naming.LABEL_COMPONENT: "server"}
)
def server_hpa_changed(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    _child_changed(body, namespace, memo)


@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels={naming.LABEL_COMPONENT: "server"})
def server_pdb_changed(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    _child_changed(body, namespace, memo)


@kopf.on.event("", "v1", "pods", labels={naming.LABEL_COMPONENT: "server"})
def server_pod_changed(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    shared = state(memo)
    # A pod's controller is its ReplicaSet; the full ModelDeployment name is in an annotation.
    owner = body.metadata.annotations.get(naming.LABEL_MODEL_DEPLOYMENT)
    if shared is not None and owner and namespace:
        shared.run(shared.reconciler.model_deployment, namespace, owner)
