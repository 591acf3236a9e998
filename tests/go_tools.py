"""The Go-built tools the tiers run: ``go run`` of the checkers under deploy/ and the
Prometheus binaries hack/prometheus-binaries.sh caches. Missing tools skip a test on a
developer machine and fail it under CI=true (where ``make test`` provides them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MODELYARD_CACHE", Path.home() / ".cache" / "modelyard"))


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def go_run(
    module: Path, *args: str, command: str = "run", timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """``go <command> . args...`` (``run``) in ``module`` with the shared module and build
    caches, go.mod/go.sum as committed (no network unless a module is missing)."""
    go = shutil.which("go")
    if go is None:
        unavailable("go is needed for the Go-built checks")
    env = {
        **os.environ,
        "GOMODCACHE": str(CACHE / "go-mod"),
        "GOFLAGS": "-mod=readonly",
        "GOTOOLCHAIN": "local",
    }
    env.setdefault("GOCACHE", str(CACHE / "go-build"))
    target = ["."] if command == "run" else []
    return subprocess.run(
        [str(go), command, *target, *args],
        cwd=module,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def prometheus_bin() -> Path:
    """The directory holding ``prometheus`` and ``promtool`` at the pinned module version."""
    go_mod = (REPO / "hack" / "prometheus" / "go.mod").read_text().split()
    version = go_mod[go_mod.index("github.com/prometheus/prometheus") + 1]
    bin_dir = CACHE / "prometheus" / version / "bin"
    if not all((bin_dir / name).is_file() for name in ("prometheus", "promtool")):
        unavailable(f"Prometheus {version} not built: run hack/prometheus-binaries.sh")
    return bin_dir
