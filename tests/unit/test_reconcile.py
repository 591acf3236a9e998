"""The reconcile shell's decisions, run against an in-memory stand-in for ``modelyard.kube.Kube``
(no cluster, no HTTP): idempotency, children coming back, no status churn, no retrain after a
TTL cleanup, superseded Jobs stopped, HPA lifecycle. The real API server is the cluster tier's."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from factories import IRIS_SPEC, SHA, model_deployment, pod, result, terminated, training_job
from modelyard import naming, reconcile
from modelyard.reconcile import Reconciler, status_patch
from modelyard.settings import OperatorSettings

Key = tuple[str, str, str]  # kind, namespace, name


class MemoryKube:
    """Just enough of ``Kube``: objects by (kind, namespace, name), label selectors, calls."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.applied: list[Key] = []
        self.status_patches: list[tuple[Key, dict[str, Any]]] = []
        self.events: list[tuple[str, str]] = []
        self.deleted: list[Key] = []

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace", "ml"), meta["name"])] = obj

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        wanted = dict(p.split("=", 1) for p in label_selector.split(",")) if label_selector else {}
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind
            and (namespace is None or ns == namespace)
            and wanted.items() <= (obj["metadata"].get("labels") or {}).items()
        ]

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        key = (manifest["kind"], meta["namespace"], meta["name"])
        self.applied.append(key)
        merged = copy.deepcopy(manifest)
        if key in self.objects and "status" in self.objects[key]:
            merged["status"] = self.objects[key]["status"]
        self.objects[key] = merged
        return copy.deepcopy(merged)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        if self.objects.pop((kind, namespace, name), None) is not None:
            self.deleted.append((kind, namespace, name))

    def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> None:
        key = (kind, namespace, name)
        self.status_patches.append((key, patch))
        status = self.objects[key].setdefault("status", {})
        for field, value in patch.items():
            if value is None:
                status.pop(field, None)
            else:
                status[field] = value

    def event(
        self, involved: dict[str, Any], *, reason: str, message: str, warning: bool = False
    ) -> None:
        self.events.append((involved["metadata"]["name"], reason))


@pytest.fixture
def kube() -> MemoryKube:
    return MemoryKube()


@pytest.fixture
def operator(kube: MemoryKube) -> Reconciler:
    return Reconciler(kube, OperatorSettings(runtime_image="runtime:1"))  # type: ignore[arg-type]


JOB = ("Job", "ml", "iris-g1")


def finish_job(kube: MemoryKube, name: str = "iris-g1") -> None:
    """What the job controller and kubelet would do: a pod that succeeded with a result."""
    job = kube.objects[("Job", "ml", name)]
    job["status"] = {
        "succeeded": 1,
        "startTime": "2024-01-01T00:00:00Z",
        "completionTime": "2024-01-01T00:05:00Z",
        "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}],
    }
    done = pod(f"{name}-x", phase="Succeeded", terminated=terminated(0, result(), "Completed"))
    done["metadata"]["labels"] = {"job-name": name}
    kube.put(done)


