"""A server that cannot vouch for its model refuses to start: it exits with
ServerExitCode.MODEL_LOAD_FAILED and writes why, as ``ModelLoadFailed: ...``, to its
termination message file (what the kubelet reports and the operator shows in status)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
import skops.io
from modelyard_runtime.contract import (
    ENV_EXPECTED_SHA256,
    ENV_RUNTIME,
    ENV_TERMINATION_LOG,
    TERMINATION_MESSAGE_LIMIT,
    ServerExitCode,
    sha256_of,
)
from modelyard_runtime.serve.model import load_model
from runtime_support import TrainerRun, copy_model, run_trainer, serving, start_server
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from v2_requests import assert_good_request

pytestmark = pytest.mark.runtime


def _refused(model_dir: Path, tmp_path: Path, **env: str) -> str:
    """The termination message of a server that must refuse ``model_dir``."""
    termination_log = tmp_path / "termination-log"
    log_path = tmp_path / "server.log"
    env[ENV_TERMINATION_LOG] = str(termination_log)
    process = start_server(model_dir, log_path, **env)
    try:
        code = process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    log = log_path.read_text()
    assert code == ServerExitCode.MODEL_LOAD_FAILED == 3, log
    refusal = [json.loads(line) for line in log.splitlines() if "refusing to start" in line]
    assert refusal and refusal[0]["level"] == "error", log
    message = termination_log.read_text()
    assert message.startswith("ModelLoadFailed: "), message
    assert len(message.encode()) <= TERMINATION_MESSAGE_LIMIT
    return message


def _rewrite_metadata(model_dir: Path, **changes: object) -> None:
    path = model_dir / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata.update(changes)
    path.write_text(json.dumps(metadata))


def test_tampered_model_file_is_refused(iris_run: TrainerRun, tmp_path: Path) -> None:
    model_dir = copy_model(iris_run, tmp_path / "model")
    with (model_dir / "model.skops").open("ab") as stream:
        stream.write(b"\0")
    message = _refused(model_dir, tmp_path)
    assert "sha256 mismatch" in message and "model.skops" in message


def test_wrong_pin_is_refused(iris_run: TrainerRun, tmp_path: Path) -> None:
    message = _refused(iris_run.model_dir, tmp_path, **{ENV_EXPECTED_SHA256: "0" * 64})
    assert "sha256 mismatch" in message and "the deployment expects" in message


def test_the_pin_covers_metadata_json(iris_run: TrainerRun, tmp_path: Path) -> None:
    """Reordering the features in metadata.json would permute the input columns silently;
    the artifact digest (the pin) covers metadata.json, so it is refused."""
    model_dir = copy_model(iris_run, tmp_path / "model")
    features = json.loads((model_dir / "metadata.json").read_text())["features"]
    _rewrite_metadata(model_dir, features=features[::-1])
    pin = iris_run.result["model"]["sha256"]
    message = _refused(model_dir, tmp_path, **{ENV_EXPECTED_SHA256: pin})
    assert "sha256 mismatch" in message and "metadata.json" in message


def test_the_pin_is_the_artifact_digest(iris_run: TrainerRun, tmp_path: Path) -> None:
    pin = iris_run.result["model"]["sha256"]
    assert pin == sha256_of(iris_run.model_dir / "metadata.json")
    with serving(
        iris_run.model_dir, tmp_path / "server.log", **{ENV_EXPECTED_SHA256: f"sha256:{pin}"}
    ) as server:
        assert_good_request(server.url)


def test_missing_model_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path / "nothing", tmp_path)
    assert "metadata.json" in message and "does not exist" in message


def test_untrusted_types_are_refused(iris_run: TrainerRun, tmp_path: Path) -> None:
    model_dir = copy_model(iris_run, tmp_path / "model")
    # A tampered (but consistently re-hashed) artifact naming a function to call.
    skops.io.dump(make_pipeline(FunctionTransformer(os.getcwd)), model_dir / "model.skops")
    _rewrite_metadata(model_dir, sha256=sha256_of(model_dir / "model.skops"))
    message = _refused(model_dir, tmp_path)
    assert "does not trust" in message and "getcwd" in message


def test_failed_warm_up_is_refused(iris_run: TrainerRun, tmp_path: Path) -> None:
    model_dir = copy_model(iris_run, tmp_path / "model")
    _rewrite_metadata(model_dir, referenceSample=[[1.0, 2.0]])  # 2 of the 4 features
    message = _refused(model_dir, tmp_path)
    assert "warm-up prediction failed" in message


def test_each_file_is_read_once(iris_run: TrainerRun, tmp_path: Path) -> None:
    """What is verified is what is loaded: with both files as pipes, which give their bytes
    exactly once, the model still loads (a second read would find nothing)."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    writers = []
    for name in ("metadata.json", "model.skops"):
        data = (iris_run.model_dir / name).read_bytes()
        os.mkfifo(model_dir / name)

        def write(path: Path = model_dir / name, data: bytes = data) -> None:
            with path.open("wb") as stream:
                stream.write(data)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writers.append(writer)
    model = load_model(str(model_dir), "iris", iris_run.result["model"]["sha256"])
    assert model.digest == iris_run.result["model"]["sha256"]
    model.warm_up()
    for writer in writers:
        writer.join(timeout=10)
        assert not writer.is_alive()


