"""Installing Modelyard from manifests/ into a local cluster.

``make up`` and the e2e tier deploy the operator exactly as a user does: ``kubectl apply -k``
of the kustomize base (or the HA overlay deploy/operator-ha/), through an overlay whose only
change is the operator image's tag (``operator_overlay``). The cluster tier runs the operator
as a host process instead, with the base's RBAC (``rbac_documents``) and its ServiceAccount's
token, so that kwok can play the node.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

# The image name manifests/operator.yaml uses; overlays change only its tag.
OPERATOR_IMAGE = "modelyard-operator"
RBAC_KINDS = (
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
)


def rbac_documents(rendered: str) -> list[dict[str, Any]]:
    """The RBAC objects of ``kubectl kustomize manifests/``'s output; every kind must be there
    (a base that lost one would let the operator run with less than it ships with)."""
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    chosen = [d for d in docs if d["kind"] in RBAC_KINDS]
    missing = set(RBAC_KINDS) - {d["kind"] for d in chosen}
    if missing:
        raise ValueError(f"manifests/ renders no {', '.join(sorted(missing))}")
    return chosen


def image_tag(image_id: str) -> str:
    """A tag named after the image's content (Docker's image ID), so a rebuilt image is a new
    pod template -- a rollout -- and an unchanged one is not."""
    return "dev-" + image_id.removeprefix("sha256:")[:12]


def operator_overlay(directory: Path, base: Path, tag: str) -> Path:
    """Write ``directory/kustomization.yaml``: ``base`` with the operator image at ``tag``
    (kustomize wants the base as a relative path); return ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(base.resolve(), directory.resolve())],
        "images": [{"name": OPERATOR_IMAGE, "newTag": tag}],
    }
    (directory / "kustomization.yaml").write_text(
        "# Generated: the operator image built on this machine; nothing else changed.\n"
        + yaml.safe_dump(kustomization, sort_keys=False)
    )
    return directory
