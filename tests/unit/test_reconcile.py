"""The reconcile shell's decisions, run against an in-memory stand-in for ``modelyard.kube.Kube``
(no cluster, no HTTP): idempotency, children coming back, no status churn, terminal phases kept,
API refusals in status, name conflicts, replica hand-over, HPA lifecycle. The stand-in applies
status patches with RFC 7386 merge semantics, as the API server does. The real API server is the
cluster tier's."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from factories import IRIS_SPEC, SHA, model_deployment, pod, result, terminated, training_job
from kubernetes.client.exceptions import ApiException
from modelyard import mergepatch, naming
from modelyard.reconcile import Reconciler
from modelyard.settings import OperatorSettings

Key = tuple[str, str, str]  # kind, namespace, name


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch, as the API server applies ``application/merge-patch+json``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def api_error(status: int, reason: str, message: str) -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = f'{{"kind":"Status","reason":"{reason}","message":"{message}"}}'
    return error


class MemoryKube:
    """Just enough of ``Kube``: objects by (kind, namespace, name), label selectors, calls;
    ``refuse[kind]`` makes applies of that kind fail with the given ApiException."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.applied: list[Key] = []
        self.status_patches: list[tuple[Key, dict[str, Any]]] = []
        self.events: list[tuple[str, str]] = []
        self.deleted: list[Key] = []
        self.refuse: dict[str, ApiException] = {}
        self.kube_events: list[dict[str, Any]] = []

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
        if manifest["kind"] in self.refuse:
            raise self.refuse[manifest["kind"]]
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
        self.objects[key] = merge(self.objects[key], {"status": patch})

    def events_about(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.kube_events
            if e["involvedObject"] == {"kind": kind, "name": name}
            and e.get("namespace", "ml") == namespace
        ]

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


