"""Drift monitoring end to end on the real node: real server pods keep windows of real traffic
sent through the Service, the operator pools them through the API server's pod proxy, and the
verdict reaches status, the DataDrift condition, an Event and ``kubectl get md``.

Intervals are short through the spec (5 s checks, a 300-row window), not test-only code paths.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris

from tests.cluster.operator_harness import (
    Modelyard,
    condition,
    condition_is,
    events_for,
    model_deployment,
    phase,
    training_job,
    wait_for,
)

from .faults.faultlib import send
from .node import RealNode

pytestmark = pytest.mark.e2e

WINDOW = 300
MONITORING = {
    "drift": {
        "enabled": True,
        "interval": "5s",
        "window": {"size": WINDOW, "maxAge": "10m"},
        "minSamples": 150,
        "persistence": 2,
    }
}
PETAL_LENGTH = 2  # the column the shifted traffic moves


def iris_rows(n: int, *, shift: float = 0.0, seed: int = 0) -> list[list[float]]:
    """In-distribution traffic: training rows with a little noise; ``shift`` moves petal length
    by that many of its standard deviations."""
    data = load_iris().data
    scale = data[:, PETAL_LENGTH].std()
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        row = [float(v) + rng.gauss(0, 0.05) for v in data[rng.randrange(len(data))]]
        row[PETAL_LENGTH] += shift * scale
        rows.append(row)
    return rows


def drift(md: dict[str, Any] | None) -> dict[str, Any]:
    return ((md or {}).get("status") or {}).get("drift") or {}


def test_drift_verdict_from_real_traffic(
    modelyard: Modelyard,
    ns: str,
    runtime_image: str,
    real_node: RealNode,
    models_dir: Path,
) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl

    kubectl.apply(
        training_job("iris"),
        model_deployment("iris", training_job="iris", replicas=2, monitoring=MONITORING),
        namespace=ns,
    )
    tj = wait_for(
        "TrainingJob iris finished",
        lambda: (t := api.tj(ns, "iris")) and phase(t) in ("Succeeded", "Failed") and t,
        timeout=300,
        show=lambda: kubectl("get", "pods", "-n", ns, "-o", "wide"),
    )
    assert phase(tj) == "Succeeded", json.dumps(tj.get("status"), indent=2)
    wait_for(
        "ModelDeployment iris Ready on 2 replicas",
        lambda: (
            (m := api.md(ns, "iris")) is not None
            and condition_is(m, "Ready")
            and m["status"].get("readyReplicas") == 2
        ),
        timeout=180,
        show=lambda: kubectl("get", "pods", "-n", ns, "-o", "wide"),
    )
    svc = api.get("v1", "Service", ns, "iris")
    assert svc is not None
    url = (
        f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}/v2/models/iris/infer"
    )
    wait_for("the Service answers", lambda: _answers(url, iris_rows(1)), timeout=30)

    # Before enough traffic: InsufficientData, never drift.
    md = wait_for("a first verdict", lambda: drift(m := api.md(ns, "iris")) and m, timeout=60)
    assert drift(md)["state"] == "InsufficientData", drift(md)

    # In-distribution traffic: NoDrift, pooled from both pods.
    send(url, iris_rows(WINDOW, seed=1))
    md = wait_for(
        "NoDrift on in-distribution traffic",
        lambda: (
            drift(m := api.md(ns, "iris")).get("state") == "NoDrift"
            and (condition(m, "DataDrift") or {}).get("status") == "False"  # follows the verdict
            and m
        ),
        timeout=60,
        show=lambda: drift(api.md(ns, "iris")),
    )
    verdict = drift(md)
    assert verdict["samples"] >= 150 and verdict["pods"] == 2, verdict
    assert condition(md, "DataDrift")["status"] == "False"
    # Nothing changes: the status is not rewritten on every 5 s check.
    version = md["metadata"]["resourceVersion"]
    time.sleep(16)  # three more checks
    assert api.md(ns, "iris")["metadata"]["resourceVersion"] == version, "status churn"

    # Shifted traffic (petal length +1.5 sd): Drifting after two checks, the feature named.
    send(url, iris_rows(2 * WINDOW, shift=1.5, seed=2))
    md = wait_for(
        "Drifting on shifted traffic",
        lambda: (
            drift(m := api.md(ns, "iris")).get("state") == "Drifting"
            and (condition(m, "DataDrift") or {}).get("status") == "True"
            and m
        ),
        timeout=90,
        show=lambda: drift(api.md(ns, "iris")),
    )
    verdict = drift(md)
    drifted = [f["name"] for f in verdict["features"] if f.get("drifted")]
    assert len(drifted) >= 1 and any("petal length" in name for name in drifted), verdict
    assert condition(md, "DataDrift")["status"] == "True"
    assert condition_is(md, "Ready"), "drift does not flip Ready"
    assert phase(md) == "Ready"
    time.sleep(12)  # more checks: the Event is posted on the transition only
    detected = [e for e in events_for(api, ns, "iris") if e["reason"] == "DriftDetected"]
    assert len(detected) == 1, detected
    assert detected[0]["type"] == "Warning"

    # What a kubectl user sees.
    table = kubectl("get", "md", "iris", "-n", ns)
    assert "DRIFT" in table.splitlines()[0] and "Drifting" in table, table


def _answers(url: str, rows: list[list[float]]) -> bool:
    try:
        send(url, rows)
    except OSError:
        return False
    return True
