"""TrainingJob -> batch/v1 Job -> (the test plays kubelet for the trainer pod) -> the real Job
controller -> TrainingJob status. Success, retryable and non-retryable failures, OOM, deadline."""

from __future__ import annotations

from typing import Any

import pytest
from modelyard_runtime.contract import TrainerResult

from .operator_harness import (
    GROUP_VERSION,
    RUNTIME_IMAGE,
    Modelyard,
    condition,
    condition_is,
    events_for,
    finish_trainer,
    phase,
    running_trainer_pod,
    succeed_trainer,
    trainer_pods,
    trainer_result,
    training_job,
    wait_for,
)

pytestmark = pytest.mark.cluster


def wait_phase(
    modelyard: Modelyard, ns: str, name: str, wanted: str, timeout: float = 60
) -> dict[str, Any]:
    api = modelyard.api
    tj: dict[str, Any] = wait_for(
        f"TrainingJob {ns}/{name} phase {wanted}",
        lambda: (found := api.tj(ns, name)) is not None and phase(found) == wanted and found,
        timeout=timeout,
        show=lambda: api.tj(ns, name),
    )
    return tj


def wait_job(modelyard: Modelyard, ns: str, name: str) -> dict[str, Any]:
    job: dict[str, Any] = wait_for(
        f"Job {ns}/{name}",
        lambda: modelyard.api.get("batch/v1", "Job", ns, name),
        show=lambda: modelyard.api.tj(ns, name.rsplit("-g", 1)[0]),
    )
    return job


def test_job_succeeds(modelyard: Modelyard, ns: str) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl
    kubectl.apply(training_job("iris"), namespace=ns)
    job = wait_job(modelyard, ns, "iris-g1")

    # The Job the operator made.
    spec = job["spec"]
    assert spec["backoffLimit"] == 2
    assert job["metadata"]["ownerReferences"][0]["kind"] == "TrainingJob"
    assert job["metadata"]["ownerReferences"][0]["controller"] is True
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob"
    assert rules[0]["onExitCodes"] == {
        "containerName": "trainer",
        "operator": "In",
        "values": [10, 11, 12],
    }
    assert rules[1]["action"] == "Ignore"
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    (container,) = pod_spec["containers"]
    assert container["image"] == RUNTIME_IMAGE
    assert container["command"] == ["modelyard-train"]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELYARD_STORAGE_URI"] == "pvc://modelyard-models/iris"
    assert env["MODELYARD_OUTPUT_DIR"] == "/mnt/models/iris"
    assert env["MODELYARD_MODEL_VERSION"].startswith("v1-")
    assert '"estimator":"LogisticRegression"' in env["MODELYARD_TRAINING_SPEC"]

    # kwok runs the pod; the TrainingJob reports it.
    pod = running_trainer_pod(api, ns, "iris-g1")
    wait_phase(modelyard, ns, "iris", "Running")

    said = succeed_trainer(api, pod)
    tj = wait_phase(modelyard, ns, "iris", "Succeeded")
    status = tj["status"]
    assert said.model is not None
    assert status["model"] == said.model.model_dump(by_alias=True)
    assert status["metrics"] == {"accuracy": 0.9667, "f1": 0.9627}
    assert status["validation"]["passed"] is True
    assert status["attempts"] == 1
    assert status["jobName"] == "iris-g1"
    assert status["observedGeneration"] == tj["metadata"]["generation"]
    assert status["dataset"] == {"digest": "sha256:" + "ab" * 32, "rows": 150, "columns": 4}
    assert condition_is(tj, "Succeeded")
    assert condition_is(tj, "Failed", "False")
    validated = condition(tj, "Validated")
    assert validated is not None and validated["reason"] == "GatePassed"
    assert "accuracy=0.9667 (>= 0.9: ok)" in validated["message"]
    assert "lastFailure" not in status

    # kubectl users see it too.
    kubectl("wait", "--for=condition=Succeeded", "tj/iris", "-n", ns, "--timeout=10s")
    row = kubectl("get", "tj", "iris", "-n", ns, "--no-headers").split()
    assert row[:4] == ["iris", "Succeeded", said.model.version, "0.9667"], row
    events = events_for(api, ns, "iris")
    assert any(e["reason"] == "Succeeded" and e["type"] == "Normal" for e in events), events


