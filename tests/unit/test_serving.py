"""ModelDeployment: model resolution, Deployment/Service/HPA builders, status. Table-driven."""

from __future__ import annotations

from typing import Any

import pytest
from factories import SHA, model_deployment, pod
from modelyard import naming, serving
from modelyard.api import (
    InvalidSpec,
    ModelDeployment,
    ModelDeploymentStatus,
    ModelStatus,
    TrainingJobStatus,
)
from modelyard.settings import OperatorSettings
from modelyard_runtime import contract

SETTINGS = OperatorSettings(runtime_image="runtime:1")
AT = "2024-01-02T03:04:05Z"
MODEL = ModelStatus(uri="pvc://models/iris/v1-01234567", version="v1-01234567", sha256=SHA)

TJ_SUCCEEDED = {
    "phase": "Succeeded",
    "model": {"uri": MODEL.uri, "version": MODEL.version, "sha256": SHA},
    "validation": {"passed": True, "results": []},
}
TJ_GATE_FAILED = {
    "phase": "Failed",
    "validation": {"passed": False, "results": []},
    "lastFailure": {"reason": "GateNotMet", "message": "accuracy too low"},
}


CONFIG = serving.ServerConfig.of(SETTINGS)


def md(spec: dict[str, Any] | None = None, **kwargs: Any) -> ModelDeployment:
    return ModelDeployment.parse(model_deployment(spec, **kwargs))


# --- resolution ----------------------------------------------------------------------------------

RESOLUTIONS = [
    ("job succeeded and validated", TJ_SUCCEEDED, "ModelResolved", MODEL.version),
    ("job still running", {"phase": "Running"}, "ModelNotReady", None),
    ("job failed its gate", TJ_GATE_FAILED, "GateNotMet", None),
    (
        "job failed otherwise",
        {"phase": "Failed", "lastFailure": {"reason": "OOMKilled"}},
        "ModelNotReady",
        None,
    ),
    # status.model is the last validated model: only a passing generation ever writes it
    (
        "retraining, its last model kept",
        {"phase": "Running", "model": TJ_SUCCEEDED["model"]},
        "ModelResolved",
        MODEL.version,
    ),
    (
        "next generation failed its gate, last model kept",
        {**TJ_GATE_FAILED, "model": TJ_SUCCEEDED["model"]},
        "ModelResolved",
        MODEL.version,
    ),
    ("job not found", None, "TrainingJobNotFound", None),
]


@pytest.mark.parametrize(
    ("case", "tj_status", "reason", "version"), RESOLUTIONS, ids=[r[0] for r in RESOLUTIONS]
)
def test_training_job_ref_follows_the_last_validated_model(
    case: str, tj_status: dict[str, Any] | None, reason: str, version: str | None
) -> None:
    tj = None if tj_status is None else TrainingJobStatus.model_validate(tj_status)
    resolution = serving.resolve_model(md().spec, tj)
    assert resolution.reason == reason, case
    assert (resolution.model.version if resolution.model else None) == version


def test_storage_uri_resolves_directly_with_its_pin() -> None:
    body = md({"model": {"storageUri": "pvc://models/iris/v7", "sha256": SHA}})
    resolution = serving.resolve_model(body.spec, None)
    assert resolution.model == ModelStatus(uri="pvc://models/iris/v7", version="v7", sha256=SHA)


REF = {"uri": MODEL.uri, "version": MODEL.version, "sha256": SHA}
RUNTIMES = [
    # (spec.server.runtime, the trainer's report, what status.model.runtime says)
    ("Auto", {"autoRuntime": "onnx", "onnx": True}, "onnx"),
    ("Auto", {"autoRuntime": "sklearn", "onnx": True}, "sklearn"),  # compiled, not faster
    ("Auto", {}, None),  # a report from before compiled runtimes: only the server knows
    ("sklearn", {"autoRuntime": "onnx", "onnx": True}, "sklearn"),
    ("onnx", {"autoRuntime": "sklearn", "onnx": True}, "onnx"),
    ("onnx", {"autoRuntime": "sklearn", "onnx": False}, None),  # the servers refuse it
]


