"""Fixtures for the e2e tier: a LocalCluster whose pods run on a real kubelet (node.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelyard_devcluster import NODE_NAME as KWOK_NODE
from modelyard_devcluster import LocalCluster, default_bin_dir, missing_binaries

# The operator harness's fixtures (modelyard, operator, ns) run on top of `local_cluster`,
# which here is the e2e cluster with the real node (see `local_cluster` below).
from tests.cluster.operator_harness import (  # noqa: F401
    MODELS_HOST_ROOT,
    RUNTIME_IMAGE,
    modelyard,
    ns,
    operator,
    pytest_runtest_makereport,
)

from .node import RealNode, unavailable

# kwok's fake node stays (the cluster needs it Ready to start) but takes no new pods here.
KWOK_TAINT = "modelyard.io/fake-node=true:NoSchedule"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: pods run for real on a local kubelet + containerd (hack/node/up.sh)"
    )


def _skip_or_fail(msg: str) -> None:
    # CI (CI=true, where .ci/run provisions containerd, the kubelet and the image) must never
    # pass by skipping; MODELYARD_E2E_REQUIRED=1 asks the same strictness elsewhere.
    strict = os.environ.get("CI", "").lower() == "true"
    if strict or os.environ.get("MODELYARD_E2E_REQUIRED") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def e2e_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    bin_dir = default_bin_dir()
    if missing := missing_binaries(bin_dir):
        _skip_or_fail(f"cluster binaries missing in {bin_dir}: {', '.join(missing)}")
    if reason := unavailable(bin_dir):
        _skip_or_fail(reason)
    with LocalCluster(bin_dir, Path(tmp_path_factory.mktemp("e2e-cluster"))) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def real_node(e2e_cluster: LocalCluster) -> Iterator[RealNode]:
    with RealNode(e2e_cluster) as node:
        e2e_cluster.kubectl("taint", "node", KWOK_NODE, KWOK_TAINT, "--overwrite")
        yield node


@pytest.fixture(scope="session")
def local_cluster(e2e_cluster: LocalCluster, real_node: RealNode) -> LocalCluster:
    """For operator_harness: the cluster whose pods run on the real node."""
    return e2e_cluster


def _full(ref: str) -> str:
    """Docker's short names as containerd stores them (docker.io/library/x:tag)."""
    return ref if "/" in ref else f"docker.io/library/{ref}"


@pytest.fixture(scope="session")
def runtime_image(real_node: RealNode) -> str:
    """modelyard-runtime:dev from Docker, loaded into the node as the harness's RUNTIME_IMAGE."""
    source = os.environ.get("MODELYARD_E2E_RUNTIME_IMAGE", "modelyard-runtime:dev")
    if (
        subprocess.run(
            ["/usr/bin/docker", "image", "inspect", source], capture_output=True
        ).returncode
        != 0
    ):
        _skip_or_fail(f"{source} not built (hack/build-runtime-image.sh)")
    real_node.load_docker_image(source)
    if _full(source) != _full(RUNTIME_IMAGE):
        real_node.ctr("images", "tag", "--force", _full(source), _full(RUNTIME_IMAGE))
    return RUNTIME_IMAGE


@pytest.fixture
def models_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The directory behind the ``ns`` fixture's models volume (a hostPath on the real node),
    writable by the runtime image's UID 10001; removed afterwards."""
    path = MODELS_HOST_ROOT / request.getfixturevalue("ns")
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)
