"""One idempotent, level-triggered ``reconcile`` per kind: read the object and its children,
ask the pure core what should exist and what the status is, apply, write status if it changed.

Any trigger (the object changed, a child changed, the periodic resync, a restart) calls the same
function with just a namespace and a name; running it twice in a row changes nothing the second
time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ValidationError

from modelyard import naming, serving, training
from modelyard.api import (
    API_GROUP_VERSION,
    MODEL_DEPLOYMENT_KIND,
    TRAINING_JOB_KIND,
    ModelDeploymentSpec,
    ObjectMeta,
)
from modelyard.conditions import now
from modelyard.kube import Kube, namespace_terminating
from modelyard.settings import OperatorSettings

log = logging.getLogger(__name__)


# --- pure helpers --------------------------------------------------------------------------------


def status_dict(status: BaseModel) -> dict[str, Any]:
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")


def status_patch(current: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any] | None:
    """A merge patch turning ``current`` status into ``desired`` (nulls remove stale keys), or
    ``None`` when they are equal: an unchanged status is never written."""
    current = dict(current or {})
    if current == desired:
        return None
    patch: dict[str, Any] = {key: None for key in current if key not in desired}
    patch.update({key: value for key, value in desired.items() if current.get(key) != value})
    return patch


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


def is_finished(job: dict[str, Any]) -> bool:
    return any(training.job_condition(job, type_) is not None for type_ in ("Complete", "Failed"))


def transition(before: str | None, after: str | None) -> tuple[str, bool] | None:
    """An Event (reason, is-warning) when the phase moved, else ``None``."""
    if after is None or before == after:
        return None
    return after, after in ("Failed", "Degraded")


def follows(md: dict[str, Any], training_job: str) -> bool:
    ref = ((md.get("spec") or {}).get("model") or {}).get("trainingJobRef") or {}
    return bool(ref.get("name") == training_job)


# --- the shell -----------------------------------------------------------------------------------


class _Slot:
    """Per object: the lock its reconcile holds, and whether a caller waits for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = False