@pytest.mark.parametrize(("choice", "report", "runtime"), RUNTIMES)
def test_the_runtime_in_status_is_what_the_servers_run(
    choice: str, report: dict[str, Any], runtime: str | None
) -> None:
    spec = {"model": {"trainingJobRef": {"name": "iris"}}, "server": {"runtime": choice}}
    tj = TrainingJobStatus.model_validate({**TJ_SUCCEEDED, "model": {**REF, **report}})
    resolved = serving.resolve_model(md(spec).spec, tj).model
    assert resolved is not None and resolved.runtime == runtime


def test_the_servers_are_told_the_runtime_unless_it_is_their_default() -> None:
    def env_of(spec: dict[str, Any]) -> dict[str, str]:
        manifest = serving.build_deployment(md(spec), MODEL, CONFIG, replicas=1)
        return {e["name"]: e["value"] for e in container(manifest)["env"]}

    source = {"trainingJobRef": {"name": "iris"}}
    assert contract.ENV_RUNTIME not in env_of({"model": source})  # Auto: no rollout on upgrade
    assert env_of({"model": source, "server": {"runtime": "onnx"}})[contract.ENV_RUNTIME] == "onnx"
    storage = md(
        {"model": {"storageUri": "pvc://models/iris/v7"}, "server": {"runtime": "sklearn"}}
    )
    assert serving.resolve_model(storage.spec, None).model.runtime == "sklearn"  # type: ignore[union-attr]


def test_previous_model_keeps_serving_while_the_next_is_not_ready() -> None:
    waiting = serving.Resolution(None, "ModelNotReady", "retraining")
    assert serving.model_to_serve(waiting, MODEL) == MODEL
    assert serving.model_to_serve(waiting, None) is None
    newer = MODEL.model_copy(update={"version": "v2-01234567"})
    assert serving.model_to_serve(serving.Resolution(newer, "ModelResolved", ""), MODEL) == newer


