"""TrainingJob: the desired batch/v1 Job, and the status its Job and pods imply. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard_runtime import contract
from modelyard_runtime.spec import SizeLimits
from modelyard_runtime.spec import size_violations as runtime_size_violations
from pydantic import ValidationError

from modelyard import naming
from modelyard.api import (
    Condition,
    DatasetStatus,
    InvalidSpec,
    LastFailure,
    ObjectMeta,
    ResourceRequirements,
    TrainingJob,
    TrainingJobSpec,
    TrainingJobStatus,
    TrainingPhase,
)
from modelyard.conditions import condition
from modelyard.failures import first_failure, newest_first, termination_message
from modelyard.security import pod_security_context, restricted_container_security_context
from modelyard.settings import OperatorSettings

TRAINER_CONTAINER = "trainer"
MODEL_MOUNT = "/mnt/models"
DATA_ROOT = contract.DEFAULT_DATA_ROOT
CHAMPION_ROOT = "/mnt/champion"
TERMINAL: tuple[TrainingPhase, ...] = ("Succeeded", "Failed")
NON_RETRYABLE_REASONS = ("InvalidSpec", "InvalidData", "GateNotMet")

# --- spec -> Job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainerConfig:
    """What the operator's settings decide about every trainer Job."""

    image: str
    pull_policy: str
    default_storage_uri: str
    default_resources: ResourceRequirements
    default_deadline_seconds: int
    size_limits: SizeLimits

    @classmethod
    def of(cls, settings: OperatorSettings) -> TrainerConfig:
        return cls(
            image=settings.runtime_image,
            pull_policy=settings.image_pull_policy,
            default_storage_uri=settings.default_storage_uri,
            default_resources=settings.training_default_resources,
            default_deadline_seconds=settings.training_default_deadline_seconds,
            size_limits=settings.size_limits,
        )


def storage_uri(spec: TrainingJobSpec, name: str, default_storage_uri: str) -> str:
    """``spec.output.storageUri``, or the operator's default with the TrainingJob's name."""
    if spec.output.storage_uri:
        return spec.output.storage_uri.rstrip("/")
    return f"{default_storage_uri.rstrip('/')}/{name}"


def training_generation(tj: TrainingJob, jobs: list[dict[str, Any]]) -> int:
    """The generation whose Job trains the current spec: an existing Job with the same spec hash
    (e.g. only ``suspend`` changed since), else the TrainingJob's current generation."""
    same = [
        int(annotations[naming.ANNOTATION_GENERATION])
        for job in jobs
        if (annotations := (job.get("metadata") or {}).get("annotations") or {}).get(
            naming.ANNOTATION_SPEC_HASH
        )
        == tj.spec_hash
        and str(annotations.get(naming.ANNOTATION_GENERATION, "")).isdigit()
    ]
    return max(same) if same else tj.metadata.generation


# Linux refuses to start a container with one environment string over 128 KiB, before the
# trainer could say why: a spec that large is refused here.
MAX_SPEC_BYTES = 120 * 1024


def size_violations(spec: TrainingJobSpec, limits: SizeLimits) -> list[str]:
    """What in the spec exceeds the operator's size limits (fields named), before any Job."""
    found = runtime_size_violations(spec.training_spec(), limits)
    size = len(spec.training_spec().model_dump_json(by_alias=True, exclude_none=True).encode())
    if size > MAX_SPEC_BYTES:
        found.append(f"spec: {size} bytes as JSON, over the {MAX_SPEC_BYTES} bytes a pod takes")
    return found


