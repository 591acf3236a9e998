"""Storage and data URIs cannot leave their volume: no '..' segments, normalised paths."""

from __future__ import annotations

import pytest
from modelyard_runtime.contract import local_path_of, parse_pvc_uri
from modelyard_runtime.spec import DatasetSpec
from pydantic import ValidationError


@pytest.mark.parametrize(
    "uri",
    [
        "pvc://data/train.csv",
        "pvc://data/dir/train.parquet",
        "pvc://data/..hidden/x.csv",
        "pvc://data/x..csv",
        "file:///tmp/train.csv",
    ],
)
def test_data_uris_accepted(uri: str) -> None:
    assert DatasetSpec(uri=uri, target="y").uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "pvc://modelyard-models/../../etc/passwd",
        "pvc://data/a/../../x.csv",
        "pvc://data/..",
        "pvc://data/./x.csv",
        "pvc://data//x.csv",
        "pvc://data/",
        "pvc:///x.csv",
        "file:///mnt/models/../etc/passwd",
        "file://relative.csv",
    ],
)
def test_data_uris_refused(uri: str) -> None:
    with pytest.raises(ValidationError):
        DatasetSpec(uri=uri, target="y")


def test_pvc_uri_is_normalised() -> None:
    assert parse_pvc_uri("pvc://models/iris/./v1//") == ("models", "iris/v1")
    assert parse_pvc_uri("pvc://models") == ("models", "")
    assert local_path_of("pvc://models/iris/", "/mnt/models") == "/mnt/models/models/iris"
    assert local_path_of("file:///tmp//x.csv", "/mnt/data") == "/tmp/x.csv"


@pytest.mark.parametrize(
    "uri", ["pvc://models/../x", "pvc://models/a/..", "pvc:///x", "pvc://../x", "s3://b/x"]
)
def test_pvc_uri_refused(uri: str) -> None:
    with pytest.raises(ValueError):
        parse_pvc_uri(uri)


def test_file_uri_with_dot_dot_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'\.\.'"):
        local_path_of("file:///a/../etc/passwd", "/mnt/data")
