"""One training run, start to finish: data -> pipeline -> search/CV -> held-out metrics ->
gate -> artifact -> result. Raises TrainerError subclasses for the spec's or data's faults."""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError

from modelyard_runtime.contract import (
    ONNX_FILE,
    Comparison,
    ModelMetadata,
    ModelRef,
    TrainerResult,
    task_of,
)
from modelyard_runtime.spec import TrainingSpec
from modelyard_runtime.train import artifact, metrics, search
from modelyard_runtime.train.champion import Champion, Holdout, compare, trained_on
from modelyard_runtime.train.compiled import compile_pipeline
from modelyard_runtime.train.data import load_dataset
from modelyard_runtime.train.errors import InvalidData, InvalidSpec
from modelyard_runtime.train.estimators import make_estimator
from modelyard_runtime.train.preprocessing import build_pipeline, describe_features, to_matrix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    output_dir: str
    storage_uri: str
    version: str
    data_root: str
    champion: Champion | None = None  # the model to score beside the new one, if any
    skip_if_data_unchanged: bool = False  # data the champion was trained on: train nothing


def train(spec: TrainingSpec, config: RunConfig) -> TrainerResult:
    started = time.monotonic()
    task = task_of(spec.model.estimator)
    seed = spec.seed
    validation = spec.validation

    estimator = make_estimator(spec.model.estimator, spec.model.hyperparameters, seed)
    found = search.candidates(spec.search, seed) if spec.search is not None else None
    if found is not None:
        search.check_candidates(spec.model.estimator, estimator, found.params)
        if validation.cv_folds == 0:
            raise InvalidSpec("a search needs cross-validation: set validation.cvFolds >= 2")

    dataset = load_dataset(spec.dataset, config.data_root, task)
    log.info(
        "loaded dataset",
        extra={
            "source": dataset.info.source,
            "rows": dataset.info.rows,
            "columns": dataset.info.columns,
        },
    )
    champion = config.champion
    if (
        champion is not None
        and config.skip_if_data_unchanged
        and trained_on(champion) == dataset.info.digest
    ):
        return TrainerResult(
            reason="DataUnchanged",
            message=f"the dataset ({dataset.info.digest}) is the one the champion was "
            "trained on: nothing trained",
            task=task,
            dataset=dataset.info,
        )
    described = describe_features(dataset.features)
    x = to_matrix(dataset.features, described)
    y = dataset.target.to_numpy()
    classes = sorted(np.unique(y).tolist()) if task == "classification" else []

    x_train, x_test, y_train, y_test = _split(x, y, task, validation.test_size, seed)
    _check_folds(y_train, task, validation.cv_folds)

    pipeline = build_pipeline(described, estimator)
    has_proba = hasattr(pipeline, "predict_proba")
    objective = (spec.search.metric if spec.search and spec.search.metric else None) or (
        validation.metrics[0] if validation.metrics else metrics.default_metrics(task)[0]
    )
    wanted = list(
        dict.fromkeys(
            list(validation.metrics or metrics.default_metrics(task))
            + [g.metric for g in validation.gate]
            + [objective]
        )
    )
    unavailable = [m for m in wanted if m in metrics.PROBA_METRICS and not has_proba]
    if any(g.metric in unavailable for g in validation.gate) or objective in unavailable:
        raise InvalidSpec(
            f"{unavailable} need predict_proba, which {spec.model.estimator} with these "
            "hyperparameters lacks (e.g. SVC needs probability=true)"
        )
    wanted = [m for m in wanted if m not in unavailable]

    maximize = (
        spec.search.direction == "maximize"
        if spec.search and spec.search.direction
        else search.default_direction(objective)
    )
    try:
        if validation.cv_folds >= 2:
            outcome = search.cross_validated_fit(
                pipeline,
                x_train,
                y_train,
                task=task,
                params=found.params if found else [],
                scorers=metrics.cv_scorers(task, wanted, classes, has_proba),
                objective=objective,
                maximize=maximize,
                n_folds=validation.cv_folds,
                seed=seed,
            )
        else:
            outcome = search.SearchOutcome(pipeline.fit(x_train, y_train), None)
    except InvalidParameterError as error:
        raise InvalidSpec(f"invalid hyperparameters: {error}") from error
    except ValueError as error:
        # Data problems were ruled out above; what sklearn still refuses at fit time is a
        # combination of hyperparameters (e.g. a penalty the solver does not support).
        raise InvalidSpec(f"fitting {spec.model.estimator} failed: {error}") from error
    model = outcome.model

    held_out = metrics.evaluate(model, x_test, y_test, task, wanted, classes)
    gate = metrics.evaluate_gate(validation.gate, held_out)
    comparison = None
    if config.champion is not None:
        holdout = Holdout(x_test, y_test, task, wanted, classes, described)
        comparison = compare(
            config.champion, holdout, held_out, metric=objective, greater_is_better=maximize
        )
    log.info(
        "trained",
        extra={
            "metrics": held_out,
            "cvMetrics": outcome.cv_metrics,
            "bestParams": outcome.best_params,
            "gatePassed": gate.passed,
            "trials": outcome.trials,
        },
    )

    final_params = {
        k: artifact.json_safe(v)
        for k, v in model.named_steps["model"].get_params(deep=False).items()
    }

    compiled = compile_pipeline(model, x_test, task)
    sample = x_train[artifact.reference_sample(x_train, y_train, task, seed)]
    sample_predictions = [artifact.json_safe(v) for v in model.predict(sample)]

    def build_metadata(sha256: str) -> ModelMetadata:
        return ModelMetadata(
            model_version=config.version,
            sha256=sha256,
            created_at=artifact.now_iso(),
            task=task,
            estimator=spec.model.estimator,
            sklearn_version=sklearn.__version__,
            python_version=platform.python_version(),
            features=described,
            target=str(dataset.target.name),
            classes=[artifact.json_safe(c) for c in classes] if task == "classification" else None,
            params=_jsonable(final_params),
            best_params=outcome.best_params,
            metrics=held_out,
            cv_metrics=outcome.cv_metrics,
            dataset=dataset.info,
            validation=gate,
            reference=artifact.reference_stats(dataset.features, described),
            reference_sample=artifact.rows_of(sample),
            reference_predictions=sample_predictions,
            comparison=comparison,
            runtimes=compiled.runtimes,
        )

    extra = {ONNX_FILE: compiled.onnx} if compiled.onnx is not None else None
    written = artifact.write_artifact(
        config.output_dir, config.version, model, build_metadata, extra
    )
    uri = f"{config.storage_uri.rstrip('/')}/{config.version}"
    log.info(
        "wrote artifact",
        extra={
            "path": written.path,
            "uri": uri,
            "sha256": written.digest,
            "modelSha256": written.metadata.sha256,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    notes = [found.note] if found and found.note else []
    if comparison is not None:
        notes.append(_describe(comparison))
    if gate.passed:
        reason, message = "Succeeded", "; ".join([f"trained {spec.model.estimator}", *notes])
    else:
        reason, message = "GateNotMet", "; ".join([metrics.describe_gate_failure(gate), *notes])
    return TrainerResult(
        reason=reason,
        message=message,
        task=task,
        model=ModelRef(
            uri=uri,
            version=config.version,
            sha256=written.digest,
            auto_runtime=compiled.runtimes.auto(),
            onnx=compiled.runtimes.onnx.available,
        ),
        metrics=held_out,
        cv_metrics=outcome.cv_metrics,
        best_params=outcome.best_params,
        dataset=dataset.info,
        validation=gate,
        comparison=comparison,
    )


def _describe(comparison: Comparison) -> str:
    if comparison.champion is None or comparison.improvement is None:
        return f"champion not compared: {comparison.reason}"
    champion = comparison.champion
    sign = "beats" if comparison.improvement > 0 else "does not beat"
    return (
        f"{sign} champion {champion.version} on {comparison.metric} "
        f"({comparison.challenger:g} vs {champion.metrics[comparison.metric]:g})"
    )


def _split(
    x: np.ndarray,
    y: np.ndarray,
    task: str,
    test_size: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rows = len(y)
    n_test = int(np.ceil(test_size * rows))
    if rows < 4 or n_test < 1 or rows - n_test < 2:
        raise InvalidData(f"{rows} labelled rows are too few for a test split of {test_size}")
    if task == "classification":
        _, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            raise InvalidData(
                "every class needs at least 2 rows for a stratified test split; "
                f"the rarest has {counts.min()}"
            )
    try:
        parts = train_test_split(
            x,
            y,
            test_size=test_size,
            random_state=seed,
            stratify=y if task == "classification" else None,
        )
    except ValueError as error:
        raise InvalidData(f"cannot split {rows} rows for testing: {error}") from error
    return parts[0], parts[1], parts[2], parts[3]


def _check_folds(y_train: np.ndarray, task: str, n_folds: int) -> None:
    if n_folds < 2:
        return
    if len(y_train) < n_folds:
        raise InvalidData(f"{len(y_train)} training rows are too few for {n_folds} CV folds")
    if task == "classification":
        labels, counts = np.unique(y_train, return_counts=True)
        if counts.min() < n_folds:
            raise InvalidData(
                f"class {labels[counts.argmin()]!r} has {counts.min()} training rows, fewer "
                f"than the {n_folds} CV folds (lower validation.cvFolds or add data)"
            )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as JSON can carry them (e.g. a class_weight dict stays, objects
    become their repr)."""
    safe: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, bool | int | float | str | list | dict):
            safe[key] = value
        else:
            safe[key] = repr(value)
    return safe
