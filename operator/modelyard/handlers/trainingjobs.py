"""TrainingJob handlers: any change to a TrainingJob, its Job or its pods reconciles it, and
then the ModelDeployments that follow it (their model may have changed, or gone)."""

from __future__ import annotations

from typing import Any

import kopf

from modelyard import API_GROUP, API_VERSION, naming
from modelyard.api import TRAINING_JOB_KIND, TRAINING_JOB_PLURAL, status_caught_up
from modelyard.handlers.lifecycle import State, state


def reconcile(shared: State, namespace: str, name: str) -> None:
    shared.run(shared.reconciler.training_job, namespace, name)
    shared.run(shared.reconciler.deployments_following, namespace, name)


@kopf.on.event(API_GROUP, API_VERSION, TRAINING_JOB_PLURAL)
def training_job_changed(
    type: str, body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    shared = state(memo)
    if shared is None or not namespace:
        return
    if type == "DELETED":
        # Its followers lose their model source: their status must say so now.
        shared.run(shared.reconciler.deployments_following, namespace, name)
        return
    if type == "MODIFIED" and status_caught_up(body):
        return  # our own status write: the reconcile that wrote it also ran the followers
    reconcile(shared, namespace, name)


@kopf.on.event("batch", "v1", "jobs", labels={naming.LABEL_COMPONENT: "trainer"})
def trainer_job_changed(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    shared = state(memo)
    owner = naming.owner_name(dict(body), TRAINING_JOB_KIND)
    if shared is not None and owner and namespace:
        reconcile(shared, namespace, owner)


@kopf.on.event("", "v1", "pods", labels={naming.LABEL_COMPONENT: "trainer"})
def trainer_pod_changed(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    shared = state(memo)
    owner = body.metadata.annotations.get(naming.LABEL_TRAINING_JOB)
    if shared is not None and owner and namespace:
        reconcile(shared, namespace, owner)
