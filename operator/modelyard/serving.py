"""ModelDeployment: which model to serve, the desired Deployment/Service/HPA, and the status its
children imply. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelyard_runtime import contract

from modelyard import FIELD_MANAGER, monitoring, naming, rollout
from modelyard.api import (
    CanaryAnalysisStatus,
    Condition,
    InvalidSpec,
    LastFailure,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelStatus,
    ObjectMeta,
    RolloutStatus,
    ServerSpec,
    ServingPhase,
    TrainingJobStatus,
)
from modelyard.conditions import condition, parse_time
from modelyard.failures import first_failure
from modelyard.rollout import RolloutPlan
from modelyard.security import pod_security_context, restricted_container_security_context
from modelyard.settings import OperatorSettings

SERVER_CONTAINER = "server"
MODEL_MOUNT = "/mnt/models"
HTTP_PORT = contract.DEFAULT_SERVE_PORT
PRE_STOP_SECONDS = 5  # longer than kube-proxy takes to drop a terminating endpoint
STARTUP_SECONDS = 600  # the longest a model may take to verify, load and warm up


@dataclass(frozen=True)
class ServerConfig:
    """What the operator's settings decide about every model server."""

    image: str  # the runtime image, used unless spec.image names another
    pull_policy: str
    allowed_images: tuple[str, ...]  # what spec.image may name besides ``image``; "*": any

    @classmethod
    def of(cls, settings: OperatorSettings) -> ServerConfig:
        return cls(
            image=settings.runtime_image,
            pull_policy=settings.image_pull_policy,
            allowed_images=tuple(settings.allowed_images),
        )

    def image_allowed(self, image: str) -> bool:
        return image == self.image or "*" in self.allowed_images or image in self.allowed_images


# --- which model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """The model a ModelDeployment's spec points at, or why there is none yet."""

    model: ModelStatus | None
    reason: str
    message: str


def resolve_model(spec: ModelDeploymentSpec, training_job: TrainingJobStatus | None) -> Resolution:
    """``storageUri`` names the model directly; ``trainingJobRef`` follows that TrainingJob's
    ``status.model`` (``training_job`` is its status, ``None`` when it does not exist): its
    last validated model, which a retrain or a generation that fails its gate leaves in
    place."""
    source = spec.model
    if source.storage_uri is not None:
        uri = source.storage_uri.rstrip("/")
        version = uri.rsplit("/", 1)[-1] if "/" in uri[len("pvc://") :] else uri
        runtime = None if spec.server.runtime == "Auto" else spec.server.runtime
        return Resolution(
            ModelStatus(uri=uri, version=version, sha256=source.sha256, runtime=runtime),
            "ModelResolved",
            f"serving {uri}",
        )
    if source.training_job_ref is None:  # ModelSource's own validator rules this out
        raise ValueError("model: set exactly one of trainingJobRef or storageUri")
    ref = source.training_job_ref.name
    if training_job is None:
        return Resolution(None, "TrainingJobNotFound", f"TrainingJob {ref} not found")
    status = training_job
    gate_failed = status.phase == "Failed" and (
        (status.validation is not None and not status.validation.passed)
        or (status.last_failure is not None and status.last_failure.reason == "GateNotMet")
    )
    if status.model is not None:
        model = status.model
        note = " (its latest generation failed its gate)" if gate_failed else ""
        return Resolution(
            ModelStatus(
                uri=model.uri,
                version=model.version,
                sha256=model.sha256,
                runtime=runtime_of(spec.server.runtime, model),
            ),
            "ModelResolved",
            f"serving {model.version}, the last validated model of TrainingJob {ref}{note}",
        )
    if gate_failed:
        return Resolution(
            None, "GateNotMet", f"TrainingJob {ref} trained a model that failed its gate"
        )
    phase = status.phase or "Pending"
    return Resolution(
        None, "ModelNotReady", f"TrainingJob {ref} has no validated model yet (phase {phase})"
    )