def test_job_deleted_mid_training_is_reported_not_rerun(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    del kube.objects[JOB]
    operator.training_job("ml", "iris")
    operator.training_job("ml", "iris")
    assert JOB not in kube.objects, "a Job seen once is never created a second time"
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["phase"] == "Failed"
    assert status["lastFailure"]["reason"] == "JobDeleted"
    assert ("iris", "Failed") in kube.events


def test_succeeded_stays_succeeded_when_its_pods_and_job_vanish(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    finish_job(kube)
    operator.training_job("ml", "iris")
    before = copy.deepcopy(kube.objects[("TrainingJob", "ml", "iris")]["status"])
    assert before["phase"] == "Succeeded"
    del kube.objects[("Pod", "ml", "iris-g1-x")]  # PodGC, or kubectl delete pod
    operator.training_job("ml", "iris")
    del kube.objects[JOB]  # TTL, or kubectl delete job
    operator.training_job("ml", "iris")
    assert kube.objects[("TrainingJob", "ml", "iris")]["status"] == before
    assert JOB not in kube.objects


def test_retrain_keeps_the_last_validated_model(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    finish_job(kube)
    operator.training_job("ml", "iris")
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    kube.put(training_job({**IRIS_SPEC, "seed": 7}, generation=2, status=status))
    operator.training_job("ml", "iris")
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["phase"] == "Pending" and status["jobName"] == "iris-g2"
    assert status["model"]["sha256"] == SHA, "followers keep the model while it retrains"
    # a ModelDeployment created now serves that model at once
    kube.put(model_deployment(name="late"))
    operator.model_deployment("ml", "late")
    late = kube.objects[("Deployment", "ml", "late")]
    assert late["spec"]["template"]["metadata"]["annotations"][naming.ANNOTATION_MODEL_SHA] == SHA


def test_running_never_steps_back_to_pending(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    kube.objects[JOB]["status"] = {"active": 1}
    running = pod("iris-g1-a")
    running["metadata"]["labels"] = {"job-name": "iris-g1"}
    kube.put(running)
    operator.training_job("ml", "iris")
    assert kube.objects[("TrainingJob", "ml", "iris")]["status"]["phase"] == "Running"
    # the pod finished; the Job controller has not counted it yet
    kube.objects[("Pod", "ml", "iris-g1-a")]["status"]["phase"] = "Succeeded"
    kube.objects[JOB]["status"] = {"active": 0}
    operator.training_job("ml", "iris")
    assert kube.objects[("TrainingJob", "ml", "iris")]["status"]["phase"] == "Running"


def test_job_refused_as_invalid_fails_with_the_api_message(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.refuse["Job"] = api_error(
        422,
        "Invalid",
        "Job.batch iris-g1 is invalid: spec.template.spec.containers[0]"
        ".resources.requests: Invalid value: 2Gi: must be less than or equal to memory limit",
    )
    kube.put(training_job())
    operator.training_job("ml", "iris")
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["phase"] == "Failed"
    assert status["lastFailure"]["reason"] == "InvalidSpec"
    assert "must be less than or equal to memory limit" in status["lastFailure"]["message"]
    assert ("iris", "Failed") in kube.events


def test_job_forbidden_by_quota_is_pending_with_the_reason_and_retried(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.refuse["Job"] = api_error(403, "Forbidden", "exceeded quota: count/jobs.batch")
    kube.put(training_job())
    operator.training_job("ml", "iris")
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["phase"] == "Pending"
    assert status["lastFailure"]["reason"] == "Forbidden"
    assert "exceeded quota" in status["lastFailure"]["message"]
    del kube.refuse["Job"]  # the quota was raised: the next reconcile creates the Job
    operator.training_job("ml", "iris")
    assert JOB in kube.objects


def test_pod_creation_refused_reaches_last_failure(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    kube.kube_events.append(
        {
            "type": "Warning",
            "reason": "FailedCreate",
            "message": 'pods "iris-g1-x" is forbidden: exceeded quota: mem, requested: limits',
            "involvedObject": {"kind": "Job", "name": "iris-g1"},
            "lastTimestamp": "2024-01-01T00:00:05Z",
        }
    )
    operator.training_job("ml", "iris")
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["lastFailure"]["reason"] == "FailedCreate"
    assert "exceeded quota" in status["lastFailure"]["message"]


def test_superseded_finished_jobs_are_deleted(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    finish_job(kube)
    operator.training_job("ml", "iris")
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    kube.put(training_job({**IRIS_SPEC, "seed": 7}, generation=2, status=status))
    operator.training_job("ml", "iris")
    assert JOB in kube.deleted


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


CPU = {"requests": {"cpu": "100m"}}


def test_hpa_comes_and_goes_with_autoscaling(kube: MemoryKube, operator: Reconciler) -> None:
    spec = {
        "model": {"storageUri": "pvc://m/iris/v1"},
        "autoscaling": {"maxReplicas": 3},
        "resources": CPU,
    }
    kube.put(model_deployment(spec))
    operator.model_deployment("ml", "iris")
    assert ("HorizontalPodAutoscaler", "ml", "iris") in kube.objects
    # a new Deployment starts at minReplicas; the HPA takes the field over from there
    assert kube.objects[("Deployment", "ml", "iris")]["spec"]["replicas"] == 1
    kube.objects[("Deployment", "ml", "iris")]["metadata"]["managedFields"] = [
        {"manager": "modelyard", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {
            "manager": "kube-controller-manager",
            "subresource": "scale",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        },
    ]
    operator.model_deployment("ml", "iris")
    assert "replicas" not in kube.objects[("Deployment", "ml", "iris")]["spec"]
    kube.put(
        model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}, "replicas": 2}, generation=2)
    )
    operator.model_deployment("ml", "iris")
    assert ("HorizontalPodAutoscaler", "ml", "iris") not in kube.objects
    assert kube.objects[("Deployment", "ml", "iris")]["spec"]["replicas"] == 2
    assert ("PodDisruptionBudget", "ml", "iris") in kube.objects


def test_switching_to_autoscaling_keeps_the_replica_count(
    kube: MemoryKube, operator: Reconciler
) -> None:
    source = {"storageUri": "pvc://m/iris/v1"}
    kube.put(model_deployment({"model": source, "replicas": 20}))
    operator.model_deployment("ml", "iris")
    kube.put(
        model_deployment(
            {
                "model": source,
                "autoscaling": {"minReplicas": 10, "maxReplicas": 40},
                "resources": CPU,
            },
            generation=2,
        )
    )
    operator.model_deployment("ml", "iris")
    # still the only manager of replicas: keep what runs (not the default of 1)
    assert kube.objects[("Deployment", "ml", "iris")]["spec"]["replicas"] == 20


def test_a_users_service_of_the_same_name_is_never_taken_over(
    kube: MemoryKube, operator: Reconciler
) -> None:
    theirs = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "iris", "namespace": "ml"},
        "spec": {"selector": {"app": "frontend"}},
    }
    kube.put(copy.deepcopy(theirs))
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}}))
    operator.model_deployment("ml", "iris")
    assert kube.objects[("Service", "ml", "iris")] == theirs
    status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    assert status["phase"] == "Degraded"
    assert status["lastFailure"]["reason"] == "NameConflict"
    assert ("iris", "Degraded") in kube.events


