"""The peers' virtualenvs under benchmarks/.venvs/ (gitignored): created with ``python3 -m
venv``, filled with pinned versions, reused when their pins have not changed.

Every peer gets the scikit-learn (and joblib) version of the interpreter that runs the
benchmark, so the joblib-dumped pipeline loads and predicts exactly as it does for ours.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

VENVS_DIR = Path(__file__).resolve().parent / ".venvs"
MARKER = ".modelyard-bench-requirements"

# The peers and the versions we measure. Bump deliberately: the numbers depend on them.
PEER_REQUIREMENTS: dict[str, list[str]] = {
    "mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1"],
    "kserve": ["kserve==0.21.0"],
}


def shared_requirements() -> list[str]:
    """The model's own stack, pinned to what the benchmark's interpreter has."""
    return [
        f"scikit-learn=={metadata.version('scikit-learn')}",
        f"joblib=={metadata.version('joblib')}",
    ]


def python_of(name: str) -> Path:
    return VENVS_DIR / name / "bin" / "python"


def ensure(name: str, log: Path) -> Path:
    """Create or update the virtualenv ``name``; return its interpreter.

    Raises ``RuntimeError`` with the tail of pip's output when the install fails."""
    requirements = PEER_REQUIREMENTS[name] + shared_requirements()
    venv = VENVS_DIR / name
    marker = venv / MARKER
    wanted = "\n".join(requirements) + "\n"
    python = python_of(name)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    with log.open("a") as out:
        if not python.exists():
            print(f"  creating {venv}", flush=True)
            subprocess.run(
                ["python3", "-m", "venv", str(venv)],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        print(f"  pip install {' '.join(requirements)} (log: {log})", flush=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", *requirements],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"pip install into {venv} failed (exit {done.returncode}):\n{tail}")
    marker.write_text(wanted)
    return python


def versions(python: Path | str, packages: list[str]) -> dict[str, str]:
    """Installed versions of ``packages`` in the interpreter ``python``."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: out[p] = None\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([str(python), "-c", code, *packages], capture_output=True, text=True)
    if done.returncode != 0:
        return {}
    return json.loads(done.stdout)


if __name__ == "__main__":  # python benchmarks/venvs.py [name ...]: just build them
    for venv_name in sys.argv[1:] or list(PEER_REQUIREMENTS):
        print(ensure(venv_name, VENVS_DIR / f"{venv_name}-pip.log"))
