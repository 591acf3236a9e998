"""ModelDeployment: which model to serve, the desired Deployment/Service/HPA, and the status its
children imply. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard_runtime import contract
from pydantic import ValidationError

from modelyard import naming
from modelyard.api import (
    Condition,
    LastFailure,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelStatus,
    ObjectMeta,
    ServingPhase,
    TrainingJobStatus,
)
from modelyard.conditions import condition
from modelyard.failures import first_failure
from modelyard.security import pod_security_context, restricted_container_security_context
from modelyard.settings import OperatorSettings

SERVER_CONTAINER = "server"
MODEL_MOUNT = "/mnt/models"
HTTP_PORT = contract.DEFAULT_SERVE_PORT
PRE_STOP_SECONDS = 5  # longer than kube-proxy takes to drop a terminating endpoint

# --- which model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """The model a ModelDeployment's spec points at, or why there is none yet."""

    model: ModelStatus | None
    reason: str
    message: str


def resolve_model(spec: ModelDeploymentSpec, training_job: dict[str, Any] | None) -> Resolution:
    """``storageUri`` names the model directly; ``trainingJobRef`` follows that TrainingJob's
    model, but only once it Succeeded and its validation passed."""
    source = spec.model
    if source.storage_uri is not None:
        uri = source.storage_uri.rstrip("/")
        version = uri.rsplit("/", 1)[-1] if "/" in uri[len("pvc://") :] else uri
        return Resolution(
            ModelStatus(uri=uri, version=version, sha256=source.sha256),
            "ModelResolved",
            f"serving {uri}",
        )
    assert source.training_job_ref is not None
    ref = source.training_job_ref.name
    if training_job is None:
        return Resolution(None, "ModelNotReady", f"TrainingJob {ref} not found")
    try:
        status = TrainingJobStatus.model_validate(training_job.get("status") or {})
    except ValidationError:
        status = TrainingJobStatus()
    gate_failed = (status.validation is not None and not status.validation.passed) or (
        status.last_failure is not None and status.last_failure.reason == "GateNotMet"
    )
    if status.phase == "Failed" and gate_failed:
        return Resolution(
            None, "GateNotMet", f"TrainingJob {ref} trained a model that failed its gate"
        )
    validated = status.validation is not None and status.validation.passed
    if status.phase == "Succeeded" and validated and status.model is not None:
        model = status.model
        return Resolution(
            ModelStatus(uri=model.uri, version=model.version, sha256=model.sha256),
            "ModelResolved",
            f"serving {model.version} from TrainingJob {ref}",
        )
    phase = status.phase or "Pending"
    return Resolution(
        None, "ModelNotReady", f"TrainingJob {ref} has no validated model yet (phase {phase})"
    )


def model_to_serve(resolution: Resolution, previous: ModelStatus | None) -> ModelStatus | None:
    """The resolved model; while there is none (a retrain in progress, a gate not met), keep
    serving the model already rolled out rather than take the endpoint down."""
    return resolution.model if resolution.model is not None else previous


def model_dir(uri: str) -> tuple[str, str]:
    """``pvc://claim/path`` -> (claim, the directory where the server finds it)."""
    claim, path = contract.parse_pvc_uri(uri)
    return claim, "/".join(p for p in (MODEL_MOUNT, path) if p)


# --- spec -> Deployment, Service, HPA ------------------------------------------------------------


def _metadata(meta: ObjectMeta) -> dict[str, Any]:
    return {
        "name": meta.name,
        "namespace": meta.namespace,
        "labels": naming.server_labels(meta.name),
        "ownerReferences": [naming.model_deployment_owner(meta)],
    }


def build_deployment(
    body: dict[str, Any], model: ModelStatus, settings: OperatorSettings
) -> dict[str, Any]:
    """The Deployment running ``modelyard-serve`` on ``model``. With autoscaling the manifest
    has no ``replicas``: the HPA owns that field and server-side apply must not fight it."""
    meta = ObjectMeta.of(body)
    spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    claim, directory = model_dir(model.uri)
    env = [
        {"name": contract.ENV_MODEL_DIR, "value": directory},
        {"name": contract.ENV_MODEL_NAME, "value": meta.name},
        {"name": contract.ENV_PORT, "value": str(HTTP_PORT)},
    ]
    if model.sha256:
        env.append({"name": contract.ENV_EXPECTED_SHA256, "value": model.sha256})
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": spec.image or settings.runtime_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["modelyard-serve"],
        "env": env,
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        # A terminating pod keeps serving while kube-proxy and load balancers drop its
        # endpoint; without the pause a rollout refuses connections for a moment. The sleep
        # action needs no binary in the image (GA in Kubernetes 1.34).
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "volumeMounts": [
            {"name": "models", "mountPath": MODEL_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": restricted_container_security_context(),
    }
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(by_alias=True, exclude_none=True)
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": naming.server_selector(meta.name)},
        "revisionHistoryLimit": 3,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": naming.server_labels(meta.name),
                "annotations": {
                    # A new model changes the pod template, so the Deployment rolls out.
                    naming.ANNOTATION_MODEL_SHA: model.sha256 or "",
                    naming.ANNOTATION_MODEL_URI: model.uri,
                    # The full name (labels are capped at 63 characters) for the pod watcher.
                    naming.LABEL_MODEL_DEPLOYMENT: meta.name,
                },
            },
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security_context(),
                "containers": [container],
                "volumes": [
                    {
                        "name": "models",
                        "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
                    },
                    {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                ],
            },
        },
    }
    if spec.autoscaling is None:
        deployment_spec["replicas"] = spec.desired_replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(meta),
        "spec": deployment_spec,
    }


