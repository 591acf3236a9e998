"""Load a training dataset: a built-in scikit-learn dataset or a CSV/Parquet file."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd
from sklearn import datasets as sk_datasets

from modelyard_runtime.contract import DatasetInfo, Task, local_path_of, parse_pvc_uri, sha256_of
from modelyard_runtime.spec import DatasetSpec
from modelyard_runtime.train.errors import InvalidData, InvalidSpec

BUILTIN_TARGET = "target"  # the column name sklearn's as_frame=True bunches use
MAX_NUMERIC_CLASSES = 50


@dataclass(frozen=True)
class Dataset:
    features: pd.DataFrame
    target: pd.Series
    info: DatasetInfo


def load_dataset(spec: DatasetSpec, data_root: str, task: Task) -> Dataset:
    """Read the data the spec names and split off its target column; InvalidData when the
    data cannot be used as asked."""
    if spec.builtin is not None:
        frame = _load_builtin(spec.builtin)
        source = f"builtin:{spec.builtin}"
        digest = sha256_of(frame.to_csv(index=False).encode())
    elif spec.uri is not None:
        source = spec.uri
        path = _contained_path(spec.uri, data_root)
        frame, digest = _load_file(path, spec.file_format)
    else:  # DatasetSpec refuses this
        raise InvalidSpec("dataset: set exactly one of builtin or uri")

    target_name = spec.target or BUILTIN_TARGET
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InvalidData(f"dataset {source} is empty ({frame.shape[0]} rows)")
    if target_name not in frame.columns:
        raise InvalidData(
            f"target column {target_name!r} is not in dataset {source}; "
            f"columns are {_preview(list(frame.columns))}"
        )
    frame.columns = [str(c) for c in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise InvalidData(f"dataset {source} has duplicated column names {duplicated}")

    target = frame[target_name]
    features = frame.drop(columns=[target_name])
    if features.shape[1] == 0:
        raise InvalidData(f"dataset {source} has no feature columns besides {target_name!r}")

    # Rows without a label teach nothing; drop them rather than fail the whole job.
    labelled = target.notna()
    features, target = features[labelled], target[labelled]
    if len(target) == 0:
        raise InvalidData(f"target column {target_name!r} of {source} has no values")
    _check_target(target, target_name, task)

    info = DatasetInfo(
        source=source,
        digest=f"sha256:{digest}",
        rows=int(frame.shape[0]),
        columns=int(frame.shape[1]),
    )
    return Dataset(
        features=features.reset_index(drop=True), target=target.reset_index(drop=True), info=info
    )


def _contained_path(uri: str, data_root: str) -> str:
    """The local path of ``uri``, refused when it resolves (through symlinks) outside the
    claim's mount: a dataset reads its own volume, nothing else in the container."""
    try:
        path = local_path_of(uri, data_root)
    except ValueError as error:
        raise InvalidSpec(f"spec.dataset.uri: {error}") from error
    if not uri.startswith("pvc://"):
        return path  # file:// is for local runs, where the whole file system is the user's
    claim, _ = parse_pvc_uri(uri)
    mount = os.path.realpath(os.path.join(data_root, claim))
    if not os.path.realpath(path).startswith(mount + os.sep):
        raise InvalidSpec(f"spec.dataset.uri: {uri[:200]!r} leaves the volume of claim {claim!r}")
    return path


def _load_builtin(name: str) -> pd.DataFrame:
    loader = getattr(sk_datasets, f"load_{name}", None)
    if loader is None:  # the spec's Literal should make this impossible
        raise InvalidSpec(f"unknown built-in dataset {name!r}")
    frame: pd.DataFrame = loader(as_frame=True).frame
    return frame.copy()


def _load_file(path: str, file_format: str) -> tuple[pd.DataFrame, str]:
    if not os.path.isfile(path):
        raise InvalidData(f"dataset file {path} does not exist (is the volume mounted?)")
    digest = sha256_of(path)
    try:
        frame = pd.read_parquet(path) if file_format == "parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError as error:
        raise InvalidData(f"dataset file {path} is empty: {error}") from error
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise InvalidData(f"cannot read {file_format} dataset {path}: {error}") from error
    return frame, digest


def _check_target(target: pd.Series, name: str, task: Task) -> None:
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
            raise InvalidData(
                f"target column {name!r} has dtype {target.dtype}; a regressor needs numbers"
            )
        return
    classes = target.unique()
    if len(classes) < 2:
        raise InvalidData(f"target column {name!r} has a single class {classes[:1].tolist()}")
    continuous = pd.api.types.is_float_dtype(target) and not (target == target.round()).all()
    # Whole numbers can be continuous too (diabetes' target): that many distinct values
    # are not classes anyone means.
    many_values = (
        pd.api.types.is_numeric_dtype(target)
        and len(classes) > MAX_NUMERIC_CLASSES
        and len(classes) > len(target) / 4
    )
    if continuous or many_values:
        raise InvalidData(
            f"target column {name!r} holds continuous values ({len(classes)} distinct in "
            f"{len(target)} rows); a classifier needs class labels (use a regressor)"
        )


def _preview(items: list[object], limit: int = 20, width: int = 40) -> str:
    """A few column names, each cut short: enough to spot a typo, never a file's contents
    (a file that is not a table has its first line as its one "column")."""
    shown = ", ".join(repr(str(i)[:width]) for i in items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"