def runtime_of(
    choice: contract.RuntimeChoice, model: contract.ModelRef
) -> contract.RuntimeName | None:
    """What a server asked for ``choice`` runs on ``model`` (a trainer's report of it), by the
    rule the server applies to the artifact (``contract.served_runtime``); ``None`` when the
    report predates compiled runtimes, or ``onnx`` is asked of a model without it (the servers
    refuse it: ModelLoadFailed says why)."""
    if choice != "Auto":
        return choice if choice == "sklearn" or model.onnx else None
    return model.auto_runtime


def model_to_serve(resolution: Resolution, served: ModelStatus | None) -> ModelStatus | None:
    """The resolved model; while there is none (a TrainingJob with no validated model yet),
    keep serving the model already rolled out rather than take the endpoint down."""
    return resolution.model if resolution.model is not None else served


def served_model(deployment: dict[str, Any] | None) -> ModelStatus | None:
    """The model a live Deployment's pod template carries: the truth of what is served, which
    a lost status write cannot roll back."""
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    uri = annotations.get(naming.ANNOTATION_MODEL_URI)
    if not uri:
        return None
    return ModelStatus(
        uri=uri,
        version=annotations.get(naming.ANNOTATION_MODEL_VERSION) or uri.rsplit("/", 1)[-1],
        sha256=annotations.get(naming.ANNOTATION_MODEL_SHA) or None,
    )


def model_dir(uri: str) -> tuple[str, str]:
    """``pvc://claim/path`` -> (claim, the directory where the server finds it)."""
    claim, path = contract.parse_pvc_uri(uri)
    return claim, "/".join(p for p in (MODEL_MOUNT, path) if p)


# --- spec -> Deployment, Service, HPA ------------------------------------------------------------


def _metadata(meta: ObjectMeta, *, canary: bool = False) -> dict[str, Any]:
    return {
        "name": naming.canary_name(meta.name) if canary else meta.name,
        "namespace": meta.namespace,
        "labels": _labels(meta, canary=canary),
        "ownerReferences": [naming.model_deployment_owner(meta)],
    }


def _labels(meta: ObjectMeta, *, canary: bool) -> dict[str, str]:
    labels = naming.server_labels(meta.name)
    return {**labels, naming.LABEL_ARM: naming.ARM_CANARY} if canary else labels


def deployment_replicas(spec: ModelDeploymentSpec, live: dict[str, Any] | None) -> int | None:
    """``spec.replicas`` to apply, or ``None`` to leave the field to the HPA.

    With autoscaling, dropping ``replicas`` from our applied config while we are its only
    manager would reset it to 1 (server-side apply's ownership rule): N-1 pods gone until the
    HPA's next sync. So we keep applying the live count, clamped to the HPA's range, until
    another manager (the HPA controller, through the scale subresource) owns the field."""
    if spec.autoscaling is None:
        return spec.desired_replicas
    if live is not None and replicas_managed_by_others(live):
        return None
    scaling = spec.autoscaling
    current = int(((live or {}).get("spec") or {}).get("replicas") or scaling.min_replicas)
    return min(max(current, scaling.min_replicas), scaling.max_replicas)


