"""The runtime image, built and run for real: train on iris, then serve the model, both
read-only, non-root, with every capability dropped; the runtime tier's bad requests against
the served image."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from image_support import REPO, docker, installed_versions, locked_versions
from modelyard_runtime.contract import ServerExitCode, sha256_of
from v2_requests import (
    BAD_REQUESTS,
    INFER,
    MAX_BODY_BYTES,
    ROWS_CLASSES,
    BadRequest,
    assert_refused_then_serving,
    infer_body,
)

pytestmark = pytest.mark.image

HARDENED = [
    "--read-only",
    "--cap-drop",
    "ALL",
    "--user",
    "10001:10001",
    "--security-opt",
    "no-new-privileges",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("store")
    store.chmod(0o777)  # written by UID 10001 inside the container
    return store


def train_in_image(runtime_image: str, store: Path, spec: dict[str, Any]) -> dict[str, Any]:
    done = docker(
        "run",
        "--rm",
        *HARDENED,
        "-v",
        f"{store}:/models",
        "-e",
        "MODELYARD_OUTPUT_DIR=/models",
        "-e",
        "MODELYARD_STORAGE_URI=pvc://models",
        "-e",
        "MODELYARD_MODEL_VERSION=v1",
        "-e",
        "MODELYARD_RESULT_PATH=/models/result.json",
        "-e",
        f"MODELYARD_TRAINING_SPEC={json.dumps(spec)}",
        runtime_image,
        "modelyard-train",
        timeout=600,
    )
    result: dict[str, Any] = json.loads((store / "result.json").read_text())
    assert result["reason"] == "Succeeded", done.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(runtime_image: str, model_store: Path) -> dict[str, Any]:
    spec = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": "RandomForestClassifier", "hyperparameters": {"n_estimators": 20}},
        "validation": {"cvFolds": 3, "gate": [{"metric": "accuracy", "min": 0.8}]},
    }
    return train_in_image(runtime_image, model_store, spec)


def test_trainer_in_the_image(trained: dict[str, Any], model_store: Path) -> None:
    assert trained["model"] == {
        "uri": "pvc://models/v1",
        "version": "v1",
        "sha256": sha256_of(model_store / "v1" / "metadata.json"),  # the artifact digest
        "autoRuntime": "onnx",  # the forest as a double-precision TreeEnsemble
        "onnx": True,
    }
    assert sorted(p.name for p in (model_store / "v1").iterdir()) == [
        "metadata.json",
        "model.onnx",
        "model.skops",
    ]


def test_the_compiled_runtime_in_the_image(runtime_image: str, tmp_path: Path) -> None:
    """The image's own onnx/skl2onnx/onnxruntime convert and parity-check a pipeline under the
    hardened profile (read-only root, no capabilities, non-root)."""
    store = tmp_path / "store"
    store.mkdir()
    store.chmod(0o777)
    spec = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": "LogisticRegression", "hyperparameters": {"max_iter": 500}},
        "validation": {"cvFolds": 0},
    }
    train_in_image(runtime_image, store, spec)
    metadata = json.loads((store / "v1" / "metadata.json").read_text())
    onnx = metadata["runtimes"]["onnx"]
    assert onnx["available"] is True, onnx
    assert onnx["parity"]["labelAgreement"] == 1.0
    assert onnx["sha256"] == sha256_of(store / "v1" / "model.onnx")


def test_trainer_error_exit_code_in_the_image(runtime_image: str) -> None:
    done = docker(
        "run",
        "--rm",
        *HARDENED,
        "-e",
        "MODELYARD_RESULT_PATH=/dev/stdout",
        "-e",
        "MODELYARD_OUTPUT_DIR=/tmp/out",
        "-e",
        "MODELYARD_TRAINING_SPEC={}",
        runtime_image,
        "modelyard-train",
        check=False,
    )
    assert done.returncode == 10, done.stderr[-2000:]
    assert '"reason":"InvalidSpec"' in done.stdout


@contextmanager
def served(runtime_image: str, model_dir: Path, *env: str) -> Iterator[tuple[str, str]]:
    """(URL, container name) of the image serving ``model_dir`` as iris, once ready."""
    port = free_port()
    name = f"modelyard-serve-test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    flags = [flag for value in env for flag in ("-e", value)]
    docker(
        "run", "-d", "--name", name, *HARDENED,
        "-v", f"{model_dir}:/model:ro",
        "-e", "MODELYARD_MODEL_DIR=/model", "-e", "MODELYARD_MODEL_NAME=iris", *flags,
        "-p", f"127.0.0.1:{port}:8080", runtime_image,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert _running(name), docker("logs", name, check=False).stderr[-3000:]
            assert time.monotonic() < deadline, "server not ready in 120 s"
            time.sleep(0.3)
        print(f"server ready {time.monotonic() - started:.1f}s after docker run")
        yield url, name
    finally:
        docker("rm", "-f", name, check=False)


def _running(name: str) -> bool:
    return docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"


def test_server_in_the_image(
    runtime_image: str, trained: dict[str, Any], model_store: Path
) -> None:
    pin = f"MODELYARD_EXPECTED_SHA256={trained['model']['sha256']}"
    with served(runtime_image, model_store / "v1", pin) as (url, name):
        body = infer_body(outputs=[{"name": "predict"}, {"name": "predict_proba"}])
        response = httpx.post(f"{url}{INFER}", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == ROWS_CLASSES
        assert httpx.get(f"{url}/metrics").status_code == 200
        user = docker("exec", name, "python3", "-c", "import os; print(os.getuid())")
        assert user.stdout.strip() == "10001"
        docker("stop", "-t", "20", name)
        logs = docker("logs", name).stderr
        assert "model ready" in logs and "shutting down" in logs


@pytest.fixture(scope="module")
def image_server(runtime_image: str, trained: dict[str, Any], model_store: Path) -> Iterator[str]:
    with served(
        runtime_image, model_store / "v1", f"MODELYARD_MAX_BODY_BYTES={MAX_BODY_BYTES}"
    ) as (url, name):
        yield url
        assert _running(name)


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=[b.case for b in BAD_REQUESTS])
def test_bad_request_then_good_request_in_the_image(image_server: str, bad: BadRequest) -> None:
    """The runtime tier's bad bodies against what ships: the image's own dependency set
    (a nesting bomb crashed the image's orjson while the dev venv's newer one passed)."""
    assert_refused_then_serving(image_server, bad)


def test_server_refuses_a_tampered_model_in_the_image(
    runtime_image: str, model_store: Path, tmp_path: Path
) -> None:
    """Exit code 3 and ``ModelLoadFailed: ...`` in the termination message file, as the
    kubelet would read it (here a mounted file; in a pod /dev/termination-log)."""
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for file in ("metadata.json", "model.skops"):
        (tampered / file).write_bytes((model_store / "v1" / file).read_bytes())
    with (tampered / "model.skops").open("ab") as stream:
        stream.write(b"x")
    tampered.chmod(0o755)
    termination = tmp_path / "termination"
    termination.mkdir()
    termination.chmod(0o777)  # written by UID 10001
    done = docker(
        "run", "--rm", *HARDENED,
        "-v", f"{tampered}:/model:ro", "-v", f"{termination}:/termination",
        "-e", "MODELYARD_MODEL_DIR=/model",
        "-e", "MODELYARD_TERMINATION_LOG=/termination/log",
        runtime_image, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == ServerExitCode.MODEL_LOAD_FAILED, done.stderr[-2000:]
    assert "refusing to start" in done.stderr
    message = (termination / "log").read_text()
    assert message.startswith("ModelLoadFailed: sha256 mismatch"), message


def test_image_runs_the_locked_versions(runtime_image: str) -> None:
    """What the image installed is exactly serving_image/requirements.txt (plus the
    project's own package), and no operator entry point came along."""
    pinned = locked_versions(REPO / "serving_image" / "requirements.txt")
    installed = installed_versions(runtime_image)
    assert installed.pop("modelyard") == "0.1.0"
    assert installed == pinned
    scripts = docker("run", "--rm", runtime_image, "ls", "/opt/venv/bin").stdout.split()
    assert "modelyard-serve" in scripts and "modelyard-operator" not in scripts