def test_a_tampered_onnx_file_is_refused(iris_run: TrainerRun, tmp_path: Path) -> None:
    """Auto serves iris from model.onnx: those bytes decide the predictions, so they are
    verified against metadata.json like model.skops."""
    model_dir = copy_model(iris_run, tmp_path / "model")
    with (model_dir / "model.onnx").open("ab") as stream:
        stream.write(b"\0")
    message = _refused(model_dir, tmp_path)
    assert "sha256 mismatch" in message and "model.onnx" in message


def test_an_onnx_model_that_answers_differently_is_refused_at_warm_up(
    iris_run: TrainerRun, tmp_path: Path
) -> None:
    """A consistently re-hashed model.onnx of another model (as strongly regularised as to
    answer differently): the warm-up re-checks parity with the pipeline on the reference
    sample and refuses to serve it."""
    other = run_trainer(
        {
            "dataset": {"builtin": "iris"},
            "model": {"estimator": "LogisticRegression", "hyperparameters": {"C": 0.001}},
            "validation": {"cvFolds": 0},
        },
        tmp_path / "other",
    )
    assert other.returncode == 0, other.stderr[-3000:]
    model_dir = copy_model(iris_run, tmp_path / "model")
    shutil.copy(other.model_dir / "model.onnx", model_dir / "model.onnx")
    runtimes = json.loads((model_dir / "metadata.json").read_text())["runtimes"]
    runtimes["onnx"]["sha256"] = sha256_of(model_dir / "model.onnx")
    _rewrite_metadata(model_dir, runtimes=runtimes)
    message = _refused(model_dir, tmp_path)
    assert "does not match the pipeline on the reference sample" in message, message


def test_onnx_asked_of_a_model_without_one_is_refused(tmp_path: Path) -> None:
    """Distance-weighted neighbours convert, but not with parity (test_trainer_compiled)."""
    neighbours = run_trainer(
        {
            "dataset": {"builtin": "iris"},
            "model": {
                "estimator": "KNeighborsClassifier",
                "hyperparameters": {"weights": "distance"},
            },
            "validation": {"cvFolds": 0},
        },
        tmp_path / "neighbours",
    )
    assert neighbours.returncode == 0 and neighbours.result["model"]["onnx"] is False
    message = _refused(neighbours.model_dir, tmp_path, **{ENV_RUNTIME: "onnx"})
    assert message.startswith("ModelLoadFailed: runtime onnx cannot serve this model: "), message
    assert "no parity-checked ONNX model: " in message and " differ " in message
    # Auto (the default) serves it with scikit-learn.
    with serving(neighbours.model_dir, tmp_path / "server.log") as server:
        meta = httpx.get(f"{server.url}/v2/models/iris").json()
        assert meta["platform"] == "sklearn"
        assert_good_request(server.url)