def replicas_managed_by_others(deployment: dict[str, Any]) -> bool:
    for entry in (deployment.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER:
            continue
        if "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {}):
            return True
    return False


def server_env(server: ServerSpec) -> list[dict[str, str]]:
    """What ``spec.server`` asks of the server, where it differs from the server's own
    defaults (the same values: no variable, and no rollout when the operator upgrades)."""
    defaults = ServerSpec()
    asked = [
        (contract.ENV_RUNTIME, server.runtime, defaults.runtime),
        (contract.ENV_BATCHING, server.batching.mode, defaults.batching.mode),
        (
            contract.ENV_MAX_BATCH_SIZE,
            server.batching.max_batch_size,
            defaults.batching.max_batch_size,
        ),
        (
            contract.ENV_MAX_BATCH_DELAY_US,
            server.batching.max_delay_microseconds,
            defaults.batching.max_delay_microseconds,
        ),
    ]
    return [
        {"name": name, "value": str(value)} for name, value, default in asked if value != default
    ]


def build_deployment(
    md: ModelDeployment,
    model: ModelStatus,
    config: ServerConfig,
    *,
    replicas: int | None,
    canary: bool = False,
) -> dict[str, Any]:
    """The Deployment running ``modelyard-serve`` on ``model`` (``replicas`` from
    ``deployment_replicas``: ``None`` leaves the field to the HPA). The ``canary`` one has its
    own name and an arm label in its selector; its pods match the same Service."""
    meta, spec = md.metadata, md.spec
    claim, directory = model_dir(model.uri)
    env = [
        {"name": contract.ENV_MODEL_DIR, "value": directory},
        {"name": contract.ENV_MODEL_NAME, "value": meta.name},
        {"name": contract.ENV_PORT, "value": str(HTTP_PORT)},
    ]
    if model.sha256:
        env.append({"name": contract.ENV_EXPECTED_SHA256, "value": model.sha256})
    env.extend(server_env(spec.server))
    if spec.drift is not None:  # each pod keeps a window of recent rows for the drift monitor
        window = spec.drift.window
        env.append({"name": contract.ENV_DRIFT_WINDOW, "value": str(window.size)})
        env.append(
            {"name": contract.ENV_DRIFT_MAX_AGE_SECONDS, "value": str(window.max_age_seconds)}
        )
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": spec.image or config.image,
        "imagePullPolicy": config.pull_policy,
        "command": ["modelyard-serve"],
        "env": env,
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        # The port opens only once the model is verified, loaded and warmed up; the startup
        # probe gives that up to STARTUP_SECONDS before liveness may restart the container.
        "startupProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "periodSeconds": 2,
            "timeoutSeconds": 3,
            "failureThreshold": STARTUP_SECONDS // 2,
        },
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 5,
            # orjson holds the GIL for a whole parse (~0.5 s at the 8 MiB body limit).
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        # A server that refuses its model writes why to the termination log; its last log
        # lines stand in if it died before it could.
        "terminationMessagePolicy": "FallbackToLogsOnError",
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
    selector = naming.server_selector(meta.name)
    if canary:
        selector = {**selector, naming.LABEL_ARM: naming.ARM_CANARY}
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "revisionHistoryLimit": 3,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": _labels(meta, canary=canary),
                "annotations": {
                    # A new model changes the pod template, so the Deployment rolls out.
                    naming.ANNOTATION_MODEL_SHA: model.sha256 or "",
                    naming.ANNOTATION_MODEL_URI: model.uri,
                    naming.ANNOTATION_MODEL_VERSION: model.version,
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
    if replicas is not None:
        deployment_spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(meta, canary=canary),
        "spec": deployment_spec,
    }


def build_service(md: ModelDeployment) -> dict[str, Any]:
    meta = md.metadata
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


def build_hpa(md: ModelDeployment) -> dict[str, Any] | None:
    """An autoscaling/v2 HPA on CPU, or ``None`` when the spec asks for fixed replicas."""
    meta, scaling = md.metadata, md.spec.autoscaling
    if scaling is None:
        return None
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


def build_pdb(md: ModelDeployment) -> dict[str, Any] | None:
    """A PodDisruptionBudget of one pod at a time when two or more replicas are asked for (a
    node drain then never takes every server at once), else ``None``."""
    meta = md.metadata
    if md.spec.desired_replicas < 2:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(meta),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": naming.server_selector(meta.name)},
        },
    }