def build_service(body: dict[str, Any]) -> dict[str, Any]:
    meta = ObjectMeta.of(body)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(meta),
        "spec": {
            "type": "ClusterIP",
            "selector": naming.server_selector(meta.name),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_hpa(body: dict[str, Any]) -> dict[str, Any] | None:
    """An autoscaling/v2 HPA on CPU, or ``None`` when the spec asks for fixed replicas."""
    meta = ObjectMeta.of(body)
    spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    if spec.autoscaling is None:
        return None
    scaling = spec.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(meta),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta.name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


# --- children -> status --------------------------------------------------------------------------


def previous_status(body: dict[str, Any]) -> ModelDeploymentStatus:
    try:
        return ModelDeploymentStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return ModelDeploymentStatus()


def _deployment_condition(deployment: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def rollout_complete(deployment: dict[str, Any], model: ModelStatus, desired: int) -> bool:
    """The Deployment has seen its latest spec, carries ``model`` in its pod template, and
    enough updated pods are available to cover ``desired``."""
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    annotations = template.get("annotations") or {}
    current_model = (
        annotations.get(naming.ANNOTATION_MODEL_SHA, "") == (model.sha256 or "")
        and annotations.get(naming.ANNOTATION_MODEL_URI) == model.uri
    )
    observed = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    old_pods_gone = int(status.get("replicas") or 0) <= updated
    return current_model and observed and old_pods_gone and min(updated, available) >= desired


def serving_status(
    body: dict[str, Any],
    resolution: Resolution,
    model: ModelStatus | None,
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    *,
    at: str,
) -> ModelDeploymentStatus:
    """The ModelDeployment's status: Ready only when the current model's pods cover the desired
    replicas; Progressing while rolling out; Degraded when pods cannot start or keep crashing."""
    meta = ObjectMeta.of(body)
    spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    prev = previous_status(body)

    def make(type_: str, status: Any, reason: str, message: str) -> Condition:
        return condition(
            type_,
            status,
            reason,
            message,
            generation=meta.generation,
            previous=prev.conditions,
            at=at,
        )

    url = naming.service_url(meta.name, meta.namespace)
    if model is None:
        failure = (
            LastFailure(reason="GateNotMet", message=resolution.message)
            if resolution.reason == "GateNotMet"
            else None
        )
        return ModelDeploymentStatus(
            phase="Pending",
            observed_generation=meta.generation,
            conditions=[
                make("Ready", "False", resolution.reason, resolution.message),
                make("Progressing", "False", resolution.reason, resolution.message),
                make(
                    "Degraded",
                    "True" if failure else "False",
                    resolution.reason,
                    resolution.message,
                ),
            ],
            replicas=spec.desired_replicas,
            ready_replicas=0,
            model=None,
            last_failure=failure,
        )

    desired = spec.desired_replicas
    if deployment is not None and spec.autoscaling is not None:
        # The HPA's choice, but never below minReplicas: a new Deployment starts at 1 replica
        # until the HPA controller's first sync scales it up (up to 15 s later).
        chosen = int((deployment.get("spec") or {}).get("replicas") or 0)
        desired = max(desired, chosen)
    ready_replicas = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    ready = deployment is not None and rollout_complete(deployment, model, desired)

    failure = first_failure(pods)
    stalled = _deployment_condition(deployment or {}, "Progressing")
    if failure is None and stalled and stalled.get("reason") == "ProgressDeadlineExceeded":
        failure = LastFailure(
            reason="ProgressDeadlineExceeded", message=str(stalled.get("message") or "")
        )
    waiting = resolution.model is None  # serving the previous model while the new one is not
    if waiting and resolution.reason == "GateNotMet" and failure is None:
        failure = LastFailure(reason="GateNotMet", message=resolution.message)

    phase: ServingPhase
    if ready:
        phase = "Ready"
        ready_cond = make(
            "Ready", "True", "ModelServing", f"{model.version} answers on {desired} replica(s)"
        )
    else:
        phase = "Degraded" if failure else "Progressing"
        ready_cond = make(
            "Ready",
            "False",
            failure.reason if failure else "RollingOut",
            failure.message
            if failure
            else f"{ready_replicas}/{desired} replicas ready for {model.version}",
        )
    progress_message = (
        f"waiting for a validated model: {resolution.message}; still serving {model.version}"
        if waiting
        else f"rolling out {model.version}"
    )
    conditions = [
        ready_cond,
        make(
            "Progressing",
            "False" if ready else "True",
            "RolloutComplete" if ready else "RollingOut",
            progress_message if not ready or waiting else f"{model.version} rolled out",
        ),
        make(
            "Degraded",
            "True" if failure else "False",
            failure.reason if failure else "AsExpected",
            failure.message if failure else "",
        ),
    ]
    return ModelDeploymentStatus(
        phase=phase,
        observed_generation=meta.generation,
        conditions=conditions,
        replicas=desired,
        ready_replicas=ready_replicas,
        url=url,
        model=model,
        last_failure=failure,
    )
