"""What only the trainer can find out about a spec still fails at once, as InvalidSpec (exit
10) with the field named: an output path that cannot be written, sizes over the limits, a
dataset path that leaves its volume. Error messages quote no more of a file than needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from modelyard_runtime.contract import ENV_SIZE_LIMITS, ENV_STORAGE_URI, ExitCode
from runtime_support import TrainerRun, run_trainer

pytestmark = pytest.mark.runtime

IRIS = {
    "dataset": {"builtin": "iris"},
    "model": {"estimator": "DecisionTreeClassifier"},
    "validation": {"cvFolds": 0},
}


def _invalid_spec(run: TrainerRun) -> str:
    assert run.returncode == ExitCode.INVALID_SPEC, (run.result, run.stderr[-2000:])
    assert run.result["reason"] == "InvalidSpec"
    return str(run.result["message"])


def test_output_path_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "models").write_text("a file where the output directory should be")
    run = run_trainer(IRIS, tmp_path, **{ENV_STORAGE_URI: "pvc://models/iris"})
    message = _invalid_spec(run)
    assert message.startswith("spec.output.storageUri: cannot write ")
    assert "Not a directory" in message or "File exists" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_output_dir_without_permission(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models").chmod(0o500)
    run = run_trainer(IRIS, tmp_path, **{ENV_STORAGE_URI: "pvc://models/iris"})
    assert "Permission denied" in _invalid_spec(run)


def test_version_that_is_not_one_path_segment(tmp_path: Path) -> None:
    run = run_trainer(IRIS, tmp_path, version="../../elsewhere")
    assert "MODELYARD_MODEL_VERSION" in _invalid_spec(run)
    assert not (tmp_path / "elsewhere").exists()


def test_storage_uri_with_dot_dot(tmp_path: Path) -> None:
    run = run_trainer(IRIS, tmp_path, **{ENV_STORAGE_URI: "pvc://models/../../tmp/x"})
    assert _invalid_spec(run).startswith("spec.output.storageUri: ")


def test_sizes_over_the_default_limits(tmp_path: Path) -> None:
    spec = {
        **IRIS,
        "model": {
            "estimator": "RandomForestClassifier",
            "hyperparameters": {"n_estimators": 1_000_000_000, "n_jobs": -1},
        },
    }
    message = _invalid_spec(run_trainer(spec, tmp_path))
    assert "spec.model.hyperparameters.n_estimators: 1000000000 exceeds" in message
    assert "spec.model.hyperparameters.n_jobs: -1 is not allowed" in message


def test_sizes_over_the_operators_limits(tmp_path: Path) -> None:
    spec = {
        **IRIS,
        "search": {"parameters": {"max_depth": {"values": [2, 8]}}},
        "validation": {"cvFolds": 2},
    }
    run = run_trainer(spec, tmp_path, **{ENV_SIZE_LIMITS: '{"maxDepth": 4}'})
    assert _invalid_spec(run) == (
        "spec.search.parameters.max_depth.values[1]: 8 exceeds the limit of 4"
    )
    run = run_trainer(spec, tmp_path / "ok", **{ENV_SIZE_LIMITS: '{"maxDepth": 8}'})
    assert run.returncode == ExitCode.OK, run.result


def test_invalid_limits_are_an_invalid_spec(tmp_path: Path) -> None:
    run = run_trainer(IRIS, tmp_path, **{ENV_SIZE_LIMITS: "{"})
    assert _invalid_spec(run).startswith(f"{ENV_SIZE_LIMITS}: ")


def test_dataset_uri_with_dot_dot(tmp_path: Path) -> None:
    spec = {**IRIS, "dataset": {"uri": "pvc://modelyard-models/../../etc/passwd", "target": "x"}}
    message = _invalid_spec(run_trainer(spec, tmp_path))
    assert "dataset.uri" in message and "root:" not in message


def test_dataset_symlink_out_of_its_volume(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "claim").mkdir(parents=True)
    (root / "claim" / "escape").symlink_to("/etc")
    spec = {**IRIS, "dataset": {"uri": "pvc://claim/escape/passwd", "target": "x"}}
    run = run_trainer(spec, tmp_path / "run", MODELYARD_DATA_ROOT=str(root))
    message = _invalid_spec(run)
    assert "spec.dataset.uri" in message and "leaves the volume" in message
    assert "root:" not in message


def test_a_foreign_file_is_not_quoted_back(tmp_path: Path) -> None:
    """A file that is no table: its first line becomes its one "column" name, which the
    error names only in part."""
    secret = "s3cr3t-" + "x" * 2000
    path = tmp_path / "notes.csv"
    path.write_text(f"{secret}\nline 2\nline 3\n")
    spec = {**IRIS, "dataset": {"uri": f"file://{path}", "target": "label"}}
    run = run_trainer(spec, tmp_path / "run")
    assert run.returncode == ExitCode.INVALID_DATA, run.result
    message = run.result["message"]
    assert "'label' is not in dataset" in message
    assert secret not in message and len(message) < 400 + len(str(path))
