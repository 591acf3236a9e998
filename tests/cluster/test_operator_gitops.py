"""GitOps: the samples applied twice change nothing; the operator never owns a spec field; a
settled system does not write (no status or annotation churn) while the resync keeps running."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from .operator_harness import (
    CHURN_SECONDS,
    REPO,
    RESYNC_SECONDS,
    Modelyard,
    condition_is,
    dump,
    phase,
    running_trainer_pod,
    succeed_trainer,
    wait_for,
)

pytestmark = pytest.mark.cluster

SAMPLES = str(REPO / "manifests" / "samples")
WATCHED = (
    ("modelyard.io/v1alpha1", "TrainingJob"),
    ("modelyard.io/v1alpha1", "ModelDeployment"),
    ("batch/v1", "Job"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
)


def snapshot(modelyard: Modelyard, ns: str) -> dict[str, dict[str, Any]]:
    found = {}
    for api_version, kind in WATCHED:
        for item in modelyard.api.list(api_version, kind, ns):
            found[f"{kind}/{item['metadata']['name']}"] = item
    return found


def versions(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {key: obj["metadata"]["resourceVersion"] for key, obj in objects.items()}


def applies(modelyard: Modelyard, resource: str) -> float:
    """How many server-side applies of ``resource`` the API server has served (its metrics)."""
    text = modelyard.kubectl("get", "--raw", "/metrics")
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'verb="APPLY"' in line
            and re.search(rf'resource="{resource}"', line)
            and 'subresource=""' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def spec_managers(obj: dict[str, Any]) -> dict[str, set[str]]:
    """Field manager -> the top-level fields it owns (with the subresource it wrote)."""
    owners: dict[str, set[str]] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        fields = set((entry.get("fieldsV1") or {}).keys())
        sub = entry.get("subresource") or ""
        owners.setdefault(f"{entry['manager']}:{entry['operation']}:{sub}", set()).update(fields)
    return owners


def test_samples_apply_twice_and_settle(modelyard: Modelyard, ns: str) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl
    kubectl("apply", "--server-side", "-k", SAMPLES, "-n", ns)
    pod = running_trainer_pod(api, ns, "iris-g1")
    succeed_trainer(api, pod)
    wait_for(
        "the sample ModelDeployment Ready",
        lambda: condition_is(api.md(ns, "iris"), "Ready"),
        timeout=60,
        show=lambda: api.md(ns, "iris"),
    )
    assert phase(api.tj(ns, "iris")) == "Succeeded"

    # Let it settle (the last status write follows the last pod/Deployment event).
    def settled() -> dict[str, dict[str, Any]] | None:
        before = snapshot(modelyard, ns)
        time.sleep(max(2.0, RESYNC_SECONDS + 1))
        after = snapshot(modelyard, ns)
        return after if versions(before) == versions(after) else None

    start = wait_for("no writes for one resync interval", settled, timeout=60)

    # The same samples again: nothing changes, not even a resourceVersion.
    out = kubectl("apply", "--server-side", "-k", SAMPLES, "-n", ns)
    assert "serverside-applied" in out
    again = snapshot(modelyard, ns)
    assert versions(again) == versions(start), _diff(start, again)

    # The operator never owns spec: on our CRs only the user's manager holds spec fields; the
    # operator writes the status subresource, and kopf leaves no annotations or finalizers.
    for key in ("TrainingJob/iris", "ModelDeployment/iris"):
        obj = again[key]
        assert obj["metadata"]["generation"] == 1, key
        owners = spec_managers(obj)
        spec_owners = {who for who, fields in owners.items() if "f:spec" in fields}
        assert spec_owners == {"kubectl:Apply:"}, (key, owners)
        status_owners = {who for who, fields in owners.items() if "f:status" in fields}
        assert status_owners == {"modelyard:Update:status"}, (key, owners)
        assert not obj["metadata"].get("finalizers"), key
        annotations = obj["metadata"].get("annotations") or {}
        assert not [a for a in annotations if "kopf" in a], annotations
    job_owners = spec_managers(again["Job/iris-g1"])
    assert "modelyard:Apply:" in job_owners

    # Churn: with the resync every few seconds, nothing is written for CHURN_SECONDS.
    applied_before = applies(modelyard, "deployments")
    deadline = time.monotonic() + CHURN_SECONDS
    while time.monotonic() < deadline:
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        now = snapshot(modelyard, ns)
        assert versions(now) == versions(start), _diff(start, now)
    resyncs = applies(modelyard, "deployments") - applied_before
    # The operator was not idle: it re-applied the Deployment at every resync (a no-op).
    assert resyncs >= max(1, int(CHURN_SECONDS / RESYNC_SECONDS) - 2), resyncs


def _diff(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> str:
    lines = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if (
            a is None
            or b is None
            or a["metadata"]["resourceVersion"] != b["metadata"]["resourceVersion"]
        ):
            lines.append(f"--- {key} before ---\n{dump(a)}--- {key} after ---\n{dump(b)}")
    return "\n".join(lines)
