#!/usr/bin/env python3
"""Print operator/requirements.txt: the operator's whole dependency closure (what pip installs
for ``.[operator]``), at the versions this venv has installed, i.e. the versions the tests run.

    .venv/bin/python hack/operator-lock.py > operator/requirements.txt

The closure is walked from the installed ``modelyard`` distribution's metadata (its operator
extra, then each dependency's own requirements, markers evaluated for this interpreter, which
is the image's: CPython 3.11 on Linux). tests/unit/test_operator_pins.py imports ``closure``
from here and fails when the lock and the venv part ways.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

PROJECT = "modelyard"
EXTRA = "operator"
HEADER = """\
# The operator's one lock: every package of the operator image, exactly pinned (the closure of
# pyproject.toml's operator extra, no scikit-learn). The image installs it with --no-deps, then
# proves it complete ('pip check') and that it satisfies the extra; the dev venv installs with
# it as constraints (Makefile), so tests run these very versions. Where a package is also in
# serving_image/requirements.txt the two pins agree (tests/unit/test_operator_pins.py).
# Regenerate after changing the operator extra (in a venv that installed it, e.g. `make setup`):
#   .venv/bin/python hack/operator-lock.py > operator/requirements.txt"""


def closure(project: str = PROJECT, extra: str = EXTRA) -> dict[NormalizedName, str]:
    """Every distribution ``project[extra]`` needs, transitively, with its installed version
    (``project`` itself excluded)."""
    extras: dict[NormalizedName, set[str]] = {}
    todo = [Requirement(f"{project}[{extra}]")]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        wanted = set(requirement.extras)
        if name in extras and wanted <= extras[name]:
            continue
        extras.setdefault(name, set()).update(wanted)
        environments = [{"extra": e} for e in sorted(extras[name]) or [""]]
        for line in metadata.distribution(name).requires or []:
            dependency = Requirement(line)
            if dependency.marker is None or any(
                dependency.marker.evaluate(env) for env in environments
            ):
                todo.append(dependency)
    extras.pop(canonicalize_name(project))
    return {name: metadata.version(name) for name in sorted(extras)}


def main() -> None:
    print(HEADER)
    for name, version in closure().items():
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
