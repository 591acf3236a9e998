"""serving_image/requirements.txt is the runtime's one lock: it pins every root of
pyproject.toml's runtime extra (and the base dependencies) at a version their specifiers
accept, and the versions this venv runs are the locked ones."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.unit.locks import read_lock

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "serving_image" / "requirements.txt"


def _runtime_roots() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["runtime"]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("root", _runtime_roots(), ids=str)
def test_every_runtime_root_is_locked_within_its_specifier(root: Requirement) -> None:
    pins = read_lock(LOCK)
    name = canonicalize_name(root.name)
    assert name in pins, f"{root} is a runtime dependency but not pinned in {LOCK.name}"
    assert root.specifier.contains(pins[name], prereleases=True), (
        f"{LOCK.name} pins {name}=={pins[name]}, outside pyproject.toml's {root}"
    )
    assert not root.extras, f"{root}: name what the image needs, not an extra"


def test_orjson_is_past_the_recursion_crash() -> None:
    # orjson < 3.9.15 has no depth limit: a 2 MB nesting bomb segfaults the server.
    assert read_lock(LOCK)["orjson"] >= Version("3.10")


def test_this_venv_runs_the_locked_versions() -> None:
    """The dev venv installs with the lock as constraints (Makefile): what the tests run is
    what the image ships."""
    drift = {}
    for name, pinned in read_lock(LOCK).items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue  # e.g. a wheel only the image needs; the image's `pip check` covers it
        if installed != pinned:
            drift[name] = f"{installed} installed, {pinned} locked"
    assert not drift, f"run `make setup` (the venv differs from the lock): {drift}"
