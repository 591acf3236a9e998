"""Champion against challenger, with the trainer as a real process on real data: a challenger
retrained on shifted data beats the champion on the shifted holdout; a worse one does not;
a champion that does not verify or does not take the data's features is reported, never an
error. The comparison reaches both the result and metadata.json (covered by the digest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modelyard_runtime.contract import (
    ENV_CHAMPION_DIR,
    ENV_CHAMPION_SHA256,
    ENV_SKIP_IF_DATA_UNCHANGED,
    ExitCode,
    ModelMetadata,
    TrainerResult,
    sha256_of,
)
from runtime_support import TrainerRun, run_trainer
from sklearn.datasets import load_iris

pytestmark = pytest.mark.runtime


def iris_csv(path: Path, *, shift: float = 0.0, rename: bool = False) -> Path:
    """Iris as a CSV; ``shift`` moves petal length by that many centimetres, labels kept (the
    world changed: the old decision boundary no longer separates the classes)."""
    frame = load_iris(as_frame=True).frame
    frame["petal length (cm)"] = frame["petal length (cm)"] + shift * frame["target"]
    if rename:
        frame = frame.rename(columns={"sepal width (cm)": "sepal breadth (cm)"})
    frame.to_csv(path, index=False)
    return path


def spec(csv: Path, estimator: str = "LogisticRegression", **hyper: Any) -> dict[str, Any]:
    return {
        "dataset": {"uri": f"file://{csv}", "target": "target"},
        "model": {"estimator": estimator, "hyperparameters": hyper or {"max_iter": 500}},
        "validation": {"metrics": ["accuracy", "f1"], "cvFolds": 0},
        "seed": 7,
    }


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> TrainerRun:
    work = tmp_path_factory.mktemp("champion")
    # Trained on the world as it was: petal length moved 3 cm per class step in the data it saw.
    run = run_trainer(spec(iris_csv(work / "a.csv", shift=3.0)), work, version="v1")
    assert run.result["reason"] == "Succeeded", run.stderr[-2000:]
    return run


def against(champion: TrainerRun, sha256: str | None = None) -> dict[str, str]:
    return {
        ENV_CHAMPION_DIR: str(champion.model_dir),
        ENV_CHAMPION_SHA256: sha256 or champion.result["model"]["sha256"],
    }


def test_a_challenger_retrained_on_shifted_data_beats_the_champion(
    champion: TrainerRun, tmp_path: Path
) -> None:
    shifted = iris_csv(tmp_path / "b.csv", shift=-1.0)
    run = run_trainer(spec(shifted), tmp_path, version="v2", **against(champion))
    assert run.result["reason"] == "Succeeded", run.stderr[-2000:]
    result = TrainerResult.model_validate(run.result)
    comparison = result.comparison
    assert comparison is not None and comparison.champion is not None, comparison
    assert (comparison.metric, comparison.greater_is_better) == ("accuracy", True)
    assert comparison.champion.version == "v1"
    assert comparison.champion.sha256 == champion.result["model"]["sha256"]
    assert comparison.challenger == result.metrics["accuracy"]
    # The champion's boundary sits where petal length used to be: it fails on the new world.
    assert comparison.champion.metrics["accuracy"] < 0.8 < comparison.challenger
    assert comparison.improvement == pytest.approx(
        comparison.challenger - comparison.champion.metrics["accuracy"], abs=1e-6
    )
    assert "beats champion v1 on accuracy" in result.message
    # Recorded in metadata.json too, which the artifact digest covers.
    metadata = ModelMetadata.model_validate(run.metadata())
    assert metadata.comparison == comparison
    assert result.model is not None
    assert result.model.sha256 == sha256_of(run.model_dir / "metadata.json")


def test_a_worse_challenger_does_not_beat_the_champion(
    champion: TrainerRun, tmp_path: Path
) -> None:
    same_world = iris_csv(tmp_path / "a.csv", shift=3.0)
    run = run_trainer(
        spec(same_world, "DecisionTreeClassifier", max_depth=1),  # one split: two of 3 classes
        tmp_path,
        version="v2",
        **against(champion),
    )
    assert run.result["reason"] == "Succeeded", run.stderr[-2000:]
    comparison = TrainerResult.model_validate(run.result).comparison
    assert comparison is not None and comparison.improvement is not None
    assert comparison.improvement < -0.2, comparison
    # Worse on every metric both were scored on, as the operator's maxRegression reads it.
    assert set(comparison.regressions) == {"accuracy", "f1"}
    assert comparison.regressions["accuracy"] == pytest.approx(-comparison.improvement)
    assert comparison.regressions["f1"] > 0
    assert "does not beat champion v1" in run.result["message"]


def test_data_the_champion_was_trained_on_is_not_trained_again(
    champion: TrainerRun, tmp_path: Path
) -> None:
    same_data = iris_csv(tmp_path / "a.csv", shift=3.0)  # byte for byte the champion's data
    skip = {ENV_SKIP_IF_DATA_UNCHANGED: "true"}
    run = run_trainer(spec(same_data), tmp_path, version="v2", **against(champion), **skip)
    assert run.returncode == ExitCode.OK, run.stderr[-2000:]
    assert run.result["reason"] == "DataUnchanged", run.result
    assert "model" not in run.result
    assert not (run.output_dir / "v2").exists()  # nothing written
    assert run.result["dataset"]["digest"] == champion.result["dataset"]["digest"]
    # Refreshed data is trained on, with the same setting.
    fresh = iris_csv(tmp_path / "b.csv", shift=-1.0)
    run = run_trainer(spec(fresh), tmp_path, version="v3", **against(champion), **skip)
    assert run.result["reason"] == "Succeeded", run.stderr[-2000:]


def test_a_champion_that_does_not_verify_is_reported_not_loaded(
    champion: TrainerRun, tmp_path: Path
) -> None:
    csv = iris_csv(tmp_path / "b.csv", shift=-1.0)
    run = run_trainer(spec(csv), tmp_path, version="v2", **against(champion, "0" * 64))
    assert run.result["reason"] == "Succeeded"
    comparison = TrainerResult.model_validate(run.result).comparison
    assert comparison is not None and comparison.champion is None
    assert comparison.reason is not None and "sha256 mismatch" in comparison.reason


def test_a_champion_of_other_features_is_reported(champion: TrainerRun, tmp_path: Path) -> None:
    csv = iris_csv(tmp_path / "renamed.csv", rename=True)
    run = run_trainer(spec(csv), tmp_path, version="v2", **against(champion))
    assert run.result["reason"] == "Succeeded"
    comparison = TrainerResult.model_validate(run.result).comparison
    assert comparison is not None and comparison.champion is None
    assert comparison.reason is not None and "sepal breadth" in comparison.reason


def test_a_champion_needs_its_digest(champion: TrainerRun, tmp_path: Path) -> None:
    csv = iris_csv(tmp_path / "b.csv")
    run = run_trainer(spec(csv), tmp_path, **{ENV_CHAMPION_DIR: str(champion.model_dir)})
    assert run.returncode == ExitCode.INVALID_SPEC
    assert ENV_CHAMPION_SHA256 in run.result["message"]