class Reconciler:
    def __init__(self, kube: Kube, settings: OperatorSettings) -> None:
        self.kube = kube
        self.settings = settings
        self._slots: dict[tuple[str, str, str], _Slot] = {}
        self._guard = threading.Lock()

    @contextmanager
    def _exclusive(self, kind: str, namespace: str, name: str) -> Iterator[bool]:
        """One reconcile per object at a time (an object and its children trigger concurrently),
        and at most one waiting behind it: a caller that finds one already waiting gets
        ``False`` and returns, because the waiting one has not read the object yet and will see
        whatever change this caller was told about (a Deployment's pods alone send a burst).
        A namespace being deleted refuses new objects; that ends the reconcile quietly."""
        key = (kind, namespace, name)
        with self._guard:
            slot = self._slots.setdefault(key, _Slot())
            coalesced = slot.waiting
            slot.waiting = True
        if coalesced:
            yield False
            return
        with slot.lock:
            with self._guard:
                slot.waiting = False
            try:
                yield True
            except ApiException as error:
                if not namespace_terminating(error):
                    raise
                log.debug("%s %s/%s: namespace is being deleted", kind, namespace, name)

    def _write_status(self, body: dict[str, Any], desired: dict[str, Any]) -> None:
        patch = status_patch(body.get("status"), desired)
        if patch is None:
            return
        meta = ObjectMeta.of(body)
        self.kube.patch_status(API_GROUP_VERSION, body["kind"], meta.namespace, meta.name, patch)
        moved = transition((body.get("status") or {}).get("phase"), desired.get("phase"))
        if moved is not None:
            reason, warning = moved
            conditions = desired.get("conditions") or []
            message = next((c.get("message") for c in conditions if c.get("message")), reason)
            self.kube.event(body, reason=reason, message=str(message), warning=warning)

    # --- TrainingJob ----------------------------------------------------------------------------

    def training_job(self, namespace: str, name: str) -> None:
        with self._exclusive(TRAINING_JOB_KIND, namespace, name) as first:
            if not first:
                return
            body = self.kube.get(API_GROUP_VERSION, TRAINING_JOB_KIND, namespace, name)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                return  # gone: owner references let the garbage collector remove the Job
            self._reconcile_training_job(body)

    def _reconcile_training_job(self, body: dict[str, Any]) -> None:
        meta = ObjectMeta.of(body)
        try:
            jobs = [
                job
                for job in self.kube.list(
                    "batch/v1",
                    "Job",
                    meta.namespace,
                    f"{naming.LABEL_TRAINING_JOB}={naming.fit_name(meta.name)}",
                )
                if owned_by(job, meta.uid)
            ]
            generation = training.training_generation(body, jobs)
            desired = training.build_job(body, self.settings, generation=generation)
        except ValidationError as error:
            status = training.invalid_spec_status(body, str(error), at=now())
            self._write_status(body, status_dict(status))
            return
        job_name = desired["metadata"]["name"]
        job = next((j for j in jobs if j["metadata"]["name"] == job_name), None)
        previous = training.previous_status(body)
        finished_and_removed = (
            job is None and previous.job_name == job_name and previous.phase in training.TERMINAL
        )
        if not finished_and_removed and not (job is not None and is_finished(job)):
            job = self._apply_job(desired) or job
        for other in jobs:
            if other["metadata"]["name"] != job_name and not is_finished(other):
                # Superseded by a newer spec: stop training what nobody asked for any more.
                self.kube.delete("batch/v1", "Job", meta.namespace, other["metadata"]["name"])
        pods = self.kube.list("v1", "Pod", meta.namespace, f"job-name={job_name}")
        status = training.training_status(body, job, pods, job_name=job_name, at=now())
        self._write_status(body, status_dict(status))

    def _apply_job(self, desired: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.kube.apply(desired)
        except ApiException as error:
            if error.status == 422:
                # A Job's pod template is immutable; a running Job keeps the template it
                # started with (e.g. after the operator's runtime image setting changed).
                log.warning("Job %s not updated: %s", desired["metadata"]["name"], error.reason)
                return None
            raise

    # --- ModelDeployment ------------------------------------------------------------------------

    def model_deployment(self, namespace: str, name: str) -> None:
        with self._exclusive(MODEL_DEPLOYMENT_KIND, namespace, name) as first:
            if not first:
                return
            body = self.kube.get(API_GROUP_VERSION, MODEL_DEPLOYMENT_KIND, namespace, name)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                return
            self._reconcile_model_deployment(body)

    def _reconcile_model_deployment(self, body: dict[str, Any]) -> None:
        meta = ObjectMeta.of(body)
        try:
            spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            resolution = serving.Resolution(None, "InvalidSpec", str(error)[:512])
            status = serving.serving_status(body, resolution, None, None, [], at=now())
            self._write_status(body, status_dict(status))
            return
        training_job = None
        if spec.model.training_job_ref is not None:
            training_job = self.kube.get(
                API_GROUP_VERSION,
                TRAINING_JOB_KIND,
                meta.namespace,
                spec.model.training_job_ref.name,
            )
        resolution = serving.resolve_model(spec, training_job)
        model = serving.model_to_serve(resolution, serving.previous_status(body).model)
        deployment = None
        if model is not None:
            deployment = self.kube.apply(serving.build_deployment(body, model, self.settings))
            self.kube.apply(serving.build_service(body))
            hpa = serving.build_hpa(body)
            if hpa is not None:
                self.kube.apply(hpa)
            else:
                self.kube.delete(
                    "autoscaling/v2", "HorizontalPodAutoscaler", meta.namespace, meta.name
                )
        selector = ",".join(f"{k}={v}" for k, v in naming.server_selector(meta.name).items())
        pods = self.kube.list("v1", "Pod", meta.namespace, selector) if model else []
        status = serving.serving_status(body, resolution, model, deployment, pods, at=now())
        self._write_status(body, status_dict(status))

    def deployments_following(self, namespace: str, training_job: str) -> None:
        """Re-reconcile every ModelDeployment that follows ``training_job``'s model."""
        for md in self.kube.list(API_GROUP_VERSION, MODEL_DEPLOYMENT_KIND, namespace):
            if follows(md, training_job):
                self.model_deployment(namespace, md["metadata"]["name"])

    # --- resync -----------------------------------------------------------------------------------

    def resync(self, namespaces: list[str]) -> None:
        """Reconcile everything once (also what a restarted operator converges through)."""
        scopes: list[str | None] = list(namespaces) or [None]
        for scope in scopes:
            for kind, reconcile in (
                (TRAINING_JOB_KIND, self.training_job),
                (MODEL_DEPLOYMENT_KIND, self.model_deployment),
            ):
                for item in self.kube.list(API_GROUP_VERSION, kind, scope):
                    meta = item["metadata"]
                    try:
                        reconcile(meta["namespace"], meta["name"])
                    except Exception:  # one broken object must not stop the others
                        log.exception(
                            "resync of %s %s/%s failed", kind, meta["namespace"], meta["name"]
                        )
