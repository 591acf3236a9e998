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

from modelyard import mergepatch, naming, retraining, rollout, serving, training
from modelyard.api import (
    API_GROUP_VERSION,
    MODEL_DEPLOYMENT_KIND,
    TRAINING_JOB_KIND,
    InvalidSpec,
    LastFailure,
    ModelDeployment,
    ModelDeploymentStatus,
    ObjectMeta,
    TrainingJob,
    TrainingJobStatus,
    previous_serving_status,
    previous_training_status,
)
from modelyard.canary_monitor import CanarySchedule, Step
from modelyard.conditions import now, parse_time
from modelyard.drift_monitor import Schedule
from modelyard.events import phase_event
from modelyard.failures import event_failure, waiting_to_start
from modelyard.followers import Followers
from modelyard.kstatus import with_kstatus
from modelyard.kube import Kube, namespace_terminating, rejection, user_caused
from modelyard.locks import ObjectLocks
from modelyard.operator_metrics import OperatorMetrics
from modelyard.settings import OperatorSettings

log = logging.getLogger(__name__)


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
    """The shell: observe (read the object and its children), ask the pure core
    (``training.plan``/``serving.plan``, then ``*_status``), apply what it says, write status."""

    def __init__(
        self, kube: Kube, settings: OperatorSettings, metrics: OperatorMetrics | None = None
    ) -> None:
        self.kube = kube
        self.metrics = metrics or OperatorMetrics()
        self.trainer = training.TrainerConfig.of(settings)
        self.server = serving.ServerConfig.of(settings)
        self.locks = ObjectLocks()
        self.followers = Followers()
        self.drift_schedule = Schedule()  # which ModelDeployments the drift monitor checks
        self.canary_schedule = CanarySchedule()  # which canary steps the canary monitor judges
        self.retrainers = Followers()  # which ModelDeployment waits for which retraining

    def _write_status(
        self,
        body: dict[str, Any],
        before: str | None,
        status: TrainingJobStatus | ModelDeploymentStatus,
    ) -> None:
        """Patch what changed in status (an RFC 7386 merge patch: a field that went away is
        removed), with kstatus' Reconciling and Stalled conditions, and post the Event of a
        phase transition from ``before``, if any."""
        meta = ObjectMeta.model_validate(body["metadata"])
        previous = (
            previous_training_status(body)
            if isinstance(status, TrainingJobStatus)
            else previous_serving_status(body)
        )
        status = with_kstatus(
            status, generation=meta.generation, previous=previous.conditions, at=now()
        )
        desired = status.model_dump(by_alias=True, exclude_none=True, mode="json")
        self.metrics.objects.observe(body["kind"], meta.namespace, meta.name, desired)
        patch = mergepatch.diff(body.get("status"), desired)
        if patch is None:
            return
        self.kube.patch_status(API_GROUP_VERSION, body["kind"], meta.namespace, meta.name, patch)
        event = phase_event(before, status)
        if event is not None:
            self.kube.event(body, reason=event.reason, message=event.message, warning=event.warning)

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
        """Delete a child we no longer want; an object of that name we do not own stays.
        Raises ``ChildRefused`` for a refusal the user can act on (RBAC, admission)."""
        live = self.kube.get(api_version, kind, ns, name)
        if live is None or naming.controller_uid(live) != owner_uid:
            return
        try:
            self.kube.delete(api_version, kind, ns, name)
        except ApiException as error:
            if not user_caused(error) or namespace_terminating(error):
                raise
            reason, message = rejection(error)
            raise ChildRefused(
                LastFailure(reason=reason, message=f"{kind} {name}: {message}"[:512])
            ) from error

    def _stuck_pod_failure(self, namespace: str, pods: list[dict[str, Any]]) -> LastFailure | None:
        """What Warning Events say about a pod that does not start (a volume that will not
        mount): looked up only in that state."""
        stuck = [p for p in pods if waiting_to_start(p)]
        if not stuck:
            return None
        return event_failure(self.kube.events_about(namespace, "Pod", stuck[0]["metadata"]["name"]))

    # --- TrainingJob ----------------------------------------------------------------------------

    def training_job(self, namespace: str, name: str) -> None:
        with (
            self.metrics.reconcile(TRAINING_JOB_KIND) as outcome,
            self.locks.exclusive(TRAINING_JOB_KIND, namespace, name) as first,
        ):
            if not first:
                outcome.result = "coalesced"
                return
            body = self.kube.get(API_GROUP_VERSION, TRAINING_JOB_KIND, namespace, name)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                # gone: owner references let the garbage collector remove the Job
                self.metrics.objects.forget(TRAINING_JOB_KIND, namespace, name)
                return
            with _unless_namespace_terminating():
                self._reconcile_training_job(body)

    def _reconcile_training_job(self, body: dict[str, Any]) -> None:
        before = previous_training_status(body)
        try:
            tj = TrainingJob.parse(body)
            jobs = self._owned_jobs(tj.metadata)
            plan = training.plan(tj, jobs, self.trainer)
        except InvalidSpec as error:
            meta = ObjectMeta.model_validate(body["metadata"])
            invalid = training.invalid_spec_status(meta, before, error, at=now())
            self._write_status(body, before.phase, invalid)
            return
        ns = tj.metadata.namespace
        job, found = plan.job, None
        if plan.apply is not None:
            try:
                job = self._apply_job(plan.apply, exists=job is not None) or job
            except ChildRefused as refused:
                found = refused.failure
        for superseded in plan.delete:
            self.kube.delete("batch/v1", "Job", ns, superseded)
        pods = self.kube.list("v1", "Pod", ns, f"job-name={plan.job_name}") if job else []
        if found is None and job is not None and not training.is_finished(job):
            if pods:
                found = self._stuck_pod_failure(ns, pods)
            else:  # no pod at all: a quota or LimitRange refused it (the Job's Events say)
                found = event_failure(self.kube.events_about(ns, "Job", plan.job_name))
        status = training.training_status(
            tj, job, pods, job_name=plan.job_name, found=found, at=now()
        )
        self._write_status(body, before.phase, status)

    def _owned_jobs(self, meta: ObjectMeta) -> list[dict[str, Any]]:
        selector = f"{naming.LABEL_TRAINING_JOB}={naming.fit_name(meta.name)}"
        return [
            job
            for job in self.kube.list("batch/v1", "Job", meta.namespace, selector)
            if naming.controller_uid(job) == meta.uid
        ]

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

    # --- ModelDeployment ------------------------------------------------------------------------

    def model_deployment(self, namespace: str, name: str) -> None:
        with (
            self.metrics.reconcile(MODEL_DEPLOYMENT_KIND) as outcome,
            self.locks.exclusive(MODEL_DEPLOYMENT_KIND, namespace, name) as first,
        ):
            if not first:
                outcome.result = "coalesced"
                return
            body = self.kube.get(API_GROUP_VERSION, MODEL_DEPLOYMENT_KIND, namespace, name)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                self.followers.set(namespace, name, None)
                self.drift_schedule.set(namespace, name, None)
                self.canary_schedule.set(namespace, name, None)
                self.retrainers.set(namespace, name, None)
                self.metrics.objects.forget(MODEL_DEPLOYMENT_KIND, namespace, name)
                return
            with _unless_namespace_terminating():
                self._reconcile_model_deployment(body)

    def _reconcile_model_deployment(self, body: dict[str, Any]) -> None:
        before = previous_serving_status(body)
        at = now()
        try:
            md = ModelDeployment.parse(body)
            meta = md.metadata
            ref = md.spec.model.training_job_ref
            self.followers.set(meta.namespace, meta.name, ref.name if ref else None)
            self.drift_schedule.set(meta.namespace, meta.name, md.spec.drift)
            training_job = None
            if ref is not None:
                tj_body = self.kube.get(
                    API_GROUP_VERSION, TRAINING_JOB_KIND, meta.namespace, ref.name
                )
                training_job = previous_training_status(tj_body) if tj_body else None
            retrained = self._plan_retraining(md, training_job, at)
            live = self.kube.get("apps/v1", "Deployment", meta.namespace, meta.name)
            if live is not None and naming.controller_uid(live) != meta.uid:
                live = None  # someone else's: _apply_child reports the conflict
            selector = ",".join(f"{k}={v}" for k, v in naming.server_selector(meta.name).items())
            pods = self.kube.list("v1", "Pod", meta.namespace, selector)
            canary = md.spec.canary
            judged = Step.of(md.status.rollout, canary.analysis) if canary else None
            plan = serving.plan(
                md,
                training_job,
                live,
                self.server,
                canary_pods=[pod for pod in pods if naming.is_canary_pod(pod)],
                check=self.canary_schedule.check_for(meta.namespace, meta.name, judged),
                retrained=retraining.resolution(retrained),
                direct=retrained.direct,
                at=at,
            )
        except InvalidSpec as error:
            meta = ObjectMeta.model_validate(body["metadata"])
            invalid = serving.invalid_spec_status(meta, before, error, at=at)
            self._write_status(body, before.phase, invalid)
            return
        decided = plan.rollout.status if plan.rollout is not None else None
        self.canary_schedule.set(
            meta.namespace, meta.name, Step.of(decided, canary.analysis) if canary else None
        )
        deployment, hpa, refused = live, None, None
        try:
            for manifest in plan.apply:
                applied = self._apply_child(meta.uid, manifest)
                if manifest["kind"] == "Deployment" and manifest["metadata"]["name"] == meta.name:
                    deployment = applied
                elif manifest["kind"] == "HorizontalPodAutoscaler":
                    hpa = applied
            for api_version, kind, name in plan.delete:
                self._delete_child(meta.uid, api_version, kind, meta.namespace, name)
            retrained = self._apply_retraining(md, retrained)
        except ChildRefused as error:
            refused = error.failure
        if plan.model is None:
            pods = []
        elif refused is None:
            refused = self._stuck_pod_failure(meta.namespace, pods)
        status = serving.serving_status(
            md,
            plan.resolution,
            plan.model,
            deployment,
            pods,
            refused=refused,
            hpa=hpa,
            canary=decided,
            at=at,
        )
        if md.spec.retraining is not None:
            retrained = retraining.settle(retrained, status, md.spec.retraining, at)
            status = retraining.with_retraining(md, status, retrained, at=at)
        self._write_status(body, before.phase, status)
        events = [rollout.transition_event(before.rollout, status.rollout), *retrained.events]
        for event in events:
            if event is not None:
                self.kube.event(
                    body, reason=event.reason, message=event.message, warning=event.warning
                )

    def _plan_retraining(
        self, md: ModelDeployment, training_job: TrainingJobStatus | None, at: str
    ) -> retraining.RetrainingPlan:
        """Observe what spec.retraining decides on (its TrainingJobs, the template's spec) and
        ask the core."""
        meta, retrain = md.metadata, md.spec.retraining
        if retrain is None:
            self.retrainers.set(meta.namespace, meta.name, None)
            return retraining.plan(md, None, [], None, now=parse_time(at), at=at)
        selector = f"{naming.LABEL_RETRAINING_FOR}={naming.fit_name(meta.name)}"
        challengers = [
            found
            for body in self.kube.list(
                API_GROUP_VERSION, TRAINING_JOB_KIND, meta.namespace, selector
            )
            if naming.controller_uid(body) == meta.uid
            and (found := retraining.Challenger.of(body)) is not None
        ]
        template, problem = self._retraining_template(md)
        decided = retraining.plan(
            md,
            serving.resolve_model(md.spec, training_job).model,
            challengers,
            template,
            template_error=problem,
            now=parse_time(at),
            at=at,
        )
        watched = decided.status.active_job if decided.status else None
        self.retrainers.set(meta.namespace, meta.name, watched)
        return decided

    def _retraining_template(self, md: ModelDeployment) -> tuple[dict[str, Any] | None, str]:
        """The spec a retraining TrainingJob copies, checked as a TrainingJob's would be."""
        retrain = md.spec.retraining
        if retrain is None:
            return None, ""
        source = retrain.template
        if source.spec is not None:
            return source.spec.model_dump(by_alias=True, exclude_none=True, mode="json"), ""
        ref = source.training_job_ref.name if source.training_job_ref else ""
        body = self.kube.get(API_GROUP_VERSION, TRAINING_JOB_KIND, md.metadata.namespace, ref)
        if body is None:
            return None, f"retraining.template: TrainingJob {ref} not found"
        try:
            TrainingJob.parse(body)
        except InvalidSpec as error:
            return None, f"retraining.template: TrainingJob {ref}: {error.message}"
        return dict(body.get("spec") or {}), ""

    def _apply_retraining(
        self, md: ModelDeployment, decided: retraining.RetrainingPlan
    ) -> retraining.RetrainingPlan:
        """Create the retraining TrainingJob the core asked for, delete the ones past
        ``historyLimit``. A refused create is a stalled retraining, not a lost trigger: the
        next reconcile asks again."""
        meta = md.metadata
        if decided.create is not None:
            try:
                self._apply_child(meta.uid, decided.create)
            except ChildRefused as refused:
                return retraining.refused(decided, refused.failure.message)
        for name in decided.delete:
            self._delete_child(meta.uid, API_GROUP_VERSION, TRAINING_JOB_KIND, meta.namespace, name)
        return decided

    def deployments_following(self, namespace: str, training_job: str) -> None:
        """Re-reconcile the ModelDeployments that follow ``training_job``'s model, or wait for
        it as a retraining."""
        waiting = self.retrainers.of(namespace, training_job)
        for name in sorted({*self.followers.of(namespace, training_job), *waiting}):
            self.model_deployment(namespace, name)

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