# --- builders ------------------------------------------------------------------------------------


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def test_deployment_serves_the_model_read_only() -> None:
    manifest = serving.build_deployment(md(), MODEL, CONFIG, replicas=1)
    c = container(manifest)
    env = {e["name"]: e["value"] for e in c["env"]}
    assert c["command"] == ["modelyard-serve"]
    assert c["image"] == "runtime:1"
    assert env[contract.ENV_MODEL_DIR] == "/mnt/models/iris/v1-01234567"
    assert env[contract.ENV_MODEL_NAME] == "iris"
    assert env[contract.ENV_EXPECTED_SHA256] == SHA
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    volumes = {v["name"]: v for v in manifest["spec"]["template"]["spec"]["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert {"name": "models", "mountPath": "/mnt/models", "readOnly": True} in c["volumeMounts"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    pod_security = manifest["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert manifest["spec"]["replicas"] == 1
    assert manifest["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    selector = manifest["spec"]["selector"]["matchLabels"]
    assert selector.items() <= manifest["spec"]["template"]["metadata"]["labels"].items()


def test_a_new_model_changes_the_pod_template() -> None:
    first = serving.build_deployment(md(), MODEL, CONFIG, replicas=1)
    newer = MODEL.model_copy(update={"sha256": "b" * 64, "version": "v2"})
    second = serving.build_deployment(md(), newer, CONFIG, replicas=1)
    annotations = second["spec"]["template"]["metadata"]["annotations"]
    assert annotations[naming.ANNOTATION_MODEL_SHA] == "b" * 64
    assert first["spec"]["template"] != second["spec"]["template"]


def test_unpinned_storage_uri_sets_no_expected_sha() -> None:
    model = ModelStatus(uri="pvc://models/x/v3", version="v3")
    manifest = serving.build_deployment(md(), model, CONFIG, replicas=1)
    names = [e["name"] for e in container(manifest)["env"]]
    assert contract.ENV_EXPECTED_SHA256 not in names


@pytest.mark.parametrize(
    ("md_spec", "replicas", "hpa"),
    [
        ({"replicas": 3}, 3, None),
        ({}, 1, None),
        ({"replicas": 0}, 0, None),
        (
            {
                "autoscaling": {
                    "minReplicas": 2,
                    "maxReplicas": 5,
                    "targetCPUUtilizationPercentage": 60,
                },
                "resources": {"requests": {"cpu": "1"}},
            },
            2,  # a new Deployment starts at minReplicas, then the HPA owns the field
            (2, 5, 60),
        ),
        (
            {"autoscaling": {"maxReplicas": 4}, "resources": {"requests": {"cpu": "1"}}},
            1,
            (1, 4, 80),
        ),
    ],
)
def test_replicas_or_hpa(
    md_spec: dict[str, Any], replicas: int | None, hpa: tuple[int, int, int] | None
) -> None:
    body = md({"model": {"trainingJobRef": {"name": "iris"}}, **md_spec})
    deployment = serving.build_deployment(
        body, MODEL, CONFIG, replicas=serving.deployment_replicas(body.spec, None)
    )
    assert deployment["spec"].get("replicas") == replicas
    built = serving.build_hpa(body)
    if hpa is None:
        assert built is None
        return
    assert built is not None
    assert built["apiVersion"] == "autoscaling/v2"
    assert built["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "iris",
    }
    assert (built["spec"]["minReplicas"], built["spec"]["maxReplicas"]) == hpa[:2]
    target = built["spec"]["metrics"][0]["resource"]["target"]
    assert target == {"type": "Utilization", "averageUtilization": hpa[2]}


def test_image_override_and_resources() -> None:
    resources = {"requests": {"cpu": "100m"}, "limits": {"memory": "512Mi"}}
    body = md(
        {"model": {"trainingJobRef": {"name": "iris"}}, "image": "mine:2", "resources": resources}
    )
    c = container(serving.build_deployment(body, MODEL, CONFIG, replicas=1))
    assert c["image"] == "mine:2"
    assert c["resources"] == resources


def test_service_maps_80_to_the_http_port() -> None:
    service = serving.build_service(md())
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == naming.server_selector("iris")
    assert naming.service_url("iris", "ml") == "http://iris.ml.svc.cluster.local/v2/models/iris"


# --- status --------------------------------------------------------------------------------------


def deployment(
    *,
    generation: int = 2,
    observed: int = 2,
    replicas: int = 1,
    updated: int = 1,
    available: int = 1,
    ready: int = 1,
    sha: str = SHA,
    spec_replicas: int = 1,
    stalled: bool = False,
    replica_failure: bool = False,
) -> dict[str, Any]:
    built = serving.build_deployment(
        md(), MODEL.model_copy(update={"sha256": sha}), CONFIG, replicas=1
    )
    built["metadata"]["generation"] = generation
    built["spec"]["replicas"] = spec_replicas
    built["status"] = {
        "observedGeneration": observed,
        "replicas": replicas,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "readyReplicas": ready,
    }
    if replica_failure:
        built["status"]["conditions"] = [
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": 'pods "iris-x" is forbidden: exceeded quota: mem',
            }
        ]
    if stalled:
        built["status"]["conditions"] = [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet has timed out progressing",
            }
        ]
    return built


RESOLVED = serving.Resolution(MODEL, "ModelResolved", "")


def server_pod(model: ModelStatus = MODEL, **kwargs: Any) -> dict[str, Any]:
    """A server pod as its Deployment's template makes it: it carries its model."""
    made = pod(container="server", **kwargs)
    made["metadata"]["annotations"] = {
        naming.ANNOTATION_MODEL_URI: model.uri,
        naming.ANNOTATION_MODEL_SHA: model.sha256 or "",
    }
    return made


# (case, deployment, pods, phase, Ready, Degraded, lastFailure reason)
STATUSES = [
    ("rolled out", deployment(), [server_pod()], "Ready", "True", "False", None),
    (
        "a pod of the old model still terminating",
        deployment(),
        [server_pod(), server_pod(MODEL.model_copy(update={"sha256": "b" * 64}))],
        "Progressing",
        "False",
        "False",
        None,
    ),
    (
        "old model still in the template",
        deployment(sha="b" * 64),
        [],
        "Progressing",
        "False",
        "False",
        None,
    ),
    (
        "old pods still around",
        deployment(replicas=2, updated=1),
        [],
        "Progressing",
        "False",
        "False",
        None,
    ),
    (
        "not enough available",
        deployment(available=0, ready=0),
        [],
        "Progressing",
        "False",
        "False",
        None,
    ),
    (
        "crash looping",
        deployment(available=0, ready=0),
        [
            server_pod(
                waiting=("CrashLoopBackOff", "back-off"),
                restarts=4,
                last_terminated={"exitCode": 3, "reason": "Error", "message": "sha mismatch"},
            )
        ],
        "Degraded",
        "False",
        "True",
        "ModelLoadFailed",
    ),
    (
        "crash looping for another reason",
        deployment(available=0, ready=0),
        [
            server_pod(
                waiting=("CrashLoopBackOff", "back-off"),
                restarts=4,
                last_terminated={"exitCode": 1, "reason": "Error", "message": "boom"},
            )
        ],
        "Degraded",
        "False",
        "True",
        "CrashLoopBackOff",
    ),
    (
        "replica set cannot create pods",
        deployment(available=0, ready=0, replica_failure=True),
        [],
        "Degraded",
        "False",
        "True",
        "FailedCreate",
    ),
    (
        "OOM crash looping",
        deployment(available=0, ready=0),
        [
            server_pod(
                waiting=("CrashLoopBackOff", "back-off"),
                restarts=2,
                last_terminated={"exitCode": 137, "reason": "OOMKilled"},
            )
        ],
        "Degraded",
        "False",
        "True",
        "OOMKilled",
    ),
    (
        "image pull",
        deployment(available=0, ready=0),
        [server_pod(phase="Pending", waiting=("ImagePullBackOff", "no such image"))],
        "Degraded",
        "False",
        "True",
        "ImagePullBackOff",
    ),
    (
        "unschedulable",
        deployment(available=0, ready=0),
        [server_pod(phase="Pending", unschedulable="0/1 nodes available")],
        "Degraded",
        "False",
        "True",
        "Unschedulable",
    ),
    (
        "progress deadline",
        deployment(available=0, ready=0, stalled=True),
        [],
        "Degraded",
        "False",
        "True",
        "ProgressDeadlineExceeded",
    ),
    ("no deployment yet", None, [], "Progressing", "False", "False", None),
]


@pytest.mark.parametrize(
    ("case", "the_deployment", "pods", "phase", "ready", "degraded", "failure"),
    STATUSES,
    ids=[s[0] for s in STATUSES],
)
def test_serving_status(
    case: str,
    the_deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    phase: str,
    ready: str,
    degraded: str,
    failure: str | None,
) -> None:
    status = serving.serving_status(md(), RESOLVED, MODEL, the_deployment, pods, at=AT)
    conds = {c.type: c.status for c in status.conditions}
    assert status.phase == phase, case
    assert conds["Ready"] == ready
    assert conds["Degraded"] == degraded
    assert conds["Progressing"] == ("False" if ready == "True" else "True")
    assert (status.last_failure.reason if status.last_failure else None) == failure
    assert status.url == "http://iris.ml.svc.cluster.local/v2/models/iris"
    assert status.model == MODEL


def test_hpa_decides_the_desired_count() -> None:
    body = md(
        {
            "model": {"trainingJobRef": {"name": "iris"}},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 5},
            "resources": {"requests": {"cpu": "1"}},
        }
    )
    scaled = deployment(spec_replicas=3, replicas=3, updated=3, available=2, ready=2)
    status = serving.serving_status(body, RESOLVED, MODEL, scaled, [], at=AT)
    assert (status.phase, status.replicas, status.ready_replicas) == ("Progressing", 3, 2)