@dataclass(frozen=True)
class ServingPlan:
    """What the shell applies for a ModelDeployment, in order (``apply``: the Deployment, the
    canary Deployment while there is one, the Service, then HPA and PodDisruptionBudget when
    wanted), and the ``(apiVersion, kind, name)`` of children no longer wanted (``delete``).
    ``model`` is what the stable Deployment serves; with none (no validated model yet, nothing
    served) nothing is applied. ``rollout`` is the canary decision (``None`` with no model)."""

    resolution: Resolution
    model: ModelStatus | None
    apply: tuple[dict[str, Any], ...]
    delete: tuple[tuple[str, str, str], ...]
    rollout: RolloutPlan | None = None


def desired_replicas(spec: ModelDeploymentSpec, deployment: dict[str, Any] | None) -> int:
    """The stable replicas wanted: ``spec.replicas``, or the HPA's current choice but never
    below minReplicas (a new Deployment starts there until the HPA controller's first sync)."""
    desired = spec.desired_replicas
    if deployment is not None and spec.autoscaling is not None:
        chosen = int((deployment.get("spec") or {}).get("replicas") or 0)
        desired = max(desired, chosen)
    return desired


def plan(
    md: ModelDeployment,
    training_job: TrainingJobStatus | None,
    live: dict[str, Any] | None,
    config: ServerConfig,
    *,
    canary_pods: list[dict[str, Any]] | None = None,
    check: CanaryAnalysisStatus | None = None,
    retrained: Resolution | None = None,
    direct: bool = False,
    at: str = "",
) -> ServingPlan:
    """Decide from the ModelDeployment, the status of the TrainingJob it follows (``None``
    when absent or not followed), its live stable Deployment (``None`` when absent or not
    ours), the pods of its canary and the canary monitor's latest ``check`` of the current
    step. ``retrained`` is the model spec.retraining serves instead of spec.model's (its
    champion, or a challenger on its way), ``direct`` whether that challenger skips the canary.
    Raises ``InvalidSpec`` for an image the operator does not allow or a model URI it cannot
    mount."""
    meta, spec = md.metadata, md.spec
    if spec.image is not None and not config.image_allowed(spec.image):
        raise InvalidSpec(
            f"spec.image {spec.image!r} is not allowed by the operator (MODELYARD_ALLOWED_IMAGES)"
        )
    resolution = retrained or resolve_model(spec, training_job)
    # What the live pod template carries is the truth of what is served (a lost status write
    # cannot roll it back); the last status stands in when the Deployment is gone.
    served = served_model(live) or md.status.model
    model = model_to_serve(resolution, served)
    canary_delete = ("apps/v1", "Deployment", naming.canary_name(meta.name))
    if model is None:
        return ServingPlan(resolution, None, (), ())
    wanted = desired_replicas(spec, live)
    prev_canary = md.status.rollout.canary if md.status.rollout is not None else None
    decision = rollout.decide(
        None if direct else spec.rollout,
        generation=meta.generation,
        prev=md.status.rollout,
        desired=model,
        stable=served,
        stable_replicas=wanted,
        stable_rolled_out=live is not None and rollout_complete(live, model, wanted),
        autoscaled=spec.autoscaling is not None,
        check=check,
        canary_failure=first_failure(canary_pods or []),
        canary_ready=len(ready_server_pods(canary_pods or [], prev_canary)) if prev_canary else 0,
        now=parse_time(at) if at else datetime.now(UTC),
        at=at,
    )
    replicas = deployment_replicas(spec, live)
    if replicas is not None and decision.stable_floor is not None:
        replicas = max(replicas, decision.stable_floor)
    try:
        apply = [build_deployment(md, decision.stable, config, replicas=replicas)]
        if decision.canary is not None:
            apply.append(
                build_deployment(
                    md, decision.canary, config, replicas=decision.canary_replicas, canary=True
                )
            )
    except ValueError as error:  # a model URI that parse_pvc_uri refuses
        raise InvalidSpec(str(error)) from error
    apply.append(build_service(md))
    delete = [] if decision.canary is not None else [canary_delete]
    for api_version, kind, manifest in (
        ("autoscaling/v2", "HorizontalPodAutoscaler", build_hpa(md)),
        ("policy/v1", "PodDisruptionBudget", build_pdb(md)),
    ):
        if manifest is not None:
            apply.append(manifest)
        else:
            delete.append((api_version, kind, meta.name))
    return ServingPlan(resolution, decision.stable, tuple(apply), tuple(delete), decision)


