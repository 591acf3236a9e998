"""What `make up` and the e2e tier apply: manifests/ through a tag-only overlay, and the HA
overlay deploy/operator-ha/ (rendered by the cluster's own kubectl kustomize)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelyard_devcluster import default_bin_dir
from modelyard_devcluster.install import OPERATOR_IMAGE, image_tag, operator_overlay

from tests.go_tools import unavailable

REPO = Path(__file__).resolve().parents[2]


def render(path: Path) -> list[dict[str, Any]]:
    kubectl = default_bin_dir() / "kubectl"
    if not kubectl.is_file():
        unavailable(f"{kubectl} missing (hack/kube-binaries.sh)")
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def operator(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [deployment] = by_kind(objects, "Deployment")
    return deployment


def env(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_image_tag_names_the_content() -> None:
    assert image_tag("sha256:0123456789abcdef0123") == "dev-0123456789ab"


def test_the_overlay_changes_only_the_image_tag(tmp_path: Path) -> None:
    base = render(REPO / "manifests")
    overlaid = render(operator_overlay(tmp_path / "o", REPO / "manifests", "dev-abc"))
    [container] = operator(overlaid)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{OPERATOR_IMAGE}:dev-abc"
    container["image"] = f"{OPERATOR_IMAGE}:latest"
    assert overlaid == base


def test_the_base_runs_one_replica_that_can_scale_out_safely() -> None:
    deployment = operator(render(REPO / "manifests"))
    assert deployment["spec"]["replicas"] == 1
    assert env(deployment)["MODELYARD_LEADER_ELECTION"] == "true"
    [namespace] = by_kind(render(REPO / "manifests"), "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("tag", [None, "dev-abc"])
def test_the_ha_overlay_adds_a_standby_spread_and_a_budget(tmp_path: Path, tag: str | None) -> None:
    ha = REPO / "deploy" / "operator-ha"
    objects = render(ha if tag is None else operator_overlay(tmp_path / "o", ha, tag))
    deployment = operator(objects)
    assert deployment["spec"]["replicas"] == 2
    assert env(deployment)["MODELYARD_LEADER_ELECTION"] == "true"
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    [term] = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    [pdb] = by_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