def failed_with(
    modelyard: Modelyard, ns: str, name: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    tj = wait_phase(modelyard, ns, name, "Failed", timeout=timeout)
    failure = tj["status"].get("lastFailure") or {}
    assert failure.get("reason") == reason, tj["status"]
    assert condition_is(tj, "Failed")
    assert condition_is(tj, "Succeeded", "False")
    events = wait_for(
        f"a Warning event Failed for {name}",
        lambda: [
            e
            for e in events_for(modelyard.api, ns, name)
            if e["reason"] == "Failed" and e["type"] == "Warning"
        ],
    )
    assert events[0]["involvedObject"]["kind"] == "TrainingJob"
    return tj


def test_retryable_failure_makes_a_new_pod(modelyard: Modelyard, ns: str) -> None:
    """Exit 1 (InternalError) is retried by the Job controller; attempts are counted; then
    the retry succeeds."""
    api = modelyard.api
    modelyard.kubectl.apply(training_job("flaky", backoff_limit=2), namespace=ns)
    first = running_trainer_pod(api, ns, "flaky-g1")
    crash = TrainerResult(reason="InternalError", message="MemoryError in fit")
    finish_trainer(api, first, exit_code=1, message=crash.to_termination_message())

    tj = wait_for(
        "the failed attempt in status",
        lambda: (
            (t := api.tj(ns, "flaky"))
            and (t.get("status") or {}).get("lastFailure", {}).get("exitCode") == 1
            and t
        ),
        show=lambda: api.tj(ns, "flaky"),
    )
    assert tj["status"]["lastFailure"]["reason"] == "InternalError"
    assert tj["status"]["lastFailure"]["message"] == "MemoryError in fit"
    assert phase(tj) in ("Pending", "Running")

    # The Job controller's own backoff (10 s) before the replacement pod.
    second = running_trainer_pod(api, ns, "flaky-g1", exclude=(first["metadata"]["name"],))
    wait_for(
        "attempts == 2",
        lambda: ((api.tj(ns, "flaky") or {}).get("status") or {}).get("attempts") == 2,
        show=lambda: api.tj(ns, "flaky"),
    )
    succeed_trainer(api, second)
    tj = wait_phase(modelyard, ns, "flaky", "Succeeded")
    assert tj["status"]["attempts"] == 2
    assert "lastFailure" not in tj["status"]
    assert len(trainer_pods(api, ns, "flaky-g1")) == 2


def test_non_retryable_exit_fails_at_once(modelyard: Modelyard, ns: str) -> None:
    """Exit 11 (InvalidData) matches the podFailurePolicy: no retry, despite backoffLimit 2."""
    api = modelyard.api
    modelyard.kubectl.apply(training_job("baddata", backoff_limit=2), namespace=ns)
    pod = running_trainer_pod(api, ns, "baddata-g1")
    said = TrainerResult(reason="InvalidData", message="column 'species' not found in iris.csv")
    finish_trainer(api, pod, exit_code=11, message=said.to_termination_message())

    tj = failed_with(modelyard, ns, "baddata", "InvalidData")
    assert tj["status"]["lastFailure"] == {
        "reason": "InvalidData",
        "exitCode": 11,
        "message": "column 'species' not found in iris.csv",
        "pod": pod["metadata"]["name"],
    }
    assert tj["status"]["attempts"] == 1
    cond = condition(tj, "Failed")
    assert cond is not None and cond["reason"] == "InvalidData"
    job = api.get("batch/v1", "Job", ns, "baddata-g1")
    assert job is not None
    job_failed = [c for c in job["status"]["conditions"] if c["type"] == "Failed"]
    assert job_failed and job_failed[0]["reason"] == "PodFailurePolicy"
    assert len(trainer_pods(api, ns, "baddata-g1")) == 1


def test_oom_killed(modelyard: Modelyard, ns: str) -> None:
    api = modelyard.api
    modelyard.kubectl.apply(training_job("hungry", backoff_limit=0), namespace=ns)
    pod = running_trainer_pod(api, ns, "hungry-g1")
    finish_trainer(api, pod, exit_code=137, reason="OOMKilled")

    tj = failed_with(modelyard, ns, "hungry", "OOMKilled")
    failure = tj["status"]["lastFailure"]
    assert failure["exitCode"] == 137
    assert "raise spec.resources.limits.memory" in failure["message"]
    assert "BackoffLimitExceeded" in failure["message"]
    assert tj["status"]["attempts"] == 1


def test_deadline_exceeded(modelyard: Modelyard, ns: str) -> None:
    modelyard.kubectl.apply(training_job("slow", activeDeadlineSeconds=3), namespace=ns)
    # Nobody finishes the pod: the Job controller stops it at the deadline -- whether or not
    # it was Running by then (on a busy machine its scheduling alone can take longer than 3 s,
    # so waiting for Running first would race the deadline).
    tj = failed_with(modelyard, ns, "slow", "DeadlineExceeded", timeout=60)
    failure = tj["status"]["lastFailure"]
    assert "deadline" in failure["message"].lower(), failure


def test_gate_not_met_is_final(modelyard: Modelyard, ns: str) -> None:
    """Exit 12: the model was trained and stored but failed its gate; status says which
    metric, and no model is published."""
    api = modelyard.api
    modelyard.kubectl.apply(training_job("weak", gate_min=0.99), namespace=ns)
    pod = running_trainer_pod(api, ns, "weak-g1")
    said = trainer_result(pod, reason="GateNotMet", accuracy=0.9, gate_min=0.99)
    finish_trainer(api, pod, exit_code=12, message=said.to_termination_message())

    tj = failed_with(modelyard, ns, "weak", "GateNotMet")
    status = tj["status"]
    assert "model" not in status
    assert status["validation"]["passed"] is False
    assert status["metrics"]["accuracy"] == 0.9
    validated = condition(tj, "Validated")
    assert validated is not None and validated["status"] == "False"
    assert "accuracy=0.9 (>= 0.99: NOT MET)" in validated["message"]
    assert api.get(GROUP_VERSION, "TrainingJob", ns, "weak") is not None
