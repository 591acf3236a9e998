"""The model every server serves, and the V2 payloads every server gets.

Ours serves the artifact our trainer writes (``<dir>/v1/model.skops`` + ``metadata.json``). The
peers and the bare-ASGI floor cannot read skops, so the very pipeline object loaded from that
artifact is re-dumped with joblib for them: all four serve the same fitted model. Until the
trainer exists the pipeline is fitted here directly (and ours is skipped).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np

REPO = Path(__file__).resolve().parent.parent
RUNTIME_SRC = REPO / "serving_image"
MODEL_NAME = "iris"
MODEL_VERSION = "v1"
N_ESTIMATORS = 50  # for --estimator RandomForestClassifier

HYPERPARAMETERS: dict[str, dict[str, object]] = {
    "LogisticRegression": {"max_iter": 1000},
    "RandomForestClassifier": {"n_estimators": N_ESTIMATORS, "random_state": 0},
}


@dataclass
class Model:
    joblib_path: Path  # the pipeline, for the peers
    source: str  # "modelyard trainer" or "fitted by the benchmark"
    ours_dir: Path | None = None  # <output>/v1 for MODELYARD_MODEL_DIR, when the trainer ran
    notes: list[str] = field(default_factory=list)

    @property
    def onnx_path(self) -> Path | None:
        """The artifact's parity-checked compiled copy, when the trainer wrote one: what ours
        serves (runtime Auto) and the floor calls."""
        if self.ours_dir is None or not (self.ours_dir / "model.onnx").exists():
            return None
        return self.ours_dir / "model.onnx"


@dataclass
class Payload:
    batch: int
    body_path: Path
    features: np.ndarray
    expected: list[object]  # model.predict(features), in-process


def runtime_env() -> dict[str, str]:
    """Environment for running modelyard_runtime from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(RUNTIME_SRC), env.get("PYTHONPATH", "")) if p
    )
    return env


def trainer_available() -> bool:
    return (RUNTIME_SRC / "modelyard_runtime" / "train" / "__main__.py").exists()


def train_with_ours(python: str, workdir: Path, estimator: str, log: Path) -> Model:
    """Run our trainer on iris, then re-dump the pipeline it stored with joblib."""
    import skops.io

    spec = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": estimator, "hyperparameters": HYPERPARAMETERS[estimator]},
        "validation": {"cvFolds": 0},
        "seed": 0,
    }
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    output = workdir / "artifact"
    result_path = workdir / "trainer-result.json"
    env = runtime_env()
    env["MODELYARD_MODEL_VERSION"] = MODEL_VERSION
    env["MODELYARD_RESULT_PATH"] = str(result_path)
    argv = [
        python,
        "-m",
        "modelyard_runtime.train",
        "--spec",
        str(spec_path),
        "--output-dir",
        str(output),
    ]
    with log.open("w") as out:
        done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise RuntimeError(f"trainer exited {done.returncode}: {' '.join(argv)}\n{tail}")
    model_dir = output / MODEL_VERSION
    skops_path = model_dir / "model.skops"
    pipeline = skops.io.load(skops_path, trusted=skops.io.get_untrusted_types(file=skops_path))
    joblib_path = workdir / "model.joblib"
    joblib.dump(pipeline, joblib_path)
    return Model(
        joblib_path,
        "modelyard trainer",
        ours_dir=model_dir,
        notes=[f"trainer spec: {json.dumps(spec)}"],
    )


def fit_directly(workdir: Path, estimator: str) -> Model:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes = {
        "LogisticRegression": LogisticRegression,
        "RandomForestClassifier": RandomForestClassifier,
    }
    x, y = load_iris(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), classes[estimator](**HYPERPARAMETERS[estimator]))
    pipeline.fit(x, y)
    joblib_path = workdir / "model.joblib"
    joblib.dump(pipeline, joblib_path)
    return Model(joblib_path, "fitted by the benchmark (our trainer is not in the tree yet)")


def make_payloads(model: Model, batches: list[int], workdir: Path) -> list[Payload]:
    """One V2 body per batch size: FP64 rows of iris, flat row-major data."""
    from sklearn.datasets import load_iris

    pipeline = joblib.load(model.joblib_path)
    x, _ = load_iris(return_X_y=True)
    rows = x[np.random.default_rng(0).permutation(len(x))]
    payloads = []
    for batch in batches:
        features = np.ascontiguousarray(np.resize(rows, (batch, x.shape[1])))
        body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(features.shape),
                    "datatype": "FP64",
                    "data": features.ravel().tolist(),
                }
            ]
        }
        body_path = workdir / f"body-batch{batch}.json"
        body_path.write_text(json.dumps(body, separators=(",", ":")))
        expected = np.asarray(pipeline.predict(features)).tolist()
        payloads.append(Payload(batch, body_path, features, expected))
    return payloads