def _volumes(
    spec: TrainingJobSpec, output_claim: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The trainer's volumes and mounts: the output claim, the dataset's claim (read-only at
    ``DATA_ROOT/<claim>``) and the champion's (read-only at ``CHAMPION_ROOT/<claim>``). One
    claim is one volume however often it is mounted: two volumes of the same claim would leave
    the pod in ContainerCreating for good."""
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "models", "persistentVolumeClaim": {"claimName": output_claim}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "models", "mountPath": MODEL_MOUNT},
    ]
    claims = {output_claim: "models"}
    for volume, uri, root in (
        ("data", spec.dataset.uri, DATA_ROOT),
        ("champion", spec.champion.storage_uri if spec.champion else None, CHAMPION_ROOT),
    ):
        if uri is None or not uri.startswith("pvc://"):
            continue
        claim, _ = contract.parse_pvc_uri(uri)
        if claim not in claims:
            claims[claim] = volume
            volumes.append(
                {"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
            )
        mounts.append({"name": claims[claim], "mountPath": f"{root}/{claim}", "readOnly": True})
    return volumes, mounts


def champion_env(spec: TrainingJobSpec) -> list[dict[str, str]]:
    """Where the trainer finds the champion (mounted by ``_volumes``) and how to treat it."""
    if spec.champion is None:
        return []
    claim, path = contract.parse_pvc_uri(spec.champion.storage_uri)
    return [
        {
            "name": contract.ENV_CHAMPION_DIR,
            "value": "/".join(p for p in (CHAMPION_ROOT, claim, path) if p),
        },
        {"name": contract.ENV_CHAMPION_SHA256, "value": spec.champion.sha256},
        {
            "name": contract.ENV_SKIP_IF_DATA_UNCHANGED,
            "value": "true" if spec.champion.skip_if_data_unchanged else "false",
        },
    ]


def build_job(
    tj: TrainingJob, config: TrainerConfig, *, generation: int | None = None
) -> dict[str, Any]:
    """The batch/v1 Job that trains ``tj``'s spec (at ``generation``, default the current
    one) with the runtime image's ``modelyard-train``."""
    meta, spec = tj.metadata, tj.spec
    generation = meta.generation if generation is None else generation
    name = naming.job_name(meta.name, generation)
    output_uri = storage_uri(spec, meta.name, config.default_storage_uri)
    output_claim, output_path = contract.parse_pvc_uri(output_uri)
    volumes, mounts = _volumes(spec, output_claim)
    labels = naming.trainer_labels(meta.name)
    env = [
        {
            "name": contract.ENV_TRAINING_SPEC,
            "value": spec.training_spec().model_dump_json(by_alias=True, exclude_none=True),
        },
        {
            "name": contract.ENV_OUTPUT_DIR,
            "value": "/".join(p for p in (MODEL_MOUNT, output_path) if p),
        },
        {"name": contract.ENV_STORAGE_URI, "value": output_uri},
        {"name": contract.ENV_MODEL_VERSION, "value": naming.model_version(generation, meta.uid)},
        {"name": contract.ENV_DATA_ROOT, "value": DATA_ROOT},
        {"name": contract.ENV_RESULT_PATH, "value": contract.DEFAULT_RESULT_PATH},
        {
            "name": contract.ENV_SIZE_LIMITS,
            "value": config.size_limits.model_dump_json(by_alias=True),
        },
        *champion_env(spec),
    ]
    container: dict[str, Any] = {
        "name": TRAINER_CONTAINER,
        "image": config.image,
        "imagePullPolicy": config.pull_policy,
        "command": ["modelyard-train"],
        "env": env,
        "volumeMounts": mounts,
        "terminationMessagePath": contract.DEFAULT_RESULT_PATH,
        "terminationMessagePolicy": "File",
        "securityContext": restricted_container_security_context(),
    }
    # No BestEffort trainer: without spec.resources it gets the operator's defaults.
    resources = spec.resources or config.default_resources
    container["resources"] = resources.model_dump(by_alias=True, exclude_none=True)
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "suspend": spec.suspend,
        "podFailurePolicy": {
            "rules": [
                {
                    # The trainer says the spec or data is wrong, or the gate failed: a retry
                    # would give the same answer.
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": TRAINER_CONTAINER,
                        "operator": "In",
                        "values": sorted(int(c) for c in contract.NON_RETRYABLE_EXIT_CODES),
                    },
                },
                {
                    # Evicted, preempted, node drained: not the trainer's fault, do not count.
                    "action": "Ignore",
                    "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                },
            ]
        },
        "template": {
            "metadata": {
                "labels": labels,
                # The full name (labels are capped at 63 characters) for the pod watcher.
                "annotations": {naming.LABEL_TRAINING_JOB: meta.name},
            },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security_context(),
                "containers": [container],
                "volumes": volumes,
            },
        },
    }
    # Bounded in time whatever the spec says (evictions, ignored by the failure policy above,
    # could otherwise retry for ever).
    job_spec["activeDeadlineSeconds"] = (
        spec.active_deadline_seconds or config.default_deadline_seconds
    )
    if spec.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta.namespace,
            "labels": labels,
            "annotations": {
                naming.ANNOTATION_SPEC_HASH: tj.spec_hash,
                naming.ANNOTATION_GENERATION: str(generation),
            },
            "ownerReferences": [naming.training_job_owner(meta)],
        },
        "spec": job_spec,
    }


