"""The runtime image, built and run for real: train on iris, then serve the model, both
read-only, non-root, with every capability dropped."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest
from image_support import docker

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


@pytest.fixture(scope="module")
def trained(runtime_image: str, model_store: Path) -> dict[str, object]:
    spec = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": "RandomForestClassifier", "hyperparameters": {"n_estimators": 20}},
        "validation": {"cvFolds": 3, "gate": [{"metric": "accuracy", "min": 0.8}]},
    }
    done = docker(
        "run",
        "--rm",
        *HARDENED,
        "-v",
        f"{model_store}:/models",
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
    result = json.loads((model_store / "result.json").read_text())
    assert result["reason"] == "Succeeded", done.stderr[-3000:]
    return result


def test_trainer_in_the_image(trained: dict[str, object], model_store: Path) -> None:
    assert trained["model"] == {
        "uri": "pvc://models/v1",
        "version": "v1",
        "sha256": trained["model"]["sha256"],
    }  # type: ignore[index]
    assert sorted(p.name for p in (model_store / "v1").iterdir()) == [
        "metadata.json",
        "model.skops",
    ]


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


def test_server_in_the_image(
    runtime_image: str, trained: dict[str, object], model_store: Path
) -> None:
    port = free_port()
    name = f"modelyard-serve-test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    docker(
        "run",
        "-d",
        "--name",
        name,
        *HARDENED,
        "-v",
        f"{model_store / 'v1'}:/model:ro",
        "-e",
        "MODELYARD_MODEL_DIR=/model",
        "-e",
        "MODELYARD_MODEL_NAME=iris",
        "-e",
        f"MODELYARD_EXPECTED_SHA256={trained['model']['sha256']}",  # type: ignore[index]
        "-p",
        f"127.0.0.1:{port}:8080",
        runtime_image,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            state = docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            assert state == "true", docker("logs", name, check=False).stderr[-3000:]
            assert time.monotonic() < deadline, "server not ready in 120 s"
            time.sleep(0.3)
        print(f"server ready {time.monotonic() - started:.1f}s after docker run")
        body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 4],
                    "datatype": "FP64",
                    "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3],
                }
            ],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        }
        response = httpx.post(f"{url}/v2/models/iris/infer", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == [0, 2]
        assert httpx.get(f"{url}/metrics").status_code == 200
        user = docker("exec", name, "python3", "-c", "import os; print(os.getuid())")
        assert user.stdout.strip() == "10001"
        docker("stop", "-t", "20", name)
        logs = docker("logs", name).stderr
        assert "model ready" in logs and "shutting down" in logs
    finally:
        docker("rm", "-f", name, check=False)


def test_server_refuses_a_tampered_model_in_the_image(
    runtime_image: str,
    trained: dict[str, object],
    model_store: Path,
    tmp_path: Path,
) -> None:
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for file in ("metadata.json", "model.skops"):
        (tampered / file).write_bytes((model_store / "v1" / file).read_bytes())
    with (tampered / "model.skops").open("ab") as stream:
        stream.write(b"x")
    tampered.chmod(0o755)
    done = docker(
        "run",
        "--rm",
        *HARDENED,
        "-v",
        f"{tampered}:/model:ro",
        "-e",
        "MODELYARD_MODEL_DIR=/model",
        runtime_image,
        check=False,
        timeout=120,
    )
    assert done.returncode != 0
    assert "refusing to start" in done.stderr and "sha256 mismatch" in done.stderr