# --- children -> status --------------------------------------------------------------------------


def _deployment_condition(deployment: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def rollout_complete(deployment: dict[str, Any], model: ModelStatus, desired: int) -> bool:
    """The Deployment carries ``model`` in its pod template, and enough updated pods are
    available to cover ``desired``. Whether the Deployment controller has observed its latest
    generation is not asked: a spec change that keeps the model (a touched field, a new
    image) must not flap Ready, and one that changes the model leaves pods of the old model,
    which ``pods_of_other_models`` finds."""
    status = deployment.get("status") or {}
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    old_pods_gone = int(status.get("replicas") or 0) <= updated
    served = served_model(deployment)
    same = served is not None and (served.uri, served.version, served.sha256) == (
        model.uri,
        model.version,
        model.sha256,
    )  # not the runtime: the template's annotations name the artifact, not what serves it
    return same and old_pods_gone and min(updated, available) >= desired


def observed(deployment: dict[str, Any] | None) -> bool:
    meta = (deployment or {}).get("metadata") or {}
    status = (deployment or {}).get("status") or {}
    return int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)


def ready_server_pods(pods: list[dict[str, Any]], model: ModelStatus | None = None) -> list[str]:
    """The pods that are Ready and not terminating, of ``model`` when given (a pod of the
    previous model has a window of another model's traffic)."""
    names = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        annotations = meta.get("annotations") or {}
        if model is not None and annotations.get(naming.ANNOTATION_MODEL_URI) != model.uri:
            continue
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            names.append(str(meta["name"]))
    return sorted(names)


def pods_of_other_models(pods: list[dict[str, Any]], model: ModelStatus) -> list[str]:
    """Server pods, terminating ones included, that carry another model: until they are gone
    a kept-alive connection may still be answered by the old model (the Deployment's
    ``status.replicas`` no longer counts terminating pods)."""
    names = []
    for pod in pods:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        sha = annotations.get(naming.ANNOTATION_MODEL_SHA, "")
        if annotations.get(naming.ANNOTATION_MODEL_URI) != model.uri or sha != (model.sha256 or ""):
            names.append(str((pod.get("metadata") or {}).get("name")))
    return names


def deployment_failure(deployment: dict[str, Any] | None) -> LastFailure | None:
    """What the Deployment's own conditions say is wrong: its ReplicaSet cannot create pods
    (quota, LimitRange, admission), or the rollout passed its progress deadline."""
    replica_failure = _deployment_condition(deployment or {}, "ReplicaFailure")
    if replica_failure and replica_failure.get("status") == "True":
        return LastFailure(
            reason=str(replica_failure.get("reason") or "ReplicaFailure"),
            message=str(replica_failure.get("message") or "")[:512],
        )
    stalled = _deployment_condition(deployment or {}, "Progressing")
    if stalled and stalled.get("reason") == "ProgressDeadlineExceeded":
        return LastFailure(
            reason="ProgressDeadlineExceeded", message=str(stalled.get("message") or "")[:512]
        )
    return None


def scaling_failure(hpa: dict[str, Any] | None) -> LastFailure | None:
    """The HPA cannot scale (e.g. FailedGetResourceMetric: no metrics server, or no CPU
    request): the model answers, but autoscaling does not work."""
    for cond in (hpa or {}).get("status", {}).get("conditions") or []:
        if cond.get("type") in ("AbleToScale", "ScalingActive") and cond.get("status") == "False":
            return LastFailure(
                reason=str(cond.get("reason") or cond["type"]),
                message=f"autoscaling: {cond.get('message') or ''}"[:512],
            )
    return None