@dataclass(frozen=True)
class TrainingPlan:
    """What the shell applies for a TrainingJob: ``apply`` (the Job, when it must be created or
    may still be updated) and ``delete`` (superseded Jobs). ``job`` is the current spec's Job as
    observed, ``None`` when absent or deleted before it ended (it will never report)."""

    job_name: str
    job: dict[str, Any] | None
    apply: dict[str, Any] | None
    delete: tuple[str, ...]


def plan(tj: TrainingJob, jobs: list[dict[str, Any]], config: TrainerConfig) -> TrainingPlan:
    """Decide from the TrainingJob and the Jobs it owns. Raises ``InvalidSpec`` for a spec the
    operator will not train (size limits, a URI it cannot mount).

    A Job recorded in status (``status.jobName``) is never created a second time: once it is
    gone, it is gone (``training_status`` says JobDeleted). A finished Job is not re-applied.
    Jobs of an older spec are deleted: their training is not wanted any more and their record
    is in status; a count/jobs quota must not fill up with old Jobs."""
    too_big = size_violations(tj.spec, config.size_limits)
    if too_big:
        raise InvalidSpec("; ".join(too_big))
    try:
        desired = build_job(tj, config, generation=training_generation(tj, jobs))
    except ValueError as error:  # a URI parse_pvc_uri refuses
        raise InvalidSpec(str(error)) from error
    job_name = desired["metadata"]["name"]
    job = next((j for j in jobs if j["metadata"]["name"] == job_name), None)
    if job is not None and job["metadata"].get("deletionTimestamp") and not is_finished(job):
        job = None
    recorded = tj.status.job_name == job_name
    wanted = not recorded or (job is not None and not is_finished(job))
    return TrainingPlan(
        job_name=job_name,
        job=job,
        apply=desired if wanted else None,
        delete=tuple(j["metadata"]["name"] for j in jobs if j["metadata"]["name"] != job_name),
    )


# --- Job + pods -> status ------------------------------------------------------------------------


def job_condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def is_finished(job: dict[str, Any]) -> bool:
    return any(job_condition(job, type_) is not None for type_ in ("Complete", "Failed"))


def trainer_result(pods: list[dict[str, Any]]) -> contract.TrainerResult | None:
    """The newest result a trainer pod wrote to its termination log (succeeded pods first)."""
    ordered = newest_first(pods)
    ordered.sort(key=lambda p: (p.get("status") or {}).get("phase") != "Succeeded")
    for pod in ordered:
        text = termination_message(pod, TRAINER_CONTAINER)
        if not text:
            continue
        try:
            return contract.TrainerResult.from_termination_message(text)
        except ValidationError:
            continue
    return None


def _conditions(
    phase: TrainingPhase,
    reason: str,
    message: str,
    validation: contract.ValidationResult | None,
    *,
    generation: int,
    previous: list[Condition],
    at: str,
) -> list[Condition]:
    def make(type_: str, status: Any, why: str, text: str) -> Condition:
        return condition(type_, status, why, text, generation=generation, previous=previous, at=at)

    succeeded = {"Succeeded": "True", "Failed": "False"}.get(phase, "Unknown")
    failed = "True" if phase == "Failed" else "False"
    if validation is None:
        validated = make("Validated", "Unknown", "NotValidated", "no validation result yet")
    elif validation.passed:
        validated = make("Validated", "True", "GatePassed", _gate_summary(validation))
    else:
        validated = make("Validated", "False", "GateNotMet", _gate_summary(validation))
    return [
        make("Succeeded", succeeded, reason, message),
        make(
            "Failed",
            failed,
            reason if phase == "Failed" else "NotFailed",
            message if phase == "Failed" else "",
        ),
        validated,
    ]


