"""TrainingJob -> Job (builder) and (Job, pods, termination message) -> status, table-driven."""

from __future__ import annotations

import json
from typing import Any

import pytest
from factories import (
    IRIS_SPEC,
    SHA,
    job,
    pod,
    result,
    terminated,
    training_job,
)
from modelyard import naming, training
from modelyard.api import InvalidSpec, TrainingJob, TrainingJobSpec, TrainingJobStatus
from modelyard.settings import OperatorSettings
from modelyard_runtime import contract
from modelyard_runtime.spec import TrainingSpec
from pydantic import ValidationError

SETTINGS = OperatorSettings(runtime_image="runtime:1", default_storage_uri="pvc://models")
CONFIG = training.TrainerConfig.of(SETTINGS)


def tj(spec: dict[str, Any] | None = None, **kwargs: Any) -> TrainingJob:
    return TrainingJob.parse(training_job(spec, **kwargs))


AT = "2024-01-02T03:04:05Z"


def env_of(manifest: dict[str, Any]) -> dict[str, str]:
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def container_of(manifest: dict[str, Any]) -> dict[str, Any]:
    return dict(manifest["spec"]["template"]["spec"]["containers"][0])


# --- builder -------------------------------------------------------------------------------------


def test_job_runs_the_trainer_with_the_contract_env() -> None:
    manifest = training.build_job(tj(), CONFIG)
    env = env_of(manifest)
    assert manifest["metadata"]["name"] == "iris-g1"
    assert container_of(manifest)["command"] == ["modelyard-train"]
    assert container_of(manifest)["image"] == "runtime:1"
    spec = TrainingSpec.model_validate_json(env[contract.ENV_TRAINING_SPEC])
    assert spec.dataset.builtin == "iris"
    assert spec.validation.gate[0].min == 0.9
    assert env[contract.ENV_STORAGE_URI] == "pvc://models/iris"
    assert env[contract.ENV_OUTPUT_DIR] == "/mnt/models/iris"
    assert env[contract.ENV_MODEL_VERSION] == "v1-01234567"
    assert env[contract.ENV_DATA_ROOT] == "/mnt/data"


