"""The operator end to end on a real node: a TrainingJob really trains, its ModelDeployment
really serves, and an inference request gets real predictions.

Same fixtures as tests/cluster (operator_harness: CRDs, shipped RBAC, operator as a host
process with its ServiceAccount's token), but ``local_cluster`` is the e2e cluster whose pods
run on the kubelet of hack/node/up.sh, with the runtime image loaded into its containerd.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.operator_harness import (
    Modelyard,
    condition_is,
    model_deployment,
    phase,
    training_job,
    wait_for,
)

from .node import RealNode

pytestmark = pytest.mark.e2e

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def infer(url: str) -> dict[str, Any]:
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(ROWS), 4],
                "datatype": "FP64",
                "data": [v for row in ROWS for v in row],
            }
        ]
    }
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def answer(url: str) -> dict[str, Any] | None:
    try:
        return infer(url)
    except OSError:  # refused or reset: not programmed yet
        return None


def test_train_then_serve_for_real(
    modelyard: Modelyard,
    ns: str,
    runtime_image: str,
    real_node: RealNode,
    models_dir: Path,
) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl

    kubectl.apply(training_job("iris"), model_deployment("iris", training_job="iris"), namespace=ns)
    tj = wait_for(
        "TrainingJob iris finished",
        lambda: (t := api.tj(ns, "iris")) and phase(t) in ("Succeeded", "Failed") and t,
        timeout=300,
        show=lambda: {
            "tj": api.tj(ns, "iris"),
            "pods": kubectl("get", "pods", "-n", ns, "-o", "wide"),
        },
    )
    assert phase(tj) == "Succeeded", json.dumps(tj.get("status"), indent=2)
    model = tj["status"]["model"]
    # The trainer really wrote the artifact into the volume.
    assert any(models_dir.rglob("*")), "no files in the models volume"

    md = wait_for(
        "ModelDeployment iris Ready",
        lambda: (m := api.md(ns, "iris")) is not None and condition_is(m, "Ready") and m,
        timeout=180,
        show=lambda: {
            "md": api.md(ns, "iris"),
            "pods": kubectl("get", "pods", "-n", ns, "-o", "wide"),
        },
    )
    assert md["status"]["model"]["sha256"] == model["sha256"]

    pods = json.loads(
        kubectl("get", "pods", "-n", ns, "-l", "modelyard.io/model-deployment=iris", "-o", "json")
    )["items"]
    ready = [p for p in pods if condition_is(p, "Ready")]
    assert ready and ready[0]["spec"]["nodeName"] == real_node.name
    pod_ip = ready[0]["status"]["podIP"]
    port = ready[0]["spec"]["containers"][0]["ports"][0]["containerPort"]
    out = infer(f"http://{pod_ip}:{port}/v2/models/iris/infer")
    assert out["outputs"][0]["data"] == [0, 2, 1], out

    # And through the Service (kube-proxy on the node).
    svc = api.get("v1", "Service", ns, "iris")
    assert svc is not None
    svc_port = svc["spec"]["ports"][0]["port"]
    service_url = f"http://{svc['spec']['clusterIP']}:{svc_port}/v2/models/iris/infer"
    # Ready follows the pods' readiness; kube-proxy programs the new endpoint a moment later
    # (as on any cluster), so the first request through the ClusterIP may be refused.
    out = wait_for("the Service answers", lambda: answer(service_url), timeout=30)
    assert out["outputs"][0]["data"] == [0, 2, 1], out

    # A changed spec rolls out for real: two replicas, both serving on the node.
    kubectl.apply(model_deployment("iris", training_job="iris", replicas=2), namespace=ns)
    wait_for(
        "ModelDeployment iris Ready with 2 replicas",
        lambda: (
            (m := api.md(ns, "iris")) is not None
            and condition_is(m, "Ready")
            and m["status"].get("readyReplicas") == 2
        ),
        timeout=180,
        show=lambda: kubectl("get", "pods", "-n", ns, "-o", "wide"),
    )

    # A retrained model (a new spec: a new generation, a new Job, a new version) replaces the
    # served one, and the Service answers with the new version.
    kubectl.apply(
        training_job(
            "iris",
            model={"estimator": "RandomForestClassifier", "hyperparameters": {"n_estimators": 20}},
        ),
        namespace=ns,
    )
    retrained = wait_for(
        "TrainingJob iris retrained",
        lambda: (
            (t := api.tj(ns, "iris"))
            and phase(t) == "Succeeded"
            and t["status"]["model"]["version"] != model["version"]
            and t
        ),
        timeout=300,
        show=lambda: {"tj": api.tj(ns, "iris")},
    )
    new_model = retrained["status"]["model"]
    wait_for(
        "ModelDeployment iris rolled to the retrained model",
        lambda: (
            (m := api.md(ns, "iris")) is not None
            and condition_is(m, "Ready")
            and m["status"]["model"]["sha256"] == new_model["sha256"]
            and m["status"].get("readyReplicas") == 2
        ),
        timeout=240,
        show=lambda: kubectl("get", "pods", "-n", ns, "-o", "wide"),
    )
    out = wait_for(
        "the Service answers with the retrained model",
        lambda: (
            (o := infer(f"http://{svc['spec']['clusterIP']}:{svc_port}/v2/models/iris/infer"))
            and o["model_version"] == new_model["version"]
            and o
        ),
        timeout=60,
        show=lambda: kubectl("get", "pods", "-n", ns, "-o", "wide"),
    )
    assert out["outputs"][0]["data"] == [0, 2, 1], out

    # A model the server refuses (the pin does not match the artifact's digest): the reason is
    # in status, read from the server's termination message, not just "CrashLoopBackOff".
    pinned = model_deployment("pinned", storage_uri=new_model["uri"])
    pinned["spec"]["model"]["sha256"] = "0" * 64
    kubectl.apply(pinned, namespace=ns)
    refused = wait_for(
        "ModelDeployment pinned Degraded/ModelLoadFailed",
        lambda: (
            (m := api.md(ns, "pinned"))
            and ((m.get("status") or {}).get("lastFailure") or {}).get("reason")
            == "ModelLoadFailed"
            and m
        ),
        timeout=120,
        show=lambda: {"md": api.md(ns, "pinned"), "pods": kubectl("get", "pods", "-n", ns)},
    )
    assert phase(refused) == "Degraded"
    assert not condition_is(refused, "Ready")
    assert "sha256 mismatch" in refused["status"]["lastFailure"]["message"], refused["status"]
