"""The dev cluster's kwok stages (devcluster/modelyard_devcluster/kwok-stages.yaml) are the
upstream set with one change: Job pods labelled HOLD_LABEL are never completed by kwok."""

from __future__ import annotations

from typing import Any

import yaml
from modelyard_devcluster.cluster import HOLD_LABEL, KWOK_STAGES


def stages() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(KWOK_STAGES.read_text()) if d]
    assert {d["kind"] for d in docs} == {"Stage"}
    return {d["metadata"]["name"]: d["spec"] for d in docs}


def test_every_stage_kwok_needs_is_there() -> None:
    # Any Stage passed replaces all of kwok's defaults: a missing one stops that lifecycle.
    assert set(stages()) == {
        "node-initialize",
        "node-heartbeat-with-lease",
        "pod-ready",
        "pod-complete",
        "pod-delete",
    }


def test_pod_complete_leaves_held_pods_running() -> None:
    key, value = HOLD_LABEL
    selector = stages()["pod-complete"]["selector"]["matchExpressions"]
    assert {"key": f'.metadata.labels["{key}"]', "operator": "NotIn", "values": [value]} in (
        selector
    )
    assert {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]} in (
        selector
    )


def test_templates_are_templates() -> None:
    for name, spec in stages().items():
        template = spec["next"].get("statusTemplate")
        assert template is None or "{{" in template, name
