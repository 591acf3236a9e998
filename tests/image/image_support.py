"""Image tier: a real Docker engine builds and runs the runtime and operator images.

Docker is made to work by hack/dockerd.sh (installs and starts Debian's engine when needed).
If it still cannot: with CI=true the tier fails with the reason, elsewhere it is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def locked_versions(lock: Path) -> dict[str, str]:
    """A lock file (``name==version`` lines, comments) as {normalized name: version}."""
    return {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (raw.split("#")[0].strip() for raw in lock.read_text().splitlines())
        if line
    }


def installed_versions(image: str) -> dict[str, str]:
    """Every distribution the image's Python sees, {normalized name: version}."""
    script = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version "
        "for d in m.distributions()}))"
    )
    done = docker("run", "--rm", "--entrypoint", "python3", image, "-c", script)
    found: dict[str, str] = json.loads(done.stdout)
    return found


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"image tier cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def docker(
    *args: str,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


@pytest.fixture(scope="session")
def docker_engine() -> str:
    try:
        done = subprocess.run(
            [str(REPO / "hack" / "dockerd.sh")], capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        unavailable(f"hack/dockerd.sh failed to run: {error}")
    if done.returncode != 0:
        unavailable(
            f"no Docker engine (hack/dockerd.sh exited {done.returncode}): {done.stderr[-2000:]}"
        )
    return DOCKER


def build_image(script: str) -> str:
    """Run ``hack/<script>`` (builds an image with a base that exists here and the host's
    CAs; layer-cached, so seconds when nothing changed) and return the tag it prints last."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(REPO / "hack" / script)], capture_output=True, text=True, timeout=1800
        )
    except subprocess.TimeoutExpired:
        unavailable(f"hack/{script} took over 30 minutes")
    if done.returncode != 0:
        unavailable(f"hack/{script} exited {done.returncode}:\n{done.stderr[-4000:]}")
    image = done.stdout.strip().splitlines()[-1]
    print(f"built {image} in {time.monotonic() - started:.0f}s")
    return image


@pytest.fixture(scope="session")
def runtime_image(docker_engine: str) -> str:
    return build_image("build-runtime-image.sh")


@pytest.fixture(scope="session")
def operator_image(docker_engine: str) -> str:
    return build_image("build-operator-image.sh")