def test_a_users_hpa_of_the_same_name_is_not_deleted(
    kube: MemoryKube, operator: Reconciler
) -> None:
    theirs = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "iris", "namespace": "ml"},
    }
    kube.put(copy.deepcopy(theirs))
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}, "replicas": 1}))
    operator.model_deployment("ml", "iris")
    assert kube.objects[("HorizontalPodAutoscaler", "ml", "iris")] == theirs


def test_a_child_the_api_refuses_degrades_the_model_deployment(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.refuse["Deployment"] = api_error(
        422, "Invalid", "Deployment.apps iris is invalid: resources: must be less than limit"
    )
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}}))
    operator.model_deployment("ml", "iris")
    status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    assert status["phase"] == "Degraded"
    assert status["lastFailure"]["reason"] == "Invalid"
    assert "must be less than limit" in status["lastFailure"]["message"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"


def test_a_name_that_cannot_name_a_service_is_invalid(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}}, name="2024-iris"))
    operator.model_deployment("ml", "2024-iris")
    status = kube.objects[("ModelDeployment", "ml", "2024-iris")]["status"]
    assert status["phase"] == "Degraded"
    assert status["lastFailure"]["reason"] == "InvalidSpec"
    assert not [k for k in kube.objects if k[0] == "Deployment"]


def test_an_image_outside_the_allow_list_is_refused(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}, "image": "evil:1"}))
    operator.model_deployment("ml", "iris")
    status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    assert status["lastFailure"]["reason"] == "InvalidSpec"
    assert "MODELYARD_ALLOWED_IMAGES" in status["lastFailure"]["message"]
    assert not [k for k in kube.objects if k[0] == "Deployment"]


def ready_deployment(kube: MemoryKube, name: str = "iris", replicas: int = 1) -> None:
    deployment = kube.objects[("Deployment", "ml", name)]
    deployment["metadata"]["generation"] = 1
    deployment["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
        "readyReplicas": replicas,
    }


def test_ready_is_false_when_the_spec_points_at_a_missing_training_job(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}}))
    operator.model_deployment("ml", "iris")
    ready_deployment(kube)
    operator.model_deployment("ml", "iris")
    assert kube.objects[("ModelDeployment", "ml", "iris")]["status"]["phase"] == "Ready"
    status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    kube.put(
        model_deployment(
            {"model": {"trainingJobRef": {"name": "does-not-exist"}}}, generation=2, status=status
        )
    )
    operator.model_deployment("ml", "iris")
    status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "TrainingJobNotFound"
    assert status["model"]["uri"] == "pvc://m/iris/v1", "the old model keeps answering"


def test_ready_is_false_at_zero_replicas(kube: MemoryKube, operator: Reconciler) -> None:
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}, "replicas": 0}))
    operator.model_deployment("ml", "iris")
    ready_deployment(kube, replicas=0)
    operator.model_deployment("ml", "iris")
    status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ScaledToZero")


