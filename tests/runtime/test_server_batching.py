"""Opportunistic batching over real HTTP, on a model slow enough to batch (a 50-tree forest
served by scikit-learn, ``runtime: sklearn``: every predict runs in a worker thread, and what
arrives meanwhile is merged into the next). Many concurrent callers, good and bad requests
mixed: each good one gets exactly its own rows' predictions, in order, under its own id; each
bad one its own 400."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import skops.io
from modelyard_runtime.contract import ENV_RUNTIME
from modelyard_runtime.serve.trusted import SERVER_TRUSTED_TYPES
from runtime_support import TrainerRun, run_trainer, serving

pytestmark = pytest.mark.runtime

CALLERS = 64


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> TrainerRun:
    spec = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": "RandomForestClassifier", "hyperparameters": {"n_estimators": 50}},
        "validation": {"cvFolds": 0},
    }
    run = run_trainer(spec, tmp_path_factory.mktemp("forest"))
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def body(rows: np.ndarray, request_id: str, outputs: list[str]) -> dict[str, Any]:
    return {
        "id": request_id,
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ],
        "outputs": [{"name": name} for name in outputs],
    }


BAD = [
    # (what is wrong, the request) -- each refused before it could enter a batch
    ("three features", lambda: body(np.ones((2, 3)), "bad", ["predict"])),
    ("unknown output", lambda: body(np.ones((1, 4)), "bad", ["logits"])),
    (
        "strings for FP64",
        lambda: {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ["a"] * 4}]},
    ),
]


def test_concurrent_callers_each_get_their_own_answers(forest: TrainerRun, tmp_path: Path) -> None:
    pipeline = skops.io.load(forest.model_dir / "model.skops", trusted=SERVER_TRUSTED_TYPES)
    generator = np.random.default_rng(7)
    low, high = np.array([4.3, 2.0, 1.0, 0.1]), np.array([7.9, 4.4, 6.9, 2.5])
    calls: list[tuple[str, dict[str, Any], np.ndarray | None, list[str]]] = []
    for i in range(CALLERS):
        if i % 5 == 4:
            case, make = BAD[i % len(BAD)]
            calls.append((case, make(), None, []))
            continue
        rows = generator.uniform(low, high, size=(int(generator.integers(1, 9)), 4)).round(2)
        outputs = random.Random(i).choice(
            [["predict"], ["predict_proba"], ["predict", "predict_proba"]]
        )
        calls.append((f"caller-{i}", body(rows, f"caller-{i}", outputs), rows, outputs))

    with serving(forest.model_dir, tmp_path / "server.log", **{ENV_RUNTIME: "sklearn"}) as server:
        url = f"{server.url}/v2/models/iris/infer"

        async def send_all() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=CALLERS)
            async with httpx.AsyncClient(limits=limits, timeout=60) as client:
                for _ in range(3):  # three waves, so that several batches form
                    answers = await asyncio.gather(*(client.post(url, json=c[1]) for c in calls))
                return list(answers)

        responses = asyncio.run(send_all())
        metrics = httpx.get(f"{server.url}/metrics").text

    for (case, _, rows, outputs), response in zip(calls, responses, strict=True):
        if rows is None:
            assert response.status_code == 400, (case, response.text)
            assert set(response.json()) == {"error"}
            continue
        assert response.status_code == 200, (case, response.text)
        answer = response.json()
        assert answer["id"] == case, "the answer of another caller"
        got = {o["name"]: o for o in answer["outputs"]}
        assert list(got) == outputs
        if "predict" in got:
            assert got["predict"]["shape"] == [len(rows)]
            assert got["predict"]["data"] == pipeline.predict(rows).tolist()
        if "predict_proba" in got:
            assert got["predict_proba"]["shape"] == [len(rows), 3]
            expected = pipeline.predict_proba(rows)
            assert (
                np.abs(np.array(got["predict_proba"]["data"]).reshape(-1, 3) - expected).max()
                <= 1e-12
            )

    good = sum(1 for c in calls if c[2] is not None)
    count = _sample(metrics, "modelyard_inference_batch_requests_count")
    merged = _sample(metrics, "modelyard_inference_batch_requests_sum")
    assert merged >= 3 * good, "every good request was predicted"
    # Off (or a batcher that never merges) would make these equal.
    assert count < merged, f"no request was merged: {merged} requests in {count} predicts"


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")
