"""ModelDeployment -> Deployment/Service/HPA -> (kwok marks pods Ready) -> Ready; and changes
converge: replicas, image, a retrained model, a deleted child, a killed operator, deletion."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .operator_harness import (
    GROUP_VERSION,
    RUNTIME_IMAGE,
    Modelyard,
    OperatorProcess,
    condition,
    condition_is,
    finish_trainer,
    model_deployment,
    phase,
    running_trainer_pod,
    succeed_trainer,
    trainer_result,
    training_job,
    wait_for,
)

pytestmark = pytest.mark.cluster


def deployment(modelyard: Modelyard, ns: str, name: str) -> dict[str, Any] | None:
    return modelyard.api.get("apps/v1", "Deployment", ns, name)


def wait_ready(modelyard: Modelyard, ns: str, name: str, timeout: float = 60) -> dict[str, Any]:
    api = modelyard.api
    md: dict[str, Any] = wait_for(
        f"ModelDeployment {ns}/{name} Ready",
        lambda: (m := api.md(ns, name)) is not None and condition_is(m, "Ready") and m,
        timeout=timeout,
        show=lambda: {"md": api.md(ns, name), "deployment": deployment(modelyard, ns, name)},
    )
    return md


def template_container(dep: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = dep["spec"]["template"]["spec"]["containers"]
    return containers[0]


def test_follows_a_training_job(modelyard: Modelyard, ns: str) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl
    kubectl.apply(training_job("iris"), model_deployment("iris", training_job="iris"), namespace=ns)

    md = wait_for(
        "ModelDeployment waiting for its model",
        lambda: (m := api.md(ns, "iris")) and condition(m, "Ready") and m,
        show=lambda: api.md(ns, "iris"),
    )
    ready = condition(md, "Ready")
    assert ready is not None and ready["status"] == "False"
    assert ready["reason"] == "ModelNotReady", ready
    assert phase(md) == "Pending"
    assert deployment(modelyard, ns, "iris") is None

    pod = running_trainer_pod(api, ns, "iris-g1")
    said = succeed_trainer(api, pod)
    assert said.model is not None

    dep = wait_for(
        "the Deployment", lambda: deployment(modelyard, ns, "iris"), show=lambda: api.md(ns, "iris")
    )
    container = template_container(dep)
    assert container["image"] == RUNTIME_IMAGE
    assert container["command"] == ["modelyard-serve"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELYARD_EXPECTED_SHA256"] == said.model.sha256
    assert env["MODELYARD_MODEL_DIR"] == f"/mnt/models/iris/{said.model.version}"
    assert dep["spec"]["replicas"] == 1
    service = wait_for("the Service", lambda: api.get("v1", "Service", ns, "iris"))
    assert service["spec"]["selector"] == {"modelyard.io/model-deployment": "iris"}
    assert api.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, "iris") is None

    md = wait_ready(modelyard, ns, "iris")
    status = md["status"]
    assert status["url"] == f"http://iris.{ns}.svc.cluster.local/v2/models/iris"
    assert status["model"] == {
        "uri": said.model.uri,
        "version": said.model.version,
        "sha256": said.model.sha256,
        "runtime": "onnx",  # Auto, resolved from the TrainingJob's status.model.autoRuntime
    }
    assert status["readyReplicas"] == 1 and status["replicas"] == 1
    assert phase(md) == "Ready"
    kubectl("wait", "--for=condition=Ready", "md/iris", "-n", ns, "--timeout=10s")
    row = kubectl("get", "md", "iris", "-n", ns, "--no-headers").split()
    assert row[:6] == ["iris", "True", "1", "1", said.model.version, status["url"]], row


def test_autoscaling_makes_an_hpa(modelyard: Modelyard, ns: str) -> None:
    api = modelyard.api
    modelyard.kubectl.apply(
        model_deployment(
            "scaled",
            storage_uri="pvc://modelyard-models/iris/v1",
            replicas=3,
        ),
        namespace=ns,
    )
    wait_ready(modelyard, ns, "scaled")
    # replicas -> autoscaling: the running count is kept (server-side apply would reset a
    # dropped field to 1), clamped into the HPA's range, until the HPA controller owns it.
    api.patch(
        GROUP_VERSION,
        "ModelDeployment",
        ns,
        "scaled",
        {
            "spec": {
                "replicas": None,
                "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
                "resources": {"requests": {"cpu": "100m"}},
            }
        },
    )
    hpa = wait_for(
        "the HPA",
        lambda: api.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, "scaled"),
        show=lambda: api.md(ns, "scaled"),
    )
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["scaleTargetRef"]["name"] == "scaled"
    assert (deployment(modelyard, ns, "scaled") or {})["spec"]["replicas"] == 3
    # What the HPA controller does (the scale subresource, re-asserted at every sync); the
    # operator then leaves the field to it: a reconcile does not put its own count back. (A
    # reconcile that read the Deployment just before the first scale may still apply the old
    # count once; the scaler's next sync wins, as with a real HPA.)
    last_scale = 0.0

    def scaled_and_ready() -> dict[str, Any] | None:
        nonlocal last_scale
        if time.monotonic() - last_scale > 5:
            modelyard.kubectl("scale", "deployment/scaled", "--replicas=4", "-n", ns)
            last_scale = time.monotonic()
        m = api.md(ns, "scaled")
        ok = m and condition_is(m, "Ready") and m["status"].get("replicas") == 4
        return m if ok else None

    md = wait_for(
        "4 replicas, chosen by the scaler, Ready",
        scaled_and_ready,
        show=lambda: {"md": api.md(ns, "scaled"), "dep": deployment(modelyard, ns, "scaled")},
    )
    time.sleep(2)  # and it stays so
    dep = deployment(modelyard, ns, "scaled")
    assert dep is not None and dep["spec"]["replicas"] == 4
    managers = {
        m["manager"]
        for m in dep["metadata"]["managedFields"]
        if "f:replicas" in str(m.get("fieldsV1", {}).get("f:spec", {}))
    }
    assert "modelyard" not in managers, managers  # handed over, not fought
    assert md["status"]["readyReplicas"] == 4

    # Autoscaling turned off: the HPA goes, replicas come back to the operator.
    api.patch(
        GROUP_VERSION,
        "ModelDeployment",
        ns,
        "scaled",
        {"spec": {"autoscaling": None, "replicas": 1}},
    )
    wait_for(
        "the HPA removed",
        lambda: api.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, "scaled") is None,
    )
    wait_for(
        "Deployment replicas 1",
        lambda: (deployment(modelyard, ns, "scaled") or {})["spec"]["replicas"] == 1,
    )
    wait_for(
        "the PodDisruptionBudget removed at one replica",
        lambda: api.get("policy/v1", "PodDisruptionBudget", ns, "scaled") is None,
    )


def test_gate_not_met_never_deploys(modelyard: Modelyard, ns: str) -> None:
    api = modelyard.api
    modelyard.kubectl.apply(
        training_job("weak", gate_min=0.99),
        model_deployment("weak", training_job="weak"),
        namespace=ns,
    )
    pod = running_trainer_pod(api, ns, "weak-g1")
    said = trainer_result(pod, reason="GateNotMet", accuracy=0.9, gate_min=0.99)
    finish_trainer(api, pod, exit_code=12, message=said.to_termination_message())

    md = wait_for(
        "ModelDeployment Ready=False GateNotMet",
        lambda: (
            (m := api.md(ns, "weak"))
            and (condition(m, "Ready") or {}).get("reason") == "GateNotMet"
            and m
        ),
        show=lambda: {"md": api.md(ns, "weak"), "tj": api.tj(ns, "weak")},
    )
    assert condition_is(md, "Degraded")
    assert md["status"]["lastFailure"]["reason"] == "GateNotMet"
    assert deployment(modelyard, ns, "weak") is None
    assert api.get("v1", "Service", ns, "weak") is None


def test_changes_converge(modelyard: Modelyard, ns: str) -> None:
    api = modelyard.api
    modelyard.kubectl.apply(
        training_job("iris"), model_deployment("iris", training_job="iris"), namespace=ns
    )
    first = succeed_trainer(api, running_trainer_pod(api, ns, "iris-g1"))
    wait_ready(modelyard, ns, "iris")

    # replicas
    api.patch(GROUP_VERSION, "ModelDeployment", ns, "iris", {"spec": {"replicas": 3}})
    wait_for(
        "Deployment replicas 3",
        lambda: (deployment(modelyard, ns, "iris") or {})["spec"]["replicas"] == 3,
        show=lambda: api.md(ns, "iris"),
    )
    md = wait_for(
        "3 ready replicas",
        lambda: (
            (m := api.md(ns, "iris"))
            and condition_is(m, "Ready")
            and m["status"].get("readyReplicas") == 3
            and m
        ),
        show=lambda: api.md(ns, "iris"),
    )
    assert md["status"]["replicas"] == 3
    pdb = api.get("policy/v1", "PodDisruptionBudget", ns, "iris")
    assert pdb is not None and pdb["spec"]["maxUnavailable"] == 1

    # image override (allow-listed for this operator: MODELYARD_ALLOWED_IMAGES)
    api.patch(GROUP_VERSION, "ModelDeployment", ns, "iris", {"spec": {"image": "my/runtime:2"}})
    wait_for(
        "the pod template image",
        lambda: (
            template_container(deployment(modelyard, ns, "iris") or {})["image"] == "my/runtime:2"
        ),
        show=lambda: deployment(modelyard, ns, "iris"),
    )
    wait_ready(modelyard, ns, "iris")

    # retrain: a spec change is a new generation, a new Job, a new model version
    api.patch(
        GROUP_VERSION,
        "TrainingJob",
        ns,
        "iris",
        {"spec": {"model": {"hyperparameters": {"max_iter": 1000}}}},
    )
    second_pod = running_trainer_pod(api, ns, "iris-g2")
    second = succeed_trainer(api, second_pod, accuracy=0.9733)
    assert first.model is not None and second.model is not None
    assert second.model.version != first.model.version
    dep = wait_for(
        "the Deployment rolled to the new model",
        lambda: (
            (d := deployment(modelyard, ns, "iris"))
            and d["spec"]["template"]["metadata"]["annotations"].get("modelyard.io/model-sha256")
            == second.model.sha256  # type: ignore[union-attr]
            and d
        ),
        show=lambda: api.md(ns, "iris"),
    )
    env = {e["name"]: e.get("value") for e in template_container(dep)["env"]}
    assert env["MODELYARD_MODEL_DIR"].endswith(second.model.version)
    md = wait_for(
        "Ready on the new version",
        lambda: (
            (m := api.md(ns, "iris"))
            and condition_is(m, "Ready")
            and (m["status"].get("model") or {}).get("version") == second.model.version  # type: ignore[union-attr]
            and m
        ),
        show=lambda: {"md": api.md(ns, "iris"), "deployment": deployment(modelyard, ns, "iris")},
        timeout=90,
    )
    assert md["status"]["readyReplicas"] == 3
    # the superseded Job is deleted (its record is in status), so a jobs quota never fills up
    wait_for("iris-g1 deleted", lambda: api.get("batch/v1", "Job", ns, "iris-g1") is None)

    # a child deleted by hand comes back
    uid = dep["metadata"]["uid"]
    api.delete("apps/v1", "Deployment", ns, "iris")
    wait_for(
        "the Deployment recreated",
        lambda: (d := deployment(modelyard, ns, "iris")) and d["metadata"]["uid"] != uid,
        show=lambda: api.md(ns, "iris"),
    )
    api.delete("v1", "Service", ns, "iris")
    wait_for(
        "the Service recreated (Services are watched: at once, not at the next resync)",
        lambda: api.get("v1", "Service", ns, "iris"),
        timeout=10,
    )
    wait_ready(modelyard, ns, "iris")

    # deleting the CR removes its children (the real garbage collector)
    modelyard.kubectl("delete", "md", "iris", "-n", ns)
    wait_for(
        "Deployment and Service garbage-collected",
        lambda: (
            deployment(modelyard, ns, "iris") is None
            and api.get("v1", "Service", ns, "iris") is None
        ),
    )
    modelyard.kubectl("delete", "tj", "iris", "-n", ns)
    wait_for(
        "Jobs garbage-collected",
        lambda: not api.list("batch/v1", "Job", ns),
        show=lambda: api.list("batch/v1", "Job", ns),
    )


def test_operator_killed_mid_reconcile(
    modelyard: Modelyard, operator: OperatorProcess, ns: str
) -> None:
    """SIGKILL right after a burst of creates, restart: everything converges, nothing twice."""
    api = modelyard.api
    objects = [
        model_deployment(f"m{i}", storage_uri=f"pvc://modelyard-models/m/v{i}") for i in range(8)
    ]
    objects.append(training_job("iris"))
    modelyard.kubectl.apply(*objects, namespace=ns)
    wait_for(
        "the operator to be busy with the burst",
        lambda: api.list("apps/v1", "Deployment", ns),
        interval=0.05,
    )
    operator.kill()
    # While it is down, the world moves on.
    api.patch(GROUP_VERSION, "ModelDeployment", ns, "m0", {"spec": {"replicas": 2}})
    operator.start()

    for i in range(8):
        wait_ready(modelyard, ns, f"m{i}", timeout=90)
    assert (deployment(modelyard, ns, "m0") or {})["spec"]["replicas"] == 2
    pod = running_trainer_pod(api, ns, "iris-g1")
    succeed_trainer(api, pod)
    wait_for("iris Succeeded", lambda: phase(api.tj(ns, "iris")) == "Succeeded")

    assert len(api.list("apps/v1", "Deployment", ns)) == 8
    assert len(api.list("v1", "Service", ns)) == 8
    assert [j["metadata"]["name"] for j in api.list("batch/v1", "Job", ns)] == ["iris-g1"]
    replica_sets = api.list("apps/v1", "ReplicaSet", ns)
    assert len(replica_sets) == 8, [r["metadata"]["name"] for r in replica_sets]
