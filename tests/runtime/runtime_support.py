"""Runtime tier: the trainer as a real process, the server under uvicorn over real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from modelyard_runtime.contract import (
    ENV_MAX_BODY_BYTES,
    ENV_MODEL_DIR,
    ENV_MODEL_NAME,
    ENV_MODEL_VERSION,
    ENV_PORT,
    ENV_RESULT_PATH,
    ENV_TRAINING_SPEC,
)
from v2_requests import MAX_BODY_BYTES

RUNTIME_SRC = Path(__file__).resolve().parents[2] / "serving_image"


def runtime_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # Run the checkout's package even where it is not pip-installed (e.g. a fresh CI clone).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(RUNTIME_SRC), env.get("PYTHONPATH")) if p)
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    env.update(extra)
    return env


@dataclass
class TrainerRun:
    returncode: int
    result: dict[str, Any]
    output_dir: Path
    stderr: str

    @property
    def model_dir(self) -> Path:
        return self.output_dir / self.result["model"]["version"]

    def metadata(self) -> dict[str, Any]:
        return json.loads((self.model_dir / "metadata.json").read_text())


def run_trainer(spec: Any, workdir: Path, version: str | None = "v1", **env: str) -> TrainerRun:
    """``python -m modelyard_runtime.train`` with the spec in the environment."""
    workdir.mkdir(parents=True, exist_ok=True)
    output_dir = workdir / "models"
    result_path = workdir / "result.json"
    extra = {
        ENV_RESULT_PATH: str(result_path),
        ENV_TRAINING_SPEC: spec if isinstance(spec, str) else json.dumps(spec),
    }
    if version:
        extra[ENV_MODEL_VERSION] = version
    extra.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "modelyard_runtime.train", "--output-dir", str(output_dir)],
        env=runtime_env(**extra),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result_path.exists(), f"no result file; stderr:\n{done.stderr[-3000:]}"
    text = result_path.read_text()
    assert len(text.encode()) <= 4096
    return TrainerRun(done.returncode, json.loads(text), output_dir, done.stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def start_server(
    model_dir: Path, log_path: Path, name: str = "iris", **env: str
) -> subprocess.Popen[str]:
    port = env.pop("port", None) or str(free_port())
    extra = {
        ENV_MODEL_DIR: str(model_dir),
        ENV_MODEL_NAME: name,
        ENV_PORT: port,
        "MODELYARD_HOST": "127.0.0.1",
        **env,
    }
    log = log_path.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "modelyard_runtime.serve"],
        env=runtime_env(**extra),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime")


@pytest.fixture(scope="session")
def iris_run(session_dir: Path) -> TrainerRun:
    spec = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": "LogisticRegression", "hyperparameters": {"max_iter": 500}},
        "validation": {"cvFolds": 3, "gate": [{"metric": "accuracy", "min": 0.8}]},
    }
    run = run_trainer(spec, session_dir / "iris")
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@contextmanager
def serving(model_dir: Path, log_path: Path, name: str = "iris", **env: str) -> Iterator[Server]:
    """A running server, ready (warm-up done); stopped with SIGTERM afterwards."""
    port = free_port()
    process = start_server(model_dir, log_path, name, port=str(port), **env)
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited {process.returncode}:\n{server.log()}")
            try:
                if httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in 90 s:\n{server.log()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def iris_server(iris_run: TrainerRun, session_dir: Path) -> Iterator[Server]:
    with serving(
        iris_run.model_dir,
        session_dir / "iris-server.log",
        **{ENV_MAX_BODY_BYTES: str(MAX_BODY_BYTES)},
    ) as server:
        yield server


def copy_model(run: TrainerRun, destination: Path) -> Path:
    shutil.copytree(run.model_dir, destination)
    return destination
