"""The kubectl plugin's pages and patches (modelyard.cli), pure: objects in, text or patch out.
The plugin as a real process through kubectl is in tests/cluster/test_operator_retraining.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from factories import SHA, model_deployment, training_job
from modelyard import cli

V2_SHA = "b" * 64


def fields(page: str) -> dict[str, str]:
    """``field  value`` lines (two or more spaces apart) as a dict."""
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in page.splitlines())  # type: ignore[misc]


def md_with(**status: Any) -> dict[str, Any]:
    return model_deployment(status={"phase": "Ready", **status})


def test_a_training_job_page_says_model_metrics_gate_and_comparison() -> None:
    body = training_job(
        status={
            "phase": "Succeeded",
            "model": {"uri": "pvc://m/iris/v2", "version": "v2", "sha256": V2_SHA},
            "metrics": {"accuracy": 0.97, "f1": 0.96},
            "validation": {"passed": True},
            "dataset": {"digest": "sha256:ab", "rows": 150, "columns": 4},
            "comparison": {
                "metric": "accuracy",
                "greaterIsBetter": True,
                "challenger": 0.97,
                "champion": {"version": "v1", "sha256": SHA, "metrics": {"accuracy": 0.62}},
                "improvement": 0.35,
            },
        }
    )
    page = fields(cli.status_page("TrainingJob", body))
    assert page["phase"] == "Succeeded"
    assert page["sha256"] == V2_SHA
    assert page["metrics"] == "accuracy=0.97, f1=0.96"
    assert page["gate"] == "passed"
    assert page["vs champion"] == "v1: accuracy 0.97 vs 0.62"


def test_a_model_deployment_page_says_drift_rollout_and_the_last_decision() -> None:
    body = md_with(
        model={"uri": "pvc://m/iris/v2", "version": "v2", "sha256": V2_SHA},
        replicas=2,
        readyReplicas=2,
        drift={
            "state": "Drifting",
            "since": "2026-12-03T10:00:00Z",
            "lastChecked": "2026-12-03T10:05:00Z",
            "modelVersion": "v2",
            "features": [{"name": "petal_length", "test": "ks", "drifted": True}],
        },
        rollout={"phase": "Progressing", "reason": "CanaryStarted", "actualWeight": 48.5},
        retraining={
            "since": "2026-12-01T00:00:00Z",
            "lastDecision": {
                "job": "iris-retrain-2",
                "at": "2026-12-03T09:00:00Z",
                "result": "Rejected",
                "reason": "NotBetter",
                "message": "r2 scores 0.95 against 0.98",
            },
        },
        conditions=[
            {
                "type": "Ready",
                "status": "True",
                "reason": "ModelServing",
                "message": "v2 answers on 2 replica(s)",
                "lastTransitionTime": "2026-12-03T09:00:00Z",
            }
        ],
    )
    page = fields(cli.status_page("ModelDeployment", body))
    assert page["replicas"] == "2/2 ready"
    assert page["drift"] == "Drifting since 2026-12-03T10:00:00Z (petal_length)"
    assert page["rollout"] == "Progressing CanaryStarted at 48.5%"
    decision = "Rejected NotBetter (iris-retrain-2): r2 scores 0.95 against 0.98"
    assert page["last decision"] == decision
    assert page["condition Ready"] == "True ModelServing: v2 answers on 2 replica(s)"


def test_history_joins_each_model_with_its_training_job() -> None:
    body = md_with(
        modelHistory=[
            {
                "version": "r1",
                "uri": "pvc://m/iris/r1",
                "sha256": V2_SHA,
                "trainingJob": "iris-retrain-1",
                "promotedAt": "2026-12-03T10:00:00Z",
                "why": "Drift",
            },
            {
                "version": "v1",
                "uri": "pvc://m/iris/v1",
                "promotedAt": "2026-12-01T00:00:00Z",
                "why": "Spec",
            },
        ]
    )
    jobs = {
        "iris-retrain-1": training_job(
            name="iris-retrain-1",
            status={
                "metrics": {"accuracy": 0.97},
                "dataset": {"digest": "sha256:" + "c" * 64, "rows": 150, "columns": 4},
            },
        )
    }
    lines = cli.history_rows(body, jobs).splitlines()
    assert lines[0].split() == [
        "VERSION",
        "SHA256",
        "WHY",
        "PROMOTED",
        "TRAINING",
        "JOB",
        "DATA",
        "METRICS",
    ]
    assert lines[1].split() == [
        "r1",
        "b" * 12,
        "Drift",
        "2026-12-03T10:00:00Z",
        "iris-retrain-1",
        "c" * 12,
        "accuracy=0.97",
    ]
    assert lines[2].split() == ["v1", "-", "Spec", "2026-12-01T00:00:00Z", "-", "-", "-"]


def test_no_history_is_an_error_the_user_reads() -> None:
    with pytest.raises(cli.CliError, match="no model history"):
        cli.history_rows(md_with(), {})


def test_promote_approves_a_paused_canary_or_a_waiting_challenger() -> None:
    paused = md_with(
        rollout={
            "phase": "Paused",
            "reason": "AwaitingApproval",
            "canary": {"uri": "u", "version": "v2", "sha256": V2_SHA},
        }
    )
    assert cli.promotion_patch(paused) == {"spec": {"rollout": {"approve": V2_SHA}}}
    waiting = md_with(
        retraining={
            "since": "2026-12-01T00:00:00Z",
            "lastDecision": {
                "job": "iris-retrain-1",
                "at": "2026-12-03T09:00:00Z",
                "result": "AwaitingApproval",
                "reason": "AwaitingApproval",
                "challenger": {"version": "r1", "sha256": V2_SHA},
            },
        }
    )
    assert cli.promotion_patch(waiting) == {
        "spec": {"retraining": {"promotion": {"approve": V2_SHA}}}
    }
    with pytest.raises(cli.CliError, match="nothing awaits approval"):
        cli.promotion_patch(md_with())


def test_abort_names_the_running_canary_and_retry_takes_it_out() -> None:
    canary = {"uri": "u", "version": "v2", "sha256": V2_SHA}
    for phase in ("Progressing", "Paused"):
        running = md_with(rollout={"phase": phase, "canary": canary})
        assert cli.abort_patch(running) == {"spec": {"rollout": {"abort": V2_SHA}}}
    for phase in ("Promoting", "RolledBack", "Idle"):
        with pytest.raises(cli.CliError, match=f"no canary to abort .rollout phase: {phase}"):
            cli.abort_patch(md_with(rollout={"phase": phase, "canary": canary}))
    aborted = md_with(rollout={"phase": "RolledBack", "reason": "Aborted", "canary": canary})
    aborted["spec"]["rollout"] = {"strategy": "Canary", "abort": V2_SHA}
    assert cli.retry_patch(aborted) == {"spec": {"rollout": {"abort": None}}}  # merge patch: remove
    with pytest.raises(cli.CliError, match="nothing to retry"):
        cli.retry_patch(md_with())


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("a,b\n1,2\n3.5,4\n", [[1.0, 2.0], [3.5, 4.0]]),
        ("[[1, 2], [3, 4]]", [[1, 2], [3, 4]]),
        ("[5.1, 3.5, 1.4, 0.2]", [[5.1, 3.5, 1.4, 0.2]]),
    ],
)
def test_rows_from_csv_or_json(text: str, rows: list[list[Any]]) -> None:
    assert cli.parse_rows(text) == rows


def test_the_infer_body_is_v2() -> None:
    assert cli.infer_body([[1.0, 2.0], [3.0, 4.0]]) == {
        "inputs": [
            {"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [1.0, 2.0, 3.0, 4.0]}
        ]
    }
    assert cli.infer_body([["a", 1.0]])["inputs"][0]["datatype"] == "BYTES"
