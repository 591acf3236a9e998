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
from .support import REPO, full_image_name, skip_or_fail

# kwok's fake node stays (the cluster needs it Ready to start) but takes no new pods here.
KWOK_TAINT = "modelyard.io/fake-node=true:NoSchedule"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: pods run for real on a local kubelet + containerd (hack/node/up.sh)"
    )


@pytest.fixture(scope="session")
def e2e_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    bin_dir = default_bin_dir()
    if missing := missing_binaries(bin_dir):
        skip_or_fail(f"cluster binaries missing in {bin_dir}: {', '.join(missing)}")
    if reason := unavailable(bin_dir):
        skip_or_fail(reason)
    # Pods reach the API server and resolve cluster.local names (CoreDNS on the host).
    coredns = subprocess.run(
        [str(REPO / "hack" / "coredns-binaries.sh")], capture_output=True, text=True
    )
    if coredns.returncode != 0:
        skip_or_fail(f"hack/coredns-binaries.sh failed:\n{coredns.stderr[-2000:]}")
    work = Path(tmp_path_factory.mktemp("e2e-cluster"))
    binary = coredns.stdout.strip().splitlines()[-1]
    with LocalCluster(bin_dir, work, pod_network=True, coredns_binary=binary) as cluster:
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
        skip_or_fail(f"{source} not built (hack/build-runtime-image.sh)")
    real_node.load_docker_image(source)
    if full_image_name(source) != full_image_name(RUNTIME_IMAGE):
        real_node.ctr(
            "images", "tag", "--force", full_image_name(source), full_image_name(RUNTIME_IMAGE)
        )
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
