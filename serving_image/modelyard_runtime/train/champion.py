"""Champion against challenger, on equal terms: the model a retraining would replace is
verified and loaded exactly as the server loads it, then scored on the challenger's own fresh
holdout split. The trainer only records the comparison; whether the challenger is promoted is
the operator's decision (``spec.retraining.promotion``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard_runtime.contract import ChampionScore, Comparison, FeatureInfo, Task
from modelyard_runtime.serve.model import ModelLoadError, load_model, verified_metadata
from modelyard_runtime.train import metrics
from modelyard_runtime.train.search import default_direction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """Where the champion is (a directory the trainer can read) and its artifact digest."""

    directory: str
    sha256: str


@dataclass(frozen=True)
class Holdout:
    """The challenger's held-out split and how it was scored."""

    x: np.ndarray
    y: np.ndarray
    task: Task
    metrics: Sequence[str]
    classes: Sequence[Any]
    features: Sequence[FeatureInfo]


def compare(
    champion: Champion,
    holdout: Holdout,
    challenger: dict[str, float],
    *,
    metric: str,
    greater_is_better: bool,
) -> Comparison:
    """Score ``champion`` on ``holdout`` and compare it with the ``challenger``'s metrics on
    ``metric``. A champion that does not verify, load, take these features or score on this
    data gives a comparison with ``reason`` and no score, never an error: the challenger is
    still a valid model, and the operator decides what an unscored champion means."""
    base = Comparison(
        metric=metric, greater_is_better=greater_is_better, challenger=challenger[metric]
    )

    def unscored(reason: str) -> Comparison:
        log.warning("champion not scored", extra={"reason": reason})
        return base.model_copy(update={"reason": reason[:512]})

    try:
        loaded = load_model(champion.directory, "champion", champion.sha256)
    except ModelLoadError as error:
        return unscored(f"champion not loaded: {error}")
    theirs = [(f.name, f.kind) for f in loaded.features]
    ours = [(f.name, f.kind) for f in holdout.features]
    if theirs != ours:
        return unscored(
            f"the champion takes other features ({[n for n, _ in theirs]}) than the data "
            f"now has ({[n for n, _ in ours]})"
        )
    try:
        scores = metrics.evaluate(
            loaded.pipeline, holdout.x, holdout.y, holdout.task, holdout.metrics, holdout.classes
        )
    except (ValueError, TypeError, IndexError) as error:  # e.g. a class the champion never saw
        return unscored(f"the champion cannot be scored on this data: {error}")
    if metric not in scores:
        return unscored(f"the champion has no {metric} (it lacks predict_proba)")
    delta = challenger[metric] - scores[metric]
    regressions = {
        name: round(_worse_by(challenger[name], theirs, default_direction(name)), 6)
        for name, theirs in scores.items()
        if name in challenger
    }
    return base.model_copy(
        update={
            "champion": ChampionScore(version=loaded.version, sha256=loaded.digest, metrics=scores),
            "improvement": round(delta if greater_is_better else -delta, 6),
            "regressions": regressions,
        }
    )


def _worse_by(ours: float, theirs: float, greater_is_better: bool) -> float:
    return theirs - ours if greater_is_better else ours - theirs


def trained_on(champion: Champion) -> str | None:
    """The digest of the dataset the champion was trained on (from its verified metadata),
    ``None`` when the champion cannot be read or verified."""
    try:
        metadata, _ = verified_metadata(champion.directory, champion.sha256)
    except ModelLoadError as error:
        log.warning("champion metadata not read", extra={"reason": str(error)})
        return None
    return metadata.dataset.digest
