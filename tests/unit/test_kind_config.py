"""kind-config.yaml is a config `kind create cluster --config` accepts: deploy/kind checks it with
kind's own code (strict decode into its v1alpha4.Cluster, then kind's loader and validation)
since kind itself cannot run without privileged containers. The broken copies show the checker
can fail: a misspelled field, a role kind does not know, a wrong apiVersion."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.go_tools import REPO, go_run

CHECKER = REPO / "deploy" / "kind"
CONFIG = REPO / "kind-config.yaml"


def test_kind_config_is_valid_for_kind() -> None:
    done = go_run(CHECKER, str(CONFIG))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok:") and "control-plane" in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    image: kindest", "    imgae: kindest", "field imgae not found in type v1alpha4.Node"),
        ("role: worker", "role: master", '"master" is not a valid node role'),
        ("kind.x-k8s.io/v1alpha4", "kind.x-k8s.io/v1alpha3", 'apiVersion "kind.x-k8s.io/v1alpha3"'),
    ],
)
def test_the_checker_refuses_a_broken_copy(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = CONFIG.read_text()
    assert old in text
    bad = tmp_path / "kind-config.yaml"
    bad.write_text(text.replace(old, new, 1))
    done = go_run(CHECKER, str(bad))
    assert done.returncode == 1 and message in done.stderr, done.stderr