def test_training_job_creates_one_job_and_converges(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    operator.training_job("ml", "iris")
    assert [k for k in kube.objects if k[0] == "Job"] == [JOB]
    assert len(kube.status_patches) == 1, "the second pass writes nothing"
    assert kube.objects[("TrainingJob", "ml", "iris")]["status"]["phase"] == "Pending"
    assert kube.events == [("iris", "Pending")]


def test_job_deleted_by_hand_comes_back(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    del kube.objects[JOB]
    operator.training_job("ml", "iris")
    assert JOB in kube.objects


def test_finished_job_removed_by_ttl_does_not_retrain(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(training_job({**IRIS_SPEC, "ttlSecondsAfterFinished": 0}))
    operator.training_job("ml", "iris")
    finish_job(kube)
    operator.training_job("ml", "iris")
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["phase"] == "Succeeded" and status["model"]["sha256"] == SHA
    del kube.objects[JOB]  # the TTL controller
    patches = len(kube.status_patches)
    operator.training_job("ml", "iris")
    assert JOB not in kube.objects
    assert len(kube.status_patches) == patches
    assert ("iris", "Succeeded") in kube.events


def test_spec_change_retrains_and_stops_the_old_job(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    kube.put(
        training_job(
            {**IRIS_SPEC, "seed": 7},
            generation=2,
            status=kube.objects[("TrainingJob", "ml", "iris")]["status"],
        )
    )
    operator.training_job("ml", "iris")
    assert ("Job", "ml", "iris-g2") in kube.objects
    assert JOB in kube.deleted
    assert kube.objects[("TrainingJob", "ml", "iris")]["status"]["jobName"] == "iris-g2"


def test_suspend_pauses_the_same_job(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    kube.put(training_job({**IRIS_SPEC, "suspend": True}, generation=2))
    operator.training_job("ml", "iris")
    assert [k for k in kube.objects if k[0] == "Job"] == [JOB]
    assert kube.objects[JOB]["spec"]["suspend"] is True
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["phase"] == "Suspended" and status["observedGeneration"] == 2


def test_invalid_spec_fails_without_a_job(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job({"dataset": {}, "model": {"estimator": "SVC"}}))
    operator.training_job("ml", "iris")
    assert not [k for k in kube.objects if k[0] == "Job"]
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["phase"] == "Failed" and status["lastFailure"]["reason"] == "InvalidSpec"


def test_deleted_training_job_is_left_alone(kube: MemoryKube, operator: Reconciler) -> None:
    operator.training_job("ml", "gone")
    assert kube.applied == [] and kube.status_patches == []


def test_model_deployment_waits_for_a_validated_model(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(training_job())
    kube.put(model_deployment())
    operator.training_job("ml", "iris")
    operator.model_deployment("ml", "iris")
    assert not [k for k in kube.objects if k[0] == "Deployment"]
    md_status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    ready = next(c for c in md_status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ModelNotReady")

    finish_job(kube)
    operator.training_job("ml", "iris")
    operator.deployments_following("ml", "iris")
    deployment = kube.objects[("Deployment", "ml", "iris")]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations[naming.ANNOTATION_MODEL_SHA] == SHA
    assert ("Service", "ml", "iris") in kube.objects
    md_status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    assert md_status["phase"] == "Progressing"
    assert md_status["model"]["version"] == "v1-01234567"

    # the Deployment becomes available -> Ready; a second pass writes nothing
    deployment["metadata"]["generation"] = 1
    deployment["status"] = {
        "observedGeneration": 1,
        "replicas": 1,
        "updatedReplicas": 1,
        "availableReplicas": 1,
        "readyReplicas": 1,
    }
    operator.model_deployment("ml", "iris")
    assert kube.objects[("ModelDeployment", "ml", "iris")]["status"]["phase"] == "Ready"
    patches = len(kube.status_patches)
    operator.model_deployment("ml", "iris")
    assert len(kube.status_patches) == patches


def test_hpa_comes_and_goes_with_autoscaling(kube: MemoryKube, operator: Reconciler) -> None:
    spec = {"model": {"storageUri": "pvc://m/iris/v1"}, "autoscaling": {"maxReplicas": 3}}
    kube.put(model_deployment(spec))
    operator.model_deployment("ml", "iris")
    assert ("HorizontalPodAutoscaler", "ml", "iris") in kube.objects
    assert "replicas" not in kube.objects[("Deployment", "ml", "iris")]["spec"]
    kube.put(
        model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}, "replicas": 2}, generation=2)
    )
    operator.model_deployment("ml", "iris")
    assert ("HorizontalPodAutoscaler", "ml", "iris") not in kube.objects
    assert kube.objects[("Deployment", "ml", "iris")]["spec"]["replicas"] == 2


def test_resync_reconciles_everything(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job())
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}}))
    operator.resync([])
    assert JOB in kube.objects and ("Deployment", "ml", "iris") in kube.objects


# --- pure helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "desired", "patch"),
    [
        ({"phase": "Running"}, {"phase": "Running"}, None),
        (None, {"phase": "Pending"}, {"phase": "Pending"}),
        (
            {"phase": "Running", "lastFailure": {"reason": "X"}},
            {"phase": "Succeeded"},
            {"phase": "Succeeded", "lastFailure": None},
        ),
        ({"a": 1, "b": 2}, {"a": 1, "b": 3}, {"b": 3}),
    ],
)
def test_status_patch(
    current: dict[str, Any] | None, desired: dict[str, Any], patch: dict[str, Any] | None
) -> None:
    assert status_patch(current, desired) == patch


def test_transition_events() -> None:
    assert reconcile.transition("Running", "Running") is None
    assert reconcile.transition(None, "Pending") == ("Pending", False)
    assert reconcile.transition("Running", "Failed") == ("Failed", True)
    assert reconcile.transition("Ready", "Degraded") == ("Degraded", True)


def test_a_namespace_being_deleted_ends_the_reconcile_quietly(
    kube: MemoryKube, operator: Reconciler
) -> None:
    from kubernetes.client.exceptions import ApiException

    def refuse(manifest: dict[str, Any]) -> dict[str, Any]:
        error = ApiException(status=403, reason="Forbidden")
        error.body = '{"details":{"causes":[{"reason":"NamespaceTerminating"}]}}'
        raise error

    kube.apply = refuse  # type: ignore[method-assign]
    kube.put(training_job())
    operator.training_job("ml", "iris")  # no exception
    assert kube.status_patches == []

    def forbidden(manifest: dict[str, Any]) -> dict[str, Any]:
        raise ApiException(status=403, reason="Forbidden")  # RBAC: must surface

    kube.apply = forbidden  # type: ignore[method-assign]
    with pytest.raises(ApiException):
        operator.training_job("ml", "iris")


def test_a_burst_of_triggers_coalesces_behind_the_running_reconcile(
    kube: MemoryKube, operator: Reconciler
) -> None:
    import threading

    running, release = threading.Event(), threading.Event()
    outcomes: list[bool] = []

    def first() -> None:
        with operator._exclusive("ModelDeployment", "ml", "iris") as go:
            outcomes.append(go)
            running.set()
            release.wait(5)

    def later() -> None:
        with operator._exclusive("ModelDeployment", "ml", "iris") as go:
            outcomes.append(go)

    a = threading.Thread(target=first)
    a.start()
    assert running.wait(5)
    b = threading.Thread(target=later)  # waits behind the running one: it will read fresh state
    b.start()
    for _ in range(100):  # until b is queued
        if operator._slots[("ModelDeployment", "ml", "iris")].waiting:
            break
        threading.Event().wait(0.01)
    later()  # a third trigger now adds nothing: b has not read the object yet
    assert outcomes == [True, False]
    release.set()
    a.join(5)
    b.join(5)
    assert outcomes == [True, False, True]
    later()  # idle again: runs
    assert outcomes[-1] is True
