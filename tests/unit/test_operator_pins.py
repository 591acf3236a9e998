"""operator/requirements.txt is the operator image's one lock: exactly the closure of
pyproject.toml's operator extra, every root within its specifier, at the versions this venv
runs; and a package both images install is pinned alike in both locks."""

from __future__ import annotations

import importlib.util
import tomllib
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.unit.locks import read_lock

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "operator" / "requirements.txt"
RUNTIME_LOCK = REPO / "serving_image" / "requirements.txt"


def _generator() -> ModuleType:
    """hack/operator-lock.py, the lock's generator (one copy of the closure walk)."""
    spec = importlib.util.spec_from_file_location("operator_lock", REPO / "hack/operator-lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _operator_roots() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["operator"]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("root", _operator_roots(), ids=str)
def test_every_operator_root_is_locked_within_its_specifier(root: Requirement) -> None:
    pins = read_lock(LOCK)
    name = canonicalize_name(root.name)
    assert name in pins, f"{root} is an operator dependency but not pinned in {LOCK.name}"
    assert root.specifier.contains(pins[name], prereleases=True), (
        f"{LOCK} pins {name}=={pins[name]}, outside pyproject.toml's {root}"
    )


def test_the_lock_is_the_operator_closure_this_venv_runs() -> None:
    """Same names (nothing missing, nothing extra such as scikit-learn) and the installed
    versions: the dev venv installs with the lock as constraints (Makefile)."""
    installed = {name: Version(v) for name, v in _generator().closure().items()}
    pins = read_lock(LOCK)
    differs = {
        name: f"{pins.get(name, 'not locked')} locked, {installed.get(name, 'not')} installed"
        for name in pins.keys() | installed.keys()
        if pins.get(name) != installed.get(name)
    }
    assert not differs, (
        "run `make setup`, or after changing the operator extra "
        f"`.venv/bin/python hack/operator-lock.py > {LOCK.relative_to(REPO)}`: {differs}"
    )
    assert "scikit-learn" not in pins and "pandas" not in pins


def test_the_generator_reproduces_the_lock(capsys: pytest.CaptureFixture[str]) -> None:
    """The file is exactly what its header says regenerates it (header included)."""
    _generator().main()
    assert capsys.readouterr().out == LOCK.read_text()


def test_the_two_locks_agree() -> None:
    operator, runtime = read_lock(LOCK), read_lock(RUNTIME_LOCK)
    shared = operator.keys() & runtime.keys()
    assert {"pydantic", "numpy", "scipy"} <= shared
    disagree = {n: (str(operator[n]), str(runtime[n])) for n in shared if operator[n] != runtime[n]}
    assert not disagree, f"(operator, runtime) pins differ: {disagree}"


def test_this_venv_runs_the_locked_versions() -> None:
    drift = {}
    for name, pinned in read_lock(LOCK).items():
        installed = Version(metadata.version(name))
        if installed != pinned:
            drift[name] = f"{installed} installed, {pinned} locked"
    assert not drift, f"run `make setup` (the venv differs from {LOCK.name}): {drift}"
