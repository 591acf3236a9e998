"""The runtime's product code guards nothing with ``assert`` (``python -O`` strips them): what
the spec models already refuse is refused again explicitly where the code relies on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from modelyard_runtime.spec import DatasetSpec, ParameterSpace
from modelyard_runtime.train.data import load_dataset
from modelyard_runtime.train.errors import InvalidSpec
from modelyard_runtime.train.search import _distribution

PACKAGE = Path(__file__).resolve().parents[2] / "serving_image" / "modelyard_runtime"


def test_no_assert_statements_in_the_runtime_package() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Assert)
    ]
    assert not found, f"assert in product code (stripped by python -O): {found}"


def test_a_range_without_both_ends_is_refused_even_unvalidated() -> None:
    space = ParameterSpace.model_construct(values=None, min=1.0, max=None)
    with pytest.raises(InvalidSpec, match="values or both min and max"):
        _distribution(space)


def test_a_dataset_without_a_source_is_refused_even_unvalidated(tmp_path: Path) -> None:
    spec = DatasetSpec.model_construct(builtin=None, uri=None, format=None, target=None)
    with pytest.raises(InvalidSpec, match="exactly one of builtin or uri"):
        load_dataset(spec, str(tmp_path), "classification")