def test_not_ready_below_min_replicas_before_the_hpa_acts() -> None:
    body = md(
        {
            "model": {"trainingJobRef": {"name": "iris"}},
            "autoscaling": {"minReplicas": 2, "maxReplicas": 5},
            "resources": {"requests": {"cpu": "1"}},
        }
    )
    fresh = deployment(spec_replicas=1, replicas=1, updated=1, available=1, ready=1)
    status = serving.serving_status(body, RESOLVED, MODEL, fresh, [], at=AT)
    assert (status.phase, status.replicas, status.ready_replicas) == ("Progressing", 2, 1)


@pytest.mark.parametrize(
    ("reason", "phase", "degraded"),
    [("ModelNotReady", "Pending", "False"), ("GateNotMet", "Degraded", "True")],
)
def test_no_model_means_not_ready_and_no_url(reason: str, phase: str, degraded: str) -> None:
    resolution = serving.Resolution(None, reason, "TrainingJob iris ...")
    status = serving.serving_status(md(), resolution, None, None, [], at=AT)
    conds = {c.type: (c.status, c.reason) for c in status.conditions}
    assert status.phase == phase
    assert conds["Ready"] == ("False", reason)
    assert conds["Degraded"][0] == degraded
    assert status.url is None and status.model is None


def test_serving_a_previous_model_while_the_spec_names_none_is_not_ready() -> None:
    # e.g. the spec moved from a storageUri to a TrainingJob whose only model failed its gate
    resolution = serving.Resolution(None, "GateNotMet", "TrainingJob iris failed its gate")
    status = serving.serving_status(md(), resolution, MODEL, deployment(), [], at=AT)
    conds = {c.type: c.status for c in status.conditions}
    assert status.phase == "Degraded"
    assert conds == {"Ready": "False", "Progressing": "True", "Degraded": "True"}
    assert status.last_failure is not None and status.last_failure.reason == "GateNotMet"