@pytest.mark.parametrize(
    ("output", "claim", "output_dir"),
    [
        ({"storageUri": "pvc://store/teams/a"}, "store", "/mnt/models/teams/a"),
        ({"storageUri": "pvc://store"}, "store", "/mnt/models"),
        ({}, "models", "/mnt/models/iris"),
    ],
)
def test_output_pvc_is_mounted(output: dict[str, Any], claim: str, output_dir: str) -> None:
    manifest = training.build_job(tj({**IRIS_SPEC, "output": output}), CONFIG)
    volumes = {v["name"]: v for v in manifest["spec"]["template"]["spec"]["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": claim}
    mounts = {m["name"]: m for m in container_of(manifest)["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/mnt/models"
    assert env_of(manifest)[contract.ENV_OUTPUT_DIR] == output_dir


def test_pvc_dataset_is_mounted_read_only() -> None:
    spec = {**IRIS_SPEC, "dataset": {"uri": "pvc://data/x/train.csv", "target": "y"}}
    manifest = training.build_job(tj(spec), CONFIG)
    volumes = {v["name"]: v for v in manifest["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "data", "readOnly": True}
    mounts = {m["name"]: m for m in container_of(manifest)["volumeMounts"]}
    assert mounts["data"] == {"name": "data", "mountPath": "/mnt/data/data", "readOnly": True}
    # the trainer finds the file where the contract says
    found = contract.local_path_of("pvc://data/x/train.csv", "/mnt/data")
    assert found == "/mnt/data/data/x/train.csv"


def test_builtin_dataset_mounts_no_data() -> None:
    manifest = training.build_job(tj(), CONFIG)
    names = [v["name"] for v in manifest["spec"]["template"]["spec"]["volumes"]]
    assert names == ["tmp", "models"]


def test_pod_failure_policy_follows_the_contract() -> None:
    manifest = training.build_job(tj(), CONFIG)
    rules = manifest["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob"
    assert rules[0]["onExitCodes"]["operator"] == "In"
    assert rules[0]["onExitCodes"]["containerName"] == "trainer"
    assert set(rules[0]["onExitCodes"]["values"]) == set(contract.NON_RETRYABLE_EXIT_CODES)
    assert rules[1] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert manifest["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert container_of(manifest)["terminationMessagePolicy"] == "File"


def test_job_is_restricted_and_labelled_and_owned() -> None:
    manifest = training.build_job(tj(), CONFIG)
    pod_spec = manifest["spec"]["template"]["spec"]
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] == 10001
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container_of(manifest)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container_of(manifest)["volumeMounts"]
    labels = manifest["spec"]["template"]["metadata"]["labels"]
    assert labels[naming.LABEL_TRAINING_JOB] == "iris"
    assert labels[naming.LABEL_COMPONENT] == "trainer"
    owner = manifest["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "TrainingJob" and owner["controller"] is True
    assert owner["uid"] == training_job()["metadata"]["uid"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, {"backoffLimit": 2, "suspend": False}),
        (
            {
                "backoffLimit": 0,
                "activeDeadlineSeconds": 60,
                "ttlSecondsAfterFinished": 30,
                "suspend": True,
            },
            {
                "backoffLimit": 0,
                "activeDeadlineSeconds": 60,
                "ttlSecondsAfterFinished": 30,
                "suspend": True,
            },
        ),
    ],
)
def test_job_knobs_pass_through(extra: dict[str, Any], expected: dict[str, Any]) -> None:
    manifest = training.build_job(tj({**IRIS_SPEC, **extra}), CONFIG)
    for key, value in expected.items():
        assert manifest["spec"][key] == value
    if "activeDeadlineSeconds" not in extra:  # bounded in time all the same
        assert manifest["spec"]["activeDeadlineSeconds"] == 3600


def test_no_trainer_is_best_effort() -> None:
    manifest = training.build_job(tj(IRIS_SPEC), CONFIG)
    assert container_of(manifest)["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"memory": "2Gi"},
    }


def test_one_claim_for_data_and_models_is_one_volume() -> None:
    spec = {
        **IRIS_SPEC,
        "dataset": {"uri": "pvc://shared/data/train.csv", "target": "y"},
        "output": {"storageUri": "pvc://shared/models/iris"},
    }
    pod_spec = training.build_job(tj(spec), CONFIG)["spec"]["template"]["spec"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod_spec["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["shared"], "the same claim twice never mounts"
    mounts = {m["mountPath"]: m for m in pod_spec["containers"][0]["volumeMounts"]}
    assert mounts["/mnt/data/shared"] == {
        "name": "models",
        "mountPath": "/mnt/data/shared",
        "readOnly": True,
    }


@pytest.mark.parametrize(
    "uri",
    ["pvc://d/../../etc/passwd", "pvc://d/x/../y.csv", "pvc://d/./x.csv", "file:///mnt/models/x"],
)
def test_dataset_uris_stay_inside_their_claim(uri: str) -> None:
    with pytest.raises(ValidationError):
        TrainingJobSpec.model_validate({**IRIS_SPEC, "dataset": {"uri": uri, "target": "y"}})


def test_resources_pass_through() -> None:
    resources = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    manifest = training.build_job(tj({**IRIS_SPEC, "resources": resources}), CONFIG)
    assert container_of(manifest)["resources"] == resources


def test_builder_is_deterministic_and_json_serialisable() -> None:
    first = training.build_job(tj(), CONFIG)
    assert first == training.build_job(tj(), CONFIG)
    json.dumps(first)


@pytest.mark.parametrize(
    ("name", "generation", "expected"),
    [
        ("iris", 1, "iris-g1"),
        ("iris", 12, "iris-g12"),
        ("x" * 60, 3, None),
        ("x" * 253, 123456, None),
    ],
)
def test_job_name_fits_63_characters(name: str, generation: int, expected: str | None) -> None:
    got = naming.job_name(name, generation)
    assert len(got) <= 63
    if expected is not None:
        assert got == expected
    assert got == naming.job_name(name, generation)
    assert got != naming.job_name(name, generation + 1)


def test_spec_change_retrains_but_suspend_does_not() -> None:
    first = tj(generation=1)
    existing = training.build_job(first, CONFIG)
    suspended = tj({**IRIS_SPEC, "suspend": True}, generation=2)
    assert training.training_generation(suspended, [existing]) == 1
    changed = tj({**IRIS_SPEC, "seed": 7}, generation=3)
    assert training.training_generation(changed, [existing]) == 3
    assert training.build_job(changed, CONFIG)["metadata"]["name"] == "iris-g3"


# --- status --------------------------------------------------------------------------------------


def status_of(
    the_job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    body: TrainingJob | None = None,
) -> Any:
    return training.training_status(body or tj(), the_job, pods, job_name="iris-g1", at=AT)


def conditions(status: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_succeeded_job_reports_model_metrics_and_gate() -> None:
    pods = [pod(phase="Succeeded", terminated=terminated(0, result(), "Completed"))]
    status = status_of(job(succeeded=1, condition=("Complete", "CompletionsReached")), pods)
    assert status.phase == "Succeeded"
    assert status.model.version == "v1-01234567"
    assert status.model.sha256 == "a" * 64
    assert status.metrics == {"accuracy": 0.97, "f1": 0.96}
    assert status.best_params == {"C": 1.0}
    assert status.dataset.rows == 150 and status.dataset.columns == 4
    assert status.validation.passed is True
    assert status.attempts == 1
    assert status.completion_time == "2024-01-01T00:05:00Z"
    assert status.last_failure is None
    assert conditions(status) == {
        "Succeeded": ("True", "Trained"),
        "Failed": ("False", "NotFailed"),
        "Validated": ("True", "GatePassed"),
    }
    assert all(c.observed_generation == 1 for c in status.conditions)


# (case, job, pods, phase, failed-condition reason, lastFailure reason, exit code)
FAILURES = [
    (
        "gate not met",
        job(failed=1, condition=("Failed", "PodFailurePolicy")),
        [
            pod(
                phase="Failed",
                terminated=terminated(
                    12, result("GateNotMet", passed=False, accuracy=0.5, message="gate")
                ),
            )
        ],
        "GateNotMet",
        "GateNotMet",
        12,
    ),
    (
        "invalid data, not retried",
        job(failed=1, condition=("Failed", "PodFailurePolicy")),
        [
            pod(
                phase="Failed",
                terminated=terminated(11, result("InvalidData", message="column y missing")),
            )
        ],
        "InvalidData",
        "InvalidData",
        11,
    ),
    (
        "invalid spec, not retried",
        job(failed=1, condition=("Failed", "PodFailurePolicy")),
        [pod(phase="Failed", terminated=terminated(10, result("InvalidSpec", message="bad C")))],
        "InvalidSpec",
        "InvalidSpec",
        10,
    ),
    (
        "OOMKilled until the backoff limit",
        job(failed=3, condition=("Failed", "BackoffLimitExceeded")),
        [
            pod(
                f"p{i}",
                phase="Failed",
                created=f"2024-01-01T00:0{i}:00Z",
                terminated=terminated(137, reason="OOMKilled"),
            )
            for i in range(3)
        ],
        "BackoffLimitExceeded",
        "OOMKilled",
        137,
    ),
    (
        "a crash (exit 1) until the backoff limit",
        job(failed=3, condition=("Failed", "BackoffLimitExceeded")),
        [pod(phase="Failed", terminated=terminated(1, result("InternalError", message="boom")))],
        "BackoffLimitExceeded",
        "InternalError",
        1,
    ),
    (
        "a crash without a message",
        job(failed=3, condition=("Failed", "BackoffLimitExceeded")),
        [pod(phase="Failed", terminated=terminated(2))],
        "BackoffLimitExceeded",
        "Error",
        2,
    ),
    (
        "deadline exceeded",
        job(failed=1, condition=("Failed", "DeadlineExceeded")),
        [],
        "DeadlineExceeded",
        "DeadlineExceeded",
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "the_job", "pods", "reason", "failure", "exit_code"),
    FAILURES,
    ids=[f[0] for f in FAILURES],
)
def test_failed_job_reports_why(
    case: str,
    the_job: dict[str, Any],
    pods: list[dict[str, Any]],
    reason: str,
    failure: str,
    exit_code: int | None,
) -> None:
    status = status_of(the_job, pods)
    assert status.phase == "Failed", case
    assert conditions(status)["Failed"] == ("True", reason)
    assert conditions(status)["Succeeded"] == ("False", reason)
    assert status.last_failure.reason == failure
    assert status.last_failure.exit_code == exit_code
    assert not status.last_failure.message.startswith("{"), "the trainer JSON is not a message"
    assert status.model is None


def test_gate_not_met_still_reports_metrics_and_verdict() -> None:
    pods = [
        pod(
            phase="Failed",
            terminated=terminated(12, result("GateNotMet", passed=False, accuracy=0.5)),
        )
    ]
    status = status_of(job(failed=1, condition=("Failed", "PodFailurePolicy")), pods)
    assert status.metrics["accuracy"] == 0.5
    assert status.validation.passed is False
    assert conditions(status)["Validated"] == ("False", "GateNotMet")
    assert "accuracy=0.5" in status.conditions[2].message


# (case, job, pods, phase, lastFailure reason or None)
IN_FLIGHT = [
    ("no pod yet", job(), [], "Pending", None),
    ("running", job(active=1), [pod()], "Running", None),
    (
        "image cannot be pulled",
        job(active=1),
        [pod(phase="Pending", waiting=("ImagePullBackOff", "Back-off pulling image"))],
        "Pending",
        "ImagePullBackOff",
    ),
    (
        "image pull error",
        job(active=1),
        [pod(phase="Pending", waiting=("ErrImagePull", "not found"))],
        "Pending",
        "ErrImagePull",
    ),
    (
        "unschedulable",
        job(active=1),
        [pod(phase="Pending", unschedulable="0/1 nodes: insufficient memory")],
        "Pending",
        "Unschedulable",
    ),
    (
        "retrying after an OOMKill",
        job(active=1, failed=1),
        [
            pod(
                "old",
                phase="Failed",
                created="2024-01-01T00:00:00Z",
                terminated=terminated(137, reason="OOMKilled"),
            ),
            pod("new", created="2024-01-01T00:01:00Z"),
        ],
        "Running",
        "OOMKilled",
    ),
    ("suspended", job(suspended=True), [], "Suspended", None),
]


@pytest.mark.parametrize(
    ("case", "the_job", "pods", "phase", "failure"), IN_FLIGHT, ids=[c[0] for c in IN_FLIGHT]
)
def test_unfinished_job(
    case: str,
    the_job: dict[str, Any],
    pods: list[dict[str, Any]],
    phase: str,
    failure: str | None,
) -> None:
    status = status_of(the_job, pods)
    assert status.phase == phase, case
    assert conditions(status)["Succeeded"][0] == "Unknown"
    assert conditions(status)["Failed"][0] == "False"
    assert (status.last_failure.reason if status.last_failure else None) == failure


def test_missing_job_is_pending_or_suspended() -> None:
    assert status_of(None, []).phase == "Pending"
    suspended = tj({**IRIS_SPEC, "suspend": True})
    assert status_of(None, [], suspended).phase == "Suspended"


def test_finished_job_removed_by_ttl_keeps_its_record() -> None:
    pods = [pod(phase="Succeeded", terminated=terminated(0, result(), "Completed"))]
    done = status_of(job(succeeded=1, condition=("Complete", "CompletionsReached")), pods)
    body = tj(status=done.model_dump(by_alias=True, exclude_none=True, mode="json"))
    again = training.training_status(body, None, [], job_name="iris-g1", at="2030-01-01T00:00:00Z")
    assert again == done


def test_last_transition_time_moves_only_on_a_transition() -> None:
    first = status_of(job(active=1), [pod()])
    body = tj(status=first.model_dump(by_alias=True, exclude_none=True, mode="json"))
    later = "2030-01-01T00:00:00Z"
    same = training.training_status(body, job(active=1), [pod()], job_name="iris-g1", at=later)
    assert same == first
    done = training.training_status(
        body,
        job(succeeded=1, condition=("Complete", "CompletionsReached")),
        [pod(phase="Succeeded", terminated=terminated(0, result(), "Completed"))],
        job_name="iris-g1",
        at=later,
    )
    times = {c.type: c.last_transition_time for c in done.conditions}
    assert times["Succeeded"] == later  # Unknown -> True
    assert times["Failed"] == AT  # False -> False: unchanged


def test_exit_zero_without_a_result_is_a_failure() -> None:
    pods = [pod(phase="Succeeded", terminated=terminated(0, "", "Completed"))]
    status = status_of(job(succeeded=1, condition=("Complete", "CompletionsReached")), pods)
    assert status.phase == "Failed"
    assert status.last_failure.reason == "NoResult"


def test_invalid_spec_status() -> None:
    status = training.invalid_spec_status(
        tj().metadata, TrainingJobStatus(), InvalidSpec("spec.dataset: set exactly one"), at=AT
    )
    assert status.phase == "Failed"
    assert conditions(status)["Failed"] == ("True", "InvalidSpec")


def test_the_trainer_gets_the_operators_size_limits() -> None:
    settings = OperatorSettings(runtime_image="runtime:1", size_limits={"n_estimators": 50})  # type: ignore[arg-type]
    env = {
        e["name"]: e["value"]
        for e in container_of(training.build_job(tj(), training.TrainerConfig.of(settings)))["env"]
    }
    assert json.loads(env[contract.ENV_SIZE_LIMITS])["nEstimators"] == 50


def test_a_result_whose_pod_vanished_is_lost_not_no_result() -> None:
    body = tj(status={"jobName": "iris-g1", "phase": "Running"})
    status = training.training_status(
        body,
        job(succeeded=1, condition=("Complete", "CompletionsReached")),
        [],
        job_name="iris-g1",
        at=AT,
    )
    assert status.phase == "Failed"
    assert status.last_failure is not None and status.last_failure.reason == "ResultLost"


# --- the plan ------------------------------------------------------------------------------------


def test_plan_creates_the_current_generations_job() -> None:
    planned = training.plan(tj(), [], CONFIG)
    assert planned.job_name == "iris-g1" and planned.job is None
    assert planned.apply is not None and planned.apply["metadata"]["name"] == "iris-g1"
    assert planned.delete == ()


def test_plan_does_not_reapply_a_recorded_finished_job() -> None:
    finished = job(succeeded=1, condition=("Complete", "CompletionsReached"))
    planned = training.plan(tj(status={"jobName": "iris-g1"}), [finished], CONFIG)
    assert planned.apply is None and planned.job is finished


def test_plan_never_recreates_a_recorded_job_that_is_gone() -> None:
    planned = training.plan(tj(status={"jobName": "iris-g1", "phase": "Running"}), [], CONFIG)
    assert planned.apply is None and planned.job is None  # training_status says JobDeleted


def test_plan_counts_a_job_deleted_before_its_end_as_gone() -> None:
    deleting = job(active=1)
    deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:01:00Z"
    planned = training.plan(tj(status={"jobName": "iris-g1"}), [deleting], CONFIG)
    assert planned.job is None and planned.apply is None


def test_plan_deletes_the_jobs_of_an_older_spec() -> None:
    old = job(name="iris-g1", succeeded=1, condition=("Complete", "CompletionsReached"))
    planned = training.plan(tj({**IRIS_SPEC, "seed": 7}, generation=2), [old], CONFIG)
    assert planned.job_name == "iris-g2" and planned.delete == ("iris-g1",)


def test_plan_refuses_a_spec_over_the_size_limits() -> None:
    limited = training.TrainerConfig.of(
        OperatorSettings(runtime_image="runtime:1", size_limits={"max_iter": 100})  # type: ignore[arg-type]
    )
    with pytest.raises(InvalidSpec, match="max_iter"):
        training.plan(tj(), [], limited)  # IRIS_SPEC asks for max_iter 500


# --- a champion to compare with (spec.retraining's challengers) ----------------------------------

CHAMPION = {"storageUri": "pvc://models/iris/v1-0000", "sha256": SHA, "skipIfDataUnchanged": True}


def test_the_champion_is_mounted_read_only_and_named_to_the_trainer() -> None:
    spec = {
        **IRIS_SPEC,
        "dataset": {"uri": "pvc://data/train.csv", "target": "y"},
        "output": {"storageUri": "pvc://models/iris"},
        "champion": CHAMPION,
    }
    manifest = training.build_job(tj(spec), CONFIG)
    pod_spec = manifest["spec"]["template"]["spec"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod_spec["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["models", "data"], "the champion's claim is the output's: one volume"
    mounts = {m["mountPath"]: m for m in pod_spec["containers"][0]["volumeMounts"]}
    assert mounts["/mnt/champion/models"] == {
        "name": "models",
        "mountPath": "/mnt/champion/models",
        "readOnly": True,
    }
    env = env_of(manifest)
    assert env[contract.ENV_CHAMPION_DIR] == "/mnt/champion/models/iris/v1-0000"
    assert env[contract.ENV_CHAMPION_SHA256] == SHA
    assert env[contract.ENV_SKIP_IF_DATA_UNCHANGED] == "true"


def test_a_champion_on_its_own_claim_gets_its_own_read_only_volume() -> None:
    spec = {**IRIS_SPEC, "champion": {**CHAMPION, "storageUri": "pvc://archive/iris/v1"}}
    pod_spec = training.build_job(tj(spec), CONFIG)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["champion"]["persistentVolumeClaim"] == {
        "claimName": "archive",
        "readOnly": True,
    }


def test_no_champion_no_champion_env() -> None:
    env = env_of(training.build_job(tj(), CONFIG))
    assert not {contract.ENV_CHAMPION_DIR, contract.ENV_SKIP_IF_DATA_UNCHANGED} & set(env)


def test_data_unchanged_is_a_success_without_a_model() -> None:
    said = contract.TrainerResult(
        reason="DataUnchanged",
        message="the dataset is the one the champion was trained on: nothing trained",
        dataset=contract.DatasetInfo(
            source="pvc://data/x.csv", digest="sha256:ab", rows=150, columns=5
        ),
    )
    pods = [
        pod(phase="Succeeded", terminated=terminated(0, said.to_termination_message(), "Completed"))
    ]
    status = status_of(job(succeeded=1, condition=("Complete", "CompletionsReached")), pods)
    assert status.phase == "Succeeded" and status.model is None
    assert conditions(status)["Succeeded"] == ("True", "DataUnchanged")
    assert status.dataset.digest == "sha256:ab" and status.last_failure is None


def test_the_comparison_reaches_status() -> None:
    comparison = contract.Comparison(
        metric="accuracy", greater_is_better=True, challenger=0.97, improvement=0.1
    )
    pods = [
        pod(phase="Succeeded", terminated=terminated(0, result(comparison=comparison), "Completed"))
    ]
    status = status_of(job(succeeded=1, condition=("Complete", "CompletionsReached")), pods)
    assert status.comparison == comparison