def test_ready_waits_for_pods_of_the_old_model_to_go(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v2"}}))
    operator.model_deployment("ml", "iris")
    ready_deployment(kube)
    old = pod("iris-old", container="server")
    old["metadata"]["labels"] = naming.server_selector("iris")
    old["metadata"]["annotations"] = {naming.ANNOTATION_MODEL_URI: "pvc://m/iris/v1"}
    old["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    kube.put(old)
    operator.model_deployment("ml", "iris")
    assert kube.objects[("ModelDeployment", "ml", "iris")]["status"]["phase"] == "Progressing"
    del kube.objects[("Pod", "ml", "iris-old")]
    operator.model_deployment("ml", "iris")
    assert kube.objects[("ModelDeployment", "ml", "iris")]["status"]["phase"] == "Ready"


def test_the_served_model_comes_from_the_deployment_not_a_lost_status(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v2"}}))
    operator.model_deployment("ml", "iris")
    # the status write was lost; the spec now follows a TrainingJob with no model yet
    kube.put(model_deployment({"model": {"trainingJobRef": {"name": "iris"}}}, generation=2))
    kube.put(training_job())
    operator.model_deployment("ml", "iris")
    annotations = kube.objects[("Deployment", "ml", "iris")]["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations[naming.ANNOTATION_MODEL_URI] == "pvc://m/iris/v2", "no roll-back"


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
        # nested keys the desired status no longer has are nulled, not left behind
        (
            {"model": {"uri": "pvc://m/iris/v1", "version": "v1", "sha256": SHA}},
            {"model": {"uri": "pvc://m/wine/v3", "version": "v3"}},
            {"model": {"uri": "pvc://m/wine/v3", "version": "v3", "sha256": None}},
        ),
        (
            {"lastFailure": {"reason": "OOMKilled", "exitCode": 137, "pod": "p"}},
            {"lastFailure": {"reason": "GateNotMet", "message": "m"}},
            {
                "lastFailure": {
                    "reason": "GateNotMet",
                    "message": "m",
                    "exitCode": None,
                    "pod": None,
                }
            },
        ),
        ({"conditions": [{"type": "A"}]}, {"conditions": []}, {"conditions": []}),
    ],
)
def test_status_patch(
    current: dict[str, Any] | None, desired: dict[str, Any], patch: dict[str, Any] | None
) -> None:
    assert mergepatch.diff(current, desired) == patch
    if patch is not None:
        assert merge(current or {}, patch) == desired, "the API server ends at desired"


def test_a_stale_pin_does_not_survive_a_source_change(
    kube: MemoryKube, operator: Reconciler
) -> None:
    pinned = {"storageUri": "pvc://m/iris/v1", "sha256": SHA}
    kube.put(model_deployment({"model": pinned}))
    operator.model_deployment("ml", "iris")
    status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    kube.put(
        model_deployment({"model": {"storageUri": "pvc://m/wine/v3"}}, generation=2, status=status)
    )
    operator.model_deployment("ml", "iris")
    model = kube.objects[("ModelDeployment", "ml", "iris")]["status"]["model"]
    assert model == {"uri": "pvc://m/wine/v3", "version": "v3"}
    patches = len(kube.status_patches)
    operator.model_deployment("ml", "iris")
    assert len(kube.status_patches) == patches, "no no-op patch on every reconcile"


def test_a_namespace_being_deleted_ends_the_reconcile_quietly(
    kube: MemoryKube, operator: Reconciler
) -> None:
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
    operator.training_job("ml", "iris")  # RBAC: surfaces in status, not only in a log
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["lastFailure"]["reason"] == "Forbidden"

    def unavailable(manifest: dict[str, Any]) -> dict[str, Any]:
        raise ApiException(status=503, reason="Service Unavailable")  # the cluster's: retried

    kube.apply = unavailable  # type: ignore[method-assign]
    kube.put(training_job(name="other"))
    with pytest.raises(ApiException):
        operator.training_job("ml", "other")


def test_a_spec_over_the_size_limits_fails_before_any_job(
    kube: MemoryKube, operator: Reconciler
) -> None:
    spec = {
        **IRIS_SPEC,
        "model": {
            "estimator": "RandomForestClassifier",
            "hyperparameters": {"n_estimators": 1_000_000_000, "n_jobs": -1},
        },
    }
    kube.put(training_job(spec))
    operator.training_job("ml", "iris")
    assert not [k for k in kube.objects if k[0] == "Job"]
    status = kube.objects[("TrainingJob", "ml", "iris")]["status"]
    assert status["phase"] == "Failed" and status["lastFailure"]["reason"] == "InvalidSpec"
    assert "spec.model.hyperparameters.n_estimators" in status["lastFailure"]["message"]
    assert "spec.model.hyperparameters.n_jobs" in status["lastFailure"]["message"]


def test_a_volume_that_will_not_mount_reaches_last_failure(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(model_deployment({"model": {"storageUri": "pvc://m/iris/v1"}}))
    operator.model_deployment("ml", "iris")
    stuck = pod("iris-abc", phase="Pending", container="server", waiting=("ContainerCreating", ""))
    stuck["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    stuck["metadata"]["labels"] = naming.server_selector("iris")
    kube.put(stuck)
    kube.kube_events.append(
        {
            "type": "Warning",
            "reason": "FailedMount",
            "message": "MountVolume.SetUp failed for volume models: claim m is bound elsewhere",
            "involvedObject": {"kind": "Pod", "name": "iris-abc"},
            "lastTimestamp": "2024-01-01T00:00:09Z",
        }
    )
    operator.model_deployment("ml", "iris")
    status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    assert status["phase"] == "Degraded"
    assert status["lastFailure"]["reason"] == "FailedMount"
    assert status["lastFailure"]["pod"] == "iris-abc"


def test_deleting_a_training_job_tells_its_followers(
    kube: MemoryKube, operator: Reconciler
) -> None:
    kube.put(training_job())
    operator.training_job("ml", "iris")
    finish_job(kube)
    operator.training_job("ml", "iris")
    kube.put(model_deployment())
    operator.model_deployment("ml", "iris")
    del kube.objects[("TrainingJob", "ml", "iris")]
    operator.deployments_following("ml", "iris")  # what the DELETED handler runs
    status = kube.objects[("ModelDeployment", "ml", "iris")]["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TrainingJobNotFound")