def test_status_is_stable_when_nothing_changes() -> None:
    first = serving.serving_status(md(), RESOLVED, MODEL, deployment(), [], at=AT)
    body = md(status=first.model_dump(by_alias=True, exclude_none=True, mode="json"))
    again = serving.serving_status(
        body, RESOLVED, MODEL, deployment(), [], at="2030-01-01T00:00:00Z"
    )
    assert again == first


def test_an_hpa_that_cannot_scale_degrades_but_the_model_answers() -> None:
    hpa = {
        "status": {
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale"},
                {
                    "type": "ScalingActive",
                    "status": "False",
                    "reason": "FailedGetResourceMetric",
                    "message": "unable to get metrics for resource cpu",
                },
            ]
        }
    }
    status = serving.serving_status(
        md(), RESOLVED, MODEL, deployment(), [server_pod()], hpa=hpa, at=AT
    )
    conds = {c.type: c.status for c in status.conditions}
    assert status.phase == "Ready" and conds["Ready"] == "True"
    assert conds["Degraded"] == "True"
    assert status.last_failure is not None
    assert status.last_failure.reason == "FailedGetResourceMetric"


def test_a_spec_change_that_keeps_the_model_does_not_flap_ready() -> None:
    # e.g. a touched field bumps the Deployment's generation before its controller observes it
    status = serving.serving_status(
        md(), RESOLVED, MODEL, deployment(observed=1), [server_pod()], at=AT
    )
    conds = {c.type: c.status for c in status.conditions}
    assert status.phase == "Ready" and conds["Ready"] == "True"
    assert conds["Progressing"] == "True", "the controller has yet to observe it"


