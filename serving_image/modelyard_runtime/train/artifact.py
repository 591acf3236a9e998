"""Write ``<output-dir>/<version>/{model.skops,metadata.json}`` (and ``model.onnx``, when the
pipeline compiles with parity) atomically.

All files are written into a temporary sibling directory and renamed into place, so a reader
(the server, the operator) never sees a half-written version.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import skops.io
from sklearn.model_selection import train_test_split

from modelyard_runtime.contract import (
    METADATA_FILE,
    MODEL_FILE,
    FeatureInfo,
    FeatureStats,
    ModelMetadata,
    sha256_of,
)

REFERENCE_SAMPLE_ROWS = 2000
REFERENCE_SAMPLE_VALUES = 200_000  # bounds metadata.json for wide data (rows x features)
REFERENCE_STRATA = 10  # target quantile bins that stratify a regression's sample
MAX_CATEGORY_FREQUENCIES = 50  # bounds metadata.json for high-cardinality columns


def generated_version(now: datetime | None = None) -> str:
    """A sortable UTC timestamp version, valid in URIs and Kubernetes label values."""
    now = now or datetime.now(UTC)
    return now.strftime("v%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}"


def json_safe(value: Any) -> Any:
    """NumPy scalars to Python, NaN/inf to None (JSON has neither)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reference_stats(features: pd.DataFrame, described: Sequence[FeatureInfo]) -> list[FeatureStats]:
    stats = []
    for info in described:
        column = features[info.name]
        missing = int(column.isna().sum())
        present = column.dropna()
        if info.kind == "numeric":
            values = present.to_numpy(dtype=np.float64)
            has = values.size > 0
            stats.append(
                FeatureStats(
                    name=info.name,
                    count=int(values.size),
                    missing=missing,
                    mean=float(values.mean()) if has else None,
                    std=float(values.std()) if has else None,
                    quantiles=[float(q) for q in np.quantile(values, np.linspace(0, 1, 11))]
                    if has
                    else None,
                )
            )
        else:
            shares = present.astype(str).value_counts(normalize=True)
            stats.append(
                FeatureStats(
                    name=info.name,
                    count=int(present.size),
                    missing=missing,
                    frequencies={
                        str(k): round(float(v), 6)
                        for k, v in shares.head(MAX_CATEGORY_FREQUENCIES).items()
                    },
                )
            )
    return stats


def reference_sample(x: np.ndarray, y: np.ndarray, task: str, seed: int) -> np.ndarray:
    """The row indices of up to REFERENCE_SAMPLE_ROWS training rows (fewer for wide data),
    stratified by class, or by target decile for a regression, so that the drift baseline has
    the training mix of outcomes; sorted, in training order."""
    rows = x.shape[0]
    size = min(rows, REFERENCE_SAMPLE_ROWS, max(100, REFERENCE_SAMPLE_VALUES // max(1, x.shape[1])))
    if size >= rows:
        return np.arange(rows)
    if task == "classification":
        strata = y
    else:
        edges = np.unique(
            np.quantile(y.astype(np.float64), np.linspace(0, 1, REFERENCE_STRATA + 1))
        )
        strata = np.digitize(y.astype(np.float64), edges[1:-1])
    index = np.arange(rows)
    try:
        picked, _ = train_test_split(index, train_size=size, stratify=strata, random_state=seed)
    except ValueError:  # a stratum with a single row cannot be split: a plain random sample
        picked = np.random.default_rng(seed).choice(rows, size=size, replace=False)
    return np.sort(picked)


def rows_of(x: np.ndarray) -> list[list[Any]]:
    """Matrix rows as JSON values (NaN -> None)."""
    return [[json_safe(v) for v in row] for row in x]


@dataclass(frozen=True)
class Artifact:
    path: str  # <output_dir>/<version>
    metadata: ModelMetadata
    digest: str  # sha256 of metadata.json's bytes (contract.ModelRef.sha256)


def write_artifact(
    output_dir: str,
    version: str,
    model: Any,
    build_metadata: Any,
    extra_files: dict[str, bytes] | None = None,
) -> Artifact:
    """Dump ``model`` with skops and write ``extra_files`` (name -> bytes), then
    ``build_metadata(model_sha256) -> ModelMetadata``; move the directory into place as
    ``<output_dir>/<version>``. The artifact digest covers metadata.json, which records the
    sha256 of every other file: one pin covers them all."""
    os.makedirs(output_dir, exist_ok=True)
    final = os.path.join(output_dir, version)
    staging = tempfile.mkdtemp(prefix=f".{version}.", dir=output_dir)
    try:
        model_path = os.path.join(staging, MODEL_FILE)
        skops.io.dump(model, model_path)
        for name, data in (extra_files or {}).items():
            with open(os.path.join(staging, name), "wb") as stream:
                stream.write(data)
        metadata: ModelMetadata = build_metadata(sha256_of(model_path))
        # The bytes hashed are the bytes written (not a second serialisation).
        data = metadata.model_dump_json(by_alias=True, indent=2).encode()
        with open(os.path.join(staging, METADATA_FILE), "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(staging, 0o755)  # mkdtemp makes 0700; the server may run as another user
        for name in (MODEL_FILE, METADATA_FILE, *(extra_files or {})):
            os.chmod(os.path.join(staging, name), 0o644)
        if os.path.exists(final):
            # A retried Job writes the same version again: the new run replaces the old one.
            retired = tempfile.mkdtemp(prefix=f".{version}.old.", dir=output_dir)
            os.rename(final, os.path.join(retired, "v"))
            os.rename(staging, final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Artifact(final, metadata, sha256_of(data))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