def invalid_spec_status(
    meta: ObjectMeta, prev: ModelDeploymentStatus, error: InvalidSpec, *, at: str
) -> ModelDeploymentStatus:
    """A spec the operator cannot serve: nothing is applied; Ready=False with InvalidSpec."""
    failure = LastFailure(reason="InvalidSpec", message=error.message)

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

    return ModelDeploymentStatus(
        phase="Degraded",
        observed_generation=meta.generation,
        conditions=[
            make("Ready", "False", failure.reason, failure.message),
            make("Progressing", "False", failure.reason, failure.message),
            make("Degraded", "True", failure.reason, failure.message),
        ],
        ready_replicas=0,
        last_failure=failure,
    )


def serving_status(
    md: ModelDeployment,
    resolution: Resolution,
    model: ModelStatus | None,
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    *,
    refused: LastFailure | None = None,
    hpa: dict[str, Any] | None = None,
    canary: RolloutStatus | None = None,
    at: str,
) -> ModelDeploymentStatus:
    """The ModelDeployment's status. Ready only when pods of the model the *current* spec
    names cover the desired replicas (at least one), no pod of another model is left, and
    every child exists as asked; Progressing while rolling out, waiting for a model or while a
    canary (``canary``: the rollout decided this reconcile) takes a share of the traffic;
    Degraded when something refuses (the API server: ``refused``), pods cannot start or keep
    crashing, an HPA cannot scale (Degraded, though Ready may hold) or a canary was rolled
    back (with ``Stalled``)."""
    meta, spec, prev = md.metadata, md.spec, md.status

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

    desired = desired_replicas(spec, deployment)

    if model is None:
        failure = refused
        if failure is None and resolution.reason == "GateNotMet":
            failure = LastFailure(reason="GateNotMet", message=resolution.message)
        why = failure or LastFailure(reason=resolution.reason, message=resolution.message)
        return ModelDeploymentStatus(
            phase="Degraded" if failure else "Pending",
            observed_generation=meta.generation,
            conditions=[
                make("Ready", "False", why.reason, why.message),
                make("Progressing", "False", resolution.reason, resolution.message),
                make(
                    "Degraded",
                    "True" if failure else "False",
                    why.reason if failure else "AsExpected",
                    why.message if failure else "",
                ),
            ],
            replicas=desired,
            ready_replicas=0,
            model=None,
            last_failure=failure,
        )

    ready_replicas = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    stable_pods = [pod for pod in pods if not naming.is_canary_pod(pod)]
    leftovers = pods_of_other_models(stable_pods, model)
    waiting = resolution.model is None  # still serving the previous model, the spec's is not
    rolled_out = deployment is not None and rollout_complete(deployment, model, desired)
    failure = (
        refused
        or first_failure(stable_pods)
        or deployment_failure(deployment)
        or scaling_failure(hpa)
    )
    if waiting and resolution.reason == "GateNotMet" and failure is None:
        failure = LastFailure(reason="GateNotMet", message=resolution.message)
    ready = rolled_out and not leftovers and not waiting and desired > 0 and refused is None

    phase: ServingPhase
    if ready:
        phase = "Ready"
        ready_cond = make(
            "Ready", "True", "ModelServing", f"{model.version} answers on {desired} replica(s)"
        )
    elif failure is not None:
        phase = "Degraded"
        ready_cond = make("Ready", "False", failure.reason, failure.message)
    elif desired == 0:
        phase = "Pending"
        ready_cond = make("Ready", "False", "ScaledToZero", "replicas is 0: no replica answers")
    elif waiting:
        phase = "Progressing"
        ready_cond = make(
            "Ready",
            "False",
            resolution.reason,
            f"{resolution.message}; still serving {model.version}",
        )
    else:
        phase = "Progressing"
        message = f"{ready_replicas}/{desired} replicas ready for {model.version}"
        if rolled_out and leftovers:
            message = f"{model.version} rolled out; waiting for {', '.join(leftovers)} to stop"
        ready_cond = make("Ready", "False", "RollingOut", message)

    if waiting:
        progress = make(
            "Progressing",
            "True",
            "WaitingForModel",
            f"waiting for a model: {resolution.message}; still serving {model.version}",
        )
    elif (ready or desired == 0) and observed(deployment):
        progress = make("Progressing", "False", "RolloutComplete", f"{model.version} rolled out")
    else:
        progress = make("Progressing", "True", "RollingOut", f"rolling out {model.version}")
    stalled = None
    if canary is not None:
        stall = _stall(canary, resolution)
        stalled = make("Stalled", "True" if stall else "False", *(stall or ("AsExpected", "")))
        override = _canary_override(canary, resolution, model) if failure is None else None
        if override is not None:
            phase, reason, message, failure = override
            ready_cond = make("Ready", "False", reason, message)
            progress = make(
                "Progressing",
                "False" if failure is not None else "True",
                reason,
                canary.message or reason,
            )
    conditions = [
        ready_cond,
        progress,
        make(
            "Degraded",
            "True" if failure else "False",
            failure.reason if failure else "AsExpected",
            failure.message if failure else "",
        ),
    ]
    if stalled is not None:
        conditions.append(stalled)
    # The drift monitor's last verdict on the model served now (it writes status.drift itself);
    # it adds the DataDrift condition and never touches Ready.
    drift = prev.drift
    if spec.drift is None or drift is None or drift.model_version != model.version:
        drift = None
    else:
        conditions.append(make(monitoring.CONDITION_TYPE, *monitoring.condition_of(drift)))
    return ModelDeploymentStatus(
        phase=phase,
        observed_generation=meta.generation,
        conditions=conditions,
        replicas=desired,
        ready_replicas=ready_replicas,
        url=naming.service_url(meta.name, meta.namespace),
        model=model,
        last_failure=failure,
        drift=drift,
        rollout=canary,
    )


