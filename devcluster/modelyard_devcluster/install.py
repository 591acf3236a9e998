"""What a local cluster installs from manifests/ before the operator runs: the namespace, the
operator's ServiceAccount and its least-privilege RBAC, exactly as the kustomize base ships
them (the operator itself runs as a host process here, with that ServiceAccount's token)."""

from __future__ import annotations

from typing import Any

import yaml

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