def test_a_model_served_by_onnx_is_ready_once_rolled_out() -> None:
    """The runtime is what serves the artifact, not part of which artifact the pod template
    names: a rolled-out Deployment is Ready whatever runtime the status reports."""
    compiled = MODEL.model_copy(update={"runtime": "onnx"})
    resolved = serving.Resolution(compiled, "ModelResolved", "")
    status = serving.serving_status(md(), resolved, compiled, deployment(), [server_pod()], at=AT)
    assert status.phase == "Ready" and status.model is not None
    assert status.model.runtime == "onnx"


# --- the plan ------------------------------------------------------------------------------------

AUTOSCALED = {
    "model": {"trainingJobRef": {"name": "iris"}},
    "autoscaling": {"minReplicas": 1, "maxReplicas": 3},
    "resources": {"requests": {"cpu": "1"}},
}


def test_plan_applies_deployment_service_then_hpa_and_deletes_the_pdb_it_no_longer_wants() -> None:
    planned = serving.plan(
        md(AUTOSCALED), TrainingJobStatus.model_validate(TJ_SUCCEEDED), None, CONFIG
    )
    assert [m["kind"] for m in planned.apply] == [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    ]
    assert planned.delete == (
        ("apps/v1", "Deployment", "iris-canary"),
        ("policy/v1", "PodDisruptionBudget", "iris"),
    )
    assert planned.model == MODEL


def test_plan_without_a_model_applies_nothing() -> None:
    planned = serving.plan(
        md(), TrainingJobStatus.model_validate({"phase": "Running"}), None, CONFIG
    )
    assert (planned.model, planned.apply, planned.delete) == (None, (), ())
    assert planned.resolution.reason == "ModelNotReady"


def test_plan_keeps_serving_what_the_live_template_carries() -> None:
    # the TrainingJob retrains: no model resolved, the live Deployment's model stays served
    live = deployment(sha="c" * 64)
    planned = serving.plan(
        md(), TrainingJobStatus.model_validate({"phase": "Running"}), live, CONFIG
    )
    assert planned.model is not None and planned.model.sha256 == "c" * 64