def _gate_summary(validation: contract.ValidationResult) -> str:
    if not validation.results:
        return "no gate configured"
    parts = []
    for result in validation.results:
        bounds = []
        if result.min is not None:
            bounds.append(f">= {result.min:g}")
        if result.max is not None:
            bounds.append(f"<= {result.max:g}")
        verdict = "ok" if result.passed else "NOT MET"
        parts.append(f"{result.metric}={result.value:.4g} ({' and '.join(bounds)}: {verdict})")
    return "; ".join(parts)


def invalid_spec_status(
    meta: ObjectMeta, prev: TrainingJobStatus, error: InvalidSpec, *, at: str
) -> TrainingJobStatus:
    """A spec the operator cannot train: refused before any Job exists (the CRD let it through,
    e.g. with CEL off, or a limit only the operator knows)."""
    failure = LastFailure(reason="InvalidSpec", message=error.message)
    return TrainingJobStatus(
        phase="Failed",
        observed_generation=meta.generation,
        conditions=_conditions(
            "Failed",
            "InvalidSpec",
            failure.message,
            None,
            generation=meta.generation,
            previous=prev.conditions,
            at=at,
        ),
        model=prev.model,
        last_failure=failure,
    )


def training_status(
    tj: TrainingJob,
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    *,
    job_name: str,
    found: LastFailure | None = None,
    at: str,
) -> TrainingJobStatus:
    """The TrainingJob's status, from its current Job (``None`` if absent), that Job's pods and
    the trainer's termination message. ``found`` is what the shell learnt elsewhere: the API
    server refused the Job (reason ``InvalidSpec`` when the spec earned it), or a Warning
    Event says why no pod starts. ``at`` stamps conditions that change now.

    ``status.jobName`` is set once the Job has been seen, so a Job that vanishes before its
    end was recorded is told apart from one not created yet. A terminal phase is a record:
    once written for a Job, it is never re-derived from pods or a Job that may since be gone
    (TTL, PodGC, node loss). ``status.model`` is the last validated model: a retrain or a
    failed gate leaves it in place, only a generation that passes replaces it."""
    meta, prev, suspend = tj.metadata, tj.status, tj.spec.suspend

    def status(
        phase: TrainingPhase,
        reason: str,
        message: str,
        *,
        failure: LastFailure | None,
        seen: bool,
        **fields: Any,
    ) -> TrainingJobStatus:
        validation = fields.pop("validation", None)
        return TrainingJobStatus(
            phase=phase,
            observed_generation=meta.generation,
            conditions=_conditions(
                phase,
                reason,
                message,
                validation,
                generation=meta.generation,
                previous=prev.conditions,
                at=at,
            ),
            job_name=job_name if seen else None,
            model=fields.pop("model", None) or prev.model,
            validation=validation,
            last_failure=failure,
            **fields,
        )

    if prev.job_name == job_name and prev.phase in TERMINAL:
        return prev.model_copy(update={"observed_generation": meta.generation})

    if job is None:
        if prev.job_name == job_name:
            failure = LastFailure(
                reason="JobDeleted",
                message=(
                    f"Job {job_name} was deleted before its result was recorded (by hand, or "
                    "ttlSecondsAfterFinished passed while the operator was away); it is not "
                    "re-run: change the spec to train again"
                ),
            )
            return status(
                "Failed",
                failure.reason,
                failure.message,
                failure=failure,
                seen=True,
                attempts=prev.attempts,
                start_time=prev.start_time,
            )
        if found is not None and found.reason == "InvalidSpec":
            # Refused by the API server for what the spec says: no retry can help.
            return status("Failed", found.reason, found.message, failure=found, seen=True)
        phase: TrainingPhase = "Suspended" if suspend else "Pending"
        reason = "Suspended" if suspend else "JobPending"
        message = f"creating Job {job_name}"
        if found is not None:
            reason, message = found.reason, f"creating Job {job_name}: {found.message}"
        return status(phase, reason, message, failure=found, seen=False)

    job_status = job.get("status") or {}
    result = trainer_result(pods)
    pod_failure = first_failure(pods) or found
    attempts = sum(int(job_status.get(k) or 0) for k in ("succeeded", "failed", "active"))
    complete = job_condition(job, "Complete")
    failed = job_condition(job, "Failed")
    validation = result.validation if result else None
    last_failure: LastFailure | None = None

    if complete is not None:
        if result is None and not pods:
            # The pod (and the result in its termination message) went before it was read:
            # a model may be on the volume, but nothing vouches for it.
            phase, reason = "Failed", "ResultLost"
            message = (
                "the trainer pod was deleted before its result was read (PodGC, node loss, "
                "kubectl delete); its model is not trusted: change the spec to train again"
            )
            last_failure = LastFailure(reason=reason, message=message)
        elif result is not None and result.reason == "DataUnchanged":
            phase, reason, message = "Succeeded", "DataUnchanged", result.message
        elif result is None or not result.succeeded or result.model is None:
            phase, reason = "Failed", "NoResult"
            message = "the trainer exited 0 but left no usable result in its termination log"
            last_failure = LastFailure(reason=reason, message=message)
        elif validation is not None and not validation.passed:
            phase, reason = "Failed", "GateNotMet"
            message = f"validation gate not met: {_gate_summary(validation)}"
            last_failure = LastFailure(reason=reason, message=message)
        else:
            phase, reason = "Succeeded", "Trained"
            message = f"model {result.model.version} stored at {result.model.uri}"
    elif failed is not None:
        phase = "Failed"
        job_reason = str(failed.get("reason") or "JobFailed")
        job_message = str(failed.get("message") or job_reason)
        said = result if (result is not None and not result.succeeded) else None
        if said is not None and said.reason in NON_RETRYABLE_REASONS:
            reason, message = said.reason, said.message or job_message
        else:
            reason, message = job_reason, job_message
        if job_reason == "DeadlineExceeded":
            last_failure = LastFailure(
                reason="DeadlineExceeded",
                message=job_message,
                pod=pod_failure.pod if pod_failure else None,
            )
        elif pod_failure is not None:
            if said is not None and pod_failure.reason != "OOMKilled":
                # The trainer's own words beat the raw termination message (its JSON).
                pod_failure = pod_failure.model_copy(
                    update={"reason": said.reason, "message": said.message}
                )
            text = pod_failure.message
            if job_reason == "BackoffLimitExceeded":
                text = f"BackoffLimitExceeded after {attempts} attempts; last: {text}"
            last_failure = pod_failure.model_copy(update={"message": text[:512]})
        else:
            last_failure = LastFailure(reason=job_reason, message=job_message)
    elif suspend or job_condition(job, "Suspended") is not None:
        phase, reason, message = "Suspended", "Suspended", "the Job is suspended"
        last_failure = pod_failure
    else:
        running = int(job_status.get("active") or 0) > 0 and any(
            (p.get("status") or {}).get("phase") == "Running" for p in pods
        )
        # Once running, a Job stays Running until it ends: a finished pod the Job controller
        # has not counted yet, or the next attempt's pod starting, is not a step back.
        if not running and prev.phase == "Running" and prev.job_name == job_name:
            running = True
        phase = "Running" if running else "Pending"
        reason = "Training" if running else "PodPending"
        limit = int((job.get("spec") or {}).get("backoffLimit") or 0)
        message = f"attempt {max(attempts, 1)} of at most {limit + 1}"
        last_failure = pod_failure
        if pod_failure is not None:
            reason, message = pod_failure.reason, pod_failure.message

    succeeded_model = result.model if (result and phase == "Succeeded") else None
    reported = ("Succeeded", "GateNotMet", "DataUnchanged")
    report = result if (result and result.reason in reported) else None
    return status(
        phase,
        reason,
        message,
        failure=last_failure,
        seen=True,
        validation=validation,
        attempts=attempts,
        start_time=job_status.get("startTime"),
        completion_time=job_status.get("completionTime"),
        model=succeeded_model,
        metrics=dict(report.metrics) if report and report.metrics else None,
        best_params=report.best_params if report else None,
        dataset=DatasetStatus.of(report.dataset) if report and report.dataset else None,
        comparison=report.comparison if report else None,
    )