def _rejected(canary: RolloutStatus, resolution: Resolution) -> bool:
    """The rollout rolled back the very model the spec still names."""
    return canary.phase == "RolledBack" and rollout.same_model(canary.canary, resolution.model)


def _stall(canary: RolloutStatus, resolution: Resolution) -> tuple[str, str] | None:
    if _rejected(canary, resolution):
        return canary.reason or "RolledBack", canary.message or ""
    return None


def _canary_override(
    canary: RolloutStatus, resolution: Resolution, stable: ModelStatus
) -> tuple[ServingPhase, str, str, LastFailure | None] | None:
    """``(phase, Ready's reason, its message, the failure)`` while a canary decides what is
    served: the spec's model answers only a share of the requests, or was rolled back."""
    if _rejected(canary, resolution):
        message = f"{canary.message}; {stable.version} keeps serving"
        return (
            "Degraded",
            "CanaryRolledBack",
            message,
            LastFailure(reason="CanaryRolledBack", message=message[:512]),
        )
    if canary.phase not in rollout.ACTIVE or canary.canary is None:
        return None
    if canary.phase == "Paused" and canary.reason == "AnalysisFailed":
        message = f"{canary.message}; paused at {canary.desired_weight}% (autoRollback is off)"
        return (
            "Degraded",
            "CanaryPaused",
            message,
            LastFailure(reason="CanaryAnalysisFailed", message=message[:512]),
        )
    reason = {"Promoting": "CanaryPromoting", "Paused": "AwaitingApproval"}.get(
        canary.phase, "CanaryInProgress"
    )
    message = f"{canary.message}; {stable.version} serves the rest"
    return "Progressing", reason, message, None
