"""The two runtimes over real HTTP: a server on the compiled copy (ONNX Runtime) and one on the
scikit-learn pipeline give the same answers to the same requests, far outside the training
range included, and say which runtime they are (V2 ``platform``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from modelyard_runtime.contract import ENV_RUNTIME
from runtime_support import TrainerRun, run_trainer, serving

pytestmark = pytest.mark.runtime


def infer(url: str, name: str, rows: list[list[float]], **extra: Any) -> list[Any]:
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(rows), len(rows[0])],
                "datatype": "FP64",
                "data": [v for row in rows for v in row],
            }
        ],
        **extra,
    }
    response = httpx.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["outputs"])


def answers_of_both_runtimes(
    run: TrainerRun, tmp_path: Path, name: str, rows: list[list[float]], **extra: Any
) -> dict[str, list[Any]]:
    answers = {}
    for runtime, platform in (("onnx", "onnxruntime_onnx"), ("sklearn", "sklearn")):
        log = tmp_path / f"{runtime}.log"
        with serving(run.model_dir, log, name, **{ENV_RUNTIME: runtime}) as server:
            meta = httpx.get(f"{server.url}/v2/models/{name}").json()
            assert meta["platform"] == platform and meta["parameters"]["runtime"] == runtime
            answers[runtime] = infer(server.url, name, rows, **extra)
    return answers


def test_a_classifier_answers_alike_on_both_runtimes(iris_run: TrainerRun, tmp_path: Path) -> None:
    rows = [list(r) for r in iris_run.metadata()["referenceSample"][:40]]
    for i in range(0, len(rows), 3):
        rows[i][i % 4] *= 10 if i % 2 else -3  # far outside what the model was trained on
    answers = answers_of_both_runtimes(
        iris_run,
        tmp_path,
        "iris",
        rows,
        outputs=[{"name": "predict"}, {"name": "predict_proba"}],
    )
    onnx, sklearn = answers["onnx"], answers["sklearn"]
    assert [o["name"] for o in onnx] == [o["name"] for o in sklearn] == ["predict", "predict_proba"]
    assert onnx[0]["datatype"] == sklearn[0]["datatype"]
    assert onnx[0]["data"] == sklearn[0]["data"], "identical labels"
    difference = np.abs(np.array(onnx[1]["data"]) - np.array(sklearn[1]["data"]))
    assert onnx[1]["shape"] == sklearn[1]["shape"] == [40, 3] and difference.max() <= 1e-6


def test_a_regressor_answers_alike_on_both_runtimes(tmp_path: Path) -> None:
    spec = {
        "dataset": {"builtin": "diabetes"},
        "model": {"estimator": "Ridge"},
        "validation": {"cvFolds": 0},
    }
    run = run_trainer(spec, tmp_path / "ridge")
    assert run.returncode == 0 and run.result["model"]["onnx"] is True, run.stderr[-3000:]
    rows = [list(r) for r in run.metadata()["referenceSample"][:25]]
    answers = answers_of_both_runtimes(run, tmp_path, "diabetes", rows)
    onnx, sklearn = (np.array(answers[r][0]["data"]) for r in ("onnx", "sklearn"))
    assert answers["onnx"][0]["datatype"] == answers["sklearn"][0]["datatype"] == "FP64"
    assert len(onnx) == 25
    assert (np.abs(onnx - sklearn) / np.maximum(1.0, np.abs(sklearn))).max() <= 1e-6
