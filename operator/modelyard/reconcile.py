"""One idempotent, level-triggered ``reconcile`` per kind: read the object and its children,
ask the pure core what should exist and what the status is, apply, write status if it changed.

Any trigger (the object changed, a child changed, the periodic resync, a restart) calls the same
function with just a namespace and a name; running it twice in a row changes nothing the second
time. Whatever the API server refuses for a child (an invalid name or resources, a quota, an
admission webhook, RBAC) ends in the object's status and an Event, never only in a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ValidationError

from modelyard import mergepatch, naming, serving, training
from modelyard.api import (
    API_GROUP_VERSION,
    MODEL_DEPLOYMENT_KIND,
    TRAINING_JOB_KIND,
    LastFailure,
    ModelDeploymentSpec,
    ModelStatus,
    ObjectMeta,
    model_deployment_name_error,
)
from modelyard.conditions import now
from modelyard.failures import event_failure, waiting_to_start
from modelyard.kube import Kube, namespace_terminating, rejection, user_caused
from modelyard.locks import ObjectLocks
from modelyard.settings import OperatorSettings

log = logging.getLogger(__name__)


def status_dict(status: BaseModel) -> dict[str, Any]:
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")


def transition(before: str | None, after: str | None) -> tuple[str, bool] | None:
    """An Event (reason, is-warning) when the phase moved, else ``None``."""
    if after is None or before == after:
        return None
    return after, after in ("Failed", "Degraded")


def follows(md: dict[str, Any], training_job: str) -> bool:
    ref = ((md.get("spec") or {}).get("model") or {}).get("trainingJobRef") or {}
    return bool(ref.get("name") == training_job)


@contextmanager
def _unless_namespace_terminating() -> Iterator[None]:
    """A namespace being deleted refuses new objects; that ends the reconcile quietly (the
    namespace takes our objects and their children with it)."""
    try:
        yield
    except ApiException as error:
        if not namespace_terminating(error):
            raise
        log.debug("namespace is being deleted: %s", error.reason)


class ChildRefused(Exception):
    """A child could not be applied for a reason the user can act on (see ``failure``)."""

    def __init__(self, failure: LastFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Reconciler:
    def __init__(self, kube: Kube, settings: OperatorSettings) -> None:
        self.kube = kube
        self.settings = settings
        self.locks = ObjectLocks()

    def _write_status(self, body: dict[str, Any], desired: dict[str, Any]) -> None:
        patch = mergepatch.diff(body.get("status"), desired)
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

    def _apply_child(self, owner_uid: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``manifest`` unless an object of that name exists that this owner
        does not control (a user's own Service or HPA is never taken over). Raises
        ``ChildRefused`` for a conflict or a refusal the user can act on."""
        kind, meta = manifest["kind"], manifest["metadata"]
        live = self.kube.get(manifest["apiVersion"], kind, meta["namespace"], meta["name"])
        if live is not None and naming.controller_uid(live) != owner_uid:
            raise ChildRefused(
                LastFailure(
                    reason="NameConflict",
                    message=(
                        f"a {kind} named {meta['name']} already exists and is not this "
                        "object's; rename one of them (it is left untouched)"
                    ),
                )
            )
        try:
            return self.kube.apply(manifest)
        except ApiException as error:
            if not user_caused(error) or namespace_terminating(error):
                raise
            reason, message = rejection(error)
            raise ChildRefused(
                LastFailure(reason=reason, message=f"{kind} {meta['name']}: {message}"[:512])
            ) from error

    def _delete_child(
        self, owner_uid: str, api_version: str, kind: str, ns: str, name: str
    ) -> None:
        """Delete a child we no longer want; an object of that name we do not own stays."""
        live = self.kube.get(api_version, kind, ns, name)
        if live is not None and naming.controller_uid(live) == owner_uid:
            self.kube.delete(api_version, kind, ns, name)

    # --- TrainingJob ----------------------------------------------------------------------------

    def training_job(self, namespace: str, name: str) -> None:
        with self.locks.exclusive(TRAINING_JOB_KIND, namespace, name) as first:
            if not first:
                return
            body = self.kube.get(API_GROUP_VERSION, TRAINING_JOB_KIND, namespace, name)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                return  # gone: owner references let the garbage collector remove the Job
            with _unless_namespace_terminating():
                self._reconcile_training_job(body)

    def _reconcile_training_job(self, body: dict[str, Any]) -> None:
        meta = ObjectMeta.of(body)
        jobs = [
            job
            for job in self.kube.list(
                "batch/v1",
                "Job",
                meta.namespace,
                f"{naming.LABEL_TRAINING_JOB}={naming.fit_name(meta.name)}",
            )
            if naming.controller_uid(job) == meta.uid
        ]
        try:
            generation = training.training_generation(body, jobs)
            desired = training.build_job(body, self.settings, generation=generation)
            too_big = training.size_violations(body, self.settings.size_limits)
        except (ValidationError, ValueError) as error:  # ValueError: a URI parse_pvc_uri refuses
            too_big = [str(error)]
        if too_big:
            status = training.invalid_spec_status(body, "; ".join(too_big), at=now())
            self._write_status(body, status_dict(status))
            return
        job_name = desired["metadata"]["name"]
        job = next((j for j in jobs if j["metadata"]["name"] == job_name), None)
        being_deleted = job is not None and job["metadata"].get("deletionTimestamp")
        if job is not None and being_deleted and not training.is_finished(job):
            job = None  # deleted before it ended: it will never report
        previous = training.previous_status(body)
        found: LastFailure | None = None
        recorded = previous.job_name == job_name  # seen before: never created a second time
        if not recorded or (job is not None and not training.is_finished(job)):
            try:
                job = self._apply_job(desired, exists=job is not None) or job
            except ChildRefused as refused:
                found = refused.failure
        for other in jobs:
            if other["metadata"]["name"] != job_name:
                # Superseded by a newer spec: its training is not wanted any more, and its
                # record is in status; a count/jobs quota must not fill up with old Jobs.
                self.kube.delete("batch/v1", "Job", meta.namespace, other["metadata"]["name"])
        pods = (
            self.kube.list("v1", "Pod", meta.namespace, f"job-name={job_name}")
            if job is not None
            else []
        )
        if found is None and job is not None and not training.is_finished(job):
            found = self._why_not_started(meta.namespace, job_name, pods)
        status = training.training_status(body, job, pods, job_name=job_name, found=found, at=now())
        self._write_status(body, status_dict(status))

    def _apply_job(self, desired: dict[str, Any], *, exists: bool) -> dict[str, Any] | None:
        try:
            return self._apply_child(desired["metadata"]["ownerReferences"][0]["uid"], desired)
        except ChildRefused as refused:
            cause = refused.__cause__
            if exists and isinstance(cause, ApiException) and cause.status == 422:
                # A Job's pod template is immutable; a running Job keeps the template it
                # started with (e.g. after the operator's runtime image setting changed).
                log.info("Job %s keeps its template: %s", desired["metadata"]["name"], cause)
                return None
            if isinstance(cause, ApiException) and cause.status in (400, 422):
                raise ChildRefused(
                    refused.failure.model_copy(update={"reason": "InvalidSpec"})
                ) from cause
            raise

    def _why_not_started(
        self, namespace: str, job_name: str, pods: list[dict[str, Any]]
    ) -> LastFailure | None:
        """What Warning Events say about a Job with no pod (quota, LimitRange) or a pod that
        does not start (a volume that will not mount): looked up only in those states."""
        if not pods:
            return event_failure(self.kube.events_about(namespace, "Job", job_name))
        stuck = [p for p in pods if waiting_to_start(p)]
        if not stuck:
            return None
        return event_failure(self.kube.events_about(namespace, "Pod", stuck[0]["metadata"]["name"]))

    # --- ModelDeployment ------------------------------------------------------------------------

    def model_deployment(self, namespace: str, name: str) -> None:
        with self.locks.exclusive(MODEL_DEPLOYMENT_KIND, namespace, name) as first:
            if not first:
                return
            body = self.kube.get(API_GROUP_VERSION, MODEL_DEPLOYMENT_KIND, namespace, name)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                return
            with _unless_namespace_terminating():
                self._reconcile_model_deployment(body)

    def _reconcile_model_deployment(self, body: dict[str, Any]) -> None:
        meta = ObjectMeta.of(body)
        invalid = model_deployment_name_error(meta.name)
        try:
            spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            invalid = str(error)
        else:
            if spec.image is not None and not self.settings.image_allowed(spec.image):
                invalid = (
                    f"spec.image {spec.image!r} is not allowed by the operator "
                    "(MODELYARD_ALLOWED_IMAGES)"
                )
        if invalid is not None:
            resolution = serving.Resolution(None, "InvalidSpec", invalid[:512])
            invalid_spec = LastFailure(reason="InvalidSpec", message=invalid[:512])
            status = serving.serving_status(
                body, resolution, None, None, [], refused=invalid_spec, at=now()
            )
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
        live = self.kube.get("apps/v1", "Deployment", meta.namespace, meta.name)
        if live is not None and naming.controller_uid(live) != meta.uid:
            live = None  # someone else's: _apply_child reports the conflict
        served = serving.served_model(live) or serving.previous_status(body).model
        model = serving.model_to_serve(resolution, served)
        deployment, hpa = live, None
        refused: LastFailure | None = None
        if model is not None:
            try:
                deployment, hpa = self._apply_serving_children(body, spec, model, live)
            except ChildRefused as error:
                refused = error.failure
            except ValueError as error:  # a model URI that parse_pvc_uri refuses
                refused = LastFailure(reason="InvalidSpec", message=str(error)[:512])
        pods: list[dict[str, Any]] = []
        if model is not None:
            selector = ",".join(f"{k}={v}" for k, v in naming.server_selector(meta.name).items())
            pods = self.kube.list("v1", "Pod", meta.namespace, selector)
            if refused is None:
                stuck = [p for p in pods if waiting_to_start(p)]
                if stuck:
                    events = self.kube.events_about(
                        meta.namespace, "Pod", stuck[0]["metadata"]["name"]
                    )
                    refused = event_failure(events)
        status = serving.serving_status(
            body, resolution, model, deployment, pods, refused=refused, hpa=hpa, at=now()
        )
        self._write_status(body, status_dict(status))

    def _apply_serving_children(
        self,
        body: dict[str, Any],
        spec: ModelDeploymentSpec,
        model: ModelStatus,
        live: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Apply the Deployment, Service, HPA and PodDisruptionBudget; the live Deployment and
        HPA (``None`` without autoscaling) as the API server returned them."""
        meta = ObjectMeta.of(body)
        replicas = serving.deployment_replicas(spec, live)
        deployment = self._apply_child(
            meta.uid, serving.build_deployment(body, model, self.settings, replicas=replicas)
        )
        self._apply_child(meta.uid, serving.build_service(body))
        applied: dict[str, dict[str, Any]] = {}
        for api_version, kind, manifest in (
            ("autoscaling/v2", "HorizontalPodAutoscaler", serving.build_hpa(body)),
            ("policy/v1", "PodDisruptionBudget", serving.build_pdb(body)),
        ):
            if manifest is not None:
                applied[kind] = self._apply_child(meta.uid, manifest)
            else:
                self._delete_child(meta.uid, api_version, kind, meta.namespace, meta.name)
        return deployment, applied.get("HorizontalPodAutoscaler")

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