@pytest.mark.parametrize(
    ("md_spec", "field"),
    [
        ({"model": {"trainingJobRef": {"name": "iris"}}, "image": "evil:1"}, "spec.image"),
        ({"model": {"storageUri": "pvc://"}}, "pvc://"),
    ],
)
def test_plan_refuses_what_the_operator_cannot_serve(md_spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        serving.plan(md(md_spec), None, None, CONFIG)
    assert field in raised.value.message


def test_an_invalid_spec_is_degraded_and_not_ready() -> None:
    status = serving.invalid_spec_status(
        md().metadata, ModelDeploymentStatus(), InvalidSpec("spec.image: not allowed"), at=AT
    )
    conds = {c.type: (c.status, c.reason) for c in status.conditions}
    assert status.phase == "Degraded"
    assert conds == {
        "Ready": ("False", "InvalidSpec"),
        "Progressing": ("False", "InvalidSpec"),
        "Degraded": ("True", "InvalidSpec"),
    }
    assert (
        status.last_failure is not None and status.last_failure.message == "spec.image: not allowed"
    )


# --- canary --------------------------------------------------------------------------------------

NEXT = ModelStatus(uri="pvc://models/iris/v2-01234567", version="v2-01234567", sha256="c" * 64)
CANARY_SPEC = {
    "model": {"storageUri": NEXT.uri, "sha256": NEXT.sha256},
    "replicas": 3,
    "rollout": {"strategy": "Canary", "canary": {"steps": [25, 50]}},
}


def canary_md(status: dict[str, Any] | None = None) -> ModelDeployment:
    return md(CANARY_SPEC, generation=2, status=status)


def test_a_new_model_under_a_canary_strategy_runs_beside_the_stable_one() -> None:
    live = deployment(spec_replicas=3, replicas=3, updated=3, available=3, ready=3)
    planned = serving.plan(canary_md(), None, live, CONFIG, at=AT)
    stable, canary = planned.apply[0], planned.apply[1]
    assert [m["kind"] for m in planned.apply][:3] == ["Deployment", "Deployment", "Service"]
    assert serving.served_model(stable) == MODEL and stable["spec"]["replicas"] == 3
    assert canary["metadata"]["name"] == "iris-canary"
    assert serving.served_model(canary) == NEXT and canary["spec"]["replicas"] == 1
    arm = {naming.LABEL_ARM: naming.ARM_CANARY}
    assert canary["spec"]["selector"]["matchLabels"] == {**naming.server_selector("iris"), **arm}
    assert arm.items() <= canary["spec"]["template"]["metadata"]["labels"].items()
    # the Service selects both arms; the stable Deployment's selector is what it always was
    service = planned.apply[2]
    assert service["spec"]["selector"] == naming.server_selector("iris")
    assert stable["spec"]["selector"]["matchLabels"] == naming.server_selector("iris")
    assert ("apps/v1", "Deployment", "iris-canary") not in planned.delete
    assert planned.model == MODEL and planned.rollout is not None
    assert planned.rollout.status is not None and planned.rollout.status.phase == "Progressing"


def test_a_canary_in_progress_is_not_ready_and_says_who_serves() -> None:
    live = deployment(spec_replicas=3, replicas=3, updated=3, available=3, ready=3)
    body = canary_md()
    planned = serving.plan(body, None, live, CONFIG, at=AT)
    assert planned.rollout is not None
    canary_pod = server_pod(NEXT)
    canary_pod["metadata"]["labels"] = {naming.LABEL_ARM: naming.ARM_CANARY}
    pods = [server_pod(), canary_pod]
    status = serving.serving_status(
        body,
        planned.resolution,
        planned.model,
        live,
        pods,
        canary=planned.rollout.status,
        at=AT,
    )
    ready = next(c for c in status.conditions if c.type == "Ready")
    stalled = next(c for c in status.conditions if c.type == "Stalled")
    assert (status.phase, ready.status, ready.reason) == (
        "Progressing",
        "False",
        "CanaryInProgress",
    )
    assert MODEL.version in ready.message and "25%" in ready.message
    assert stalled.status == "False" and status.last_failure is None
    assert status.model == MODEL  # the stable model, beside status.rollout.canary


def test_a_rolled_back_canary_degrades_and_stalls_while_stable_serves() -> None:
    live = deployment(spec_replicas=3, replicas=3, updated=3, available=3, ready=3)
    rolled_back = {
        "phase": "RolledBack",
        "reason": "AnalysisFailed",
        "message": "canary v2 failed 2 check(s) in a row: p99 latency 3.00x",
        "canary": NEXT.model_dump(by_alias=True),
        "stable": MODEL.model_dump(by_alias=True),
        "generation": 2,
    }
    body = canary_md({"rollout": rolled_back, "model": MODEL.model_dump(by_alias=True)})
    planned = serving.plan(body, None, live, CONFIG, at=AT)
    assert len([m for m in planned.apply if m["kind"] == "Deployment"]) == 1
    assert ("apps/v1", "Deployment", "iris-canary") in planned.delete
    assert planned.rollout is not None
    status = serving.serving_status(
        body,
        planned.resolution,
        planned.model,
        live,
        [server_pod()],
        canary=planned.rollout.status,
        at=AT,
    )
    conditions = {c.type: c for c in status.conditions}
    assert status.phase == "Degraded"
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "CanaryRolledBack")
    assert (conditions["Stalled"].status, conditions["Stalled"].reason) == (
        "True",
        "AnalysisFailed",
    )
    assert status.last_failure is not None and status.last_failure.reason == "CanaryRolledBack"
    assert "keeps serving" in status.last_failure.message
