"""Argo CD health checks (deploy/argocd/): the Lua scripts run in gopher-lua, the Lua 5.1 VM
Argo CD embeds, over every case of their health_test.yaml (``go test`` there); the kustomize
component installs exactly those files under Argo CD's resource-customization keys."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from tests.go_tools import go_run

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "deploy" / "argocd"
ACTIONS = Path("modelyard.io") / "ModelDeployment" / "actions"
KINDS = ("ModelDeployment", "TrainingJob")


def test_health_lua_passes_its_cases_in_argo_cds_lua_vm() -> None:
    done = go_run(ARGOCD, "-count=1", "-v", "./...", command="test", timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    cases = sum(
        len(
            yaml.safe_load((ARGOCD / "modelyard.io" / kind / "health_test.yaml").read_text())[
                "tests"
            ]
        )
        for kind in KINDS
    )
    actions = yaml.safe_load((ARGOCD / ACTIONS / "action_test.yaml").read_text())
    cases += len(actions["discoveryTests"]) + len(actions["actionTests"])
    assert done.stdout.count("    --- PASS") == cases, done.stdout


def test_the_kustomization_installs_each_script_under_argo_cds_key() -> None:
    kustomization = yaml.safe_load((ARGOCD / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    assert generator["name"] == "argocd-cm"
    files = dict(entry.split("=", 1) for entry in generator["files"])
    assert files == {
        **{
            f"resource.customizations.health.modelyard.io_{kind}": f"modelyard.io/{kind}/health.lua"
            for kind in KINDS
        },
        "resource.customizations.actions.modelyard.io_ModelDeployment": (
            "modelyard.io/ModelDeployment/actions.yaml"
        ),
    }
    for path in files.values():
        assert (ARGOCD / path).is_file()


def test_the_actions_block_is_rendered_from_the_lua_files() -> None:
    """argocd-cm's actions value carries the very scripts go test ran."""
    spec = importlib.util.spec_from_file_location(
        "argocd_actions", REPO / "hack" / "argocd-actions.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kind_dir = ARGOCD / "modelyard.io" / "ModelDeployment"
    assert (kind_dir / "actions.yaml").read_text() == module.render(kind_dir), (
        "stale: run hack/argocd-actions.py"
    )
    block = yaml.safe_load((kind_dir / "actions.yaml").read_text())
    assert [d["name"] for d in block["definitions"]] == ["abort", "promote", "retrain", "retry"]
    assert block["discovery.lua"] == (ARGOCD / ACTIONS / "discovery.lua").read_text()
