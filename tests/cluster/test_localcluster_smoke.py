"""Smoke tests: the local control plane runs Deployments and Jobs, with kwok as the node."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from modelyard_devcluster import LocalCluster

from .operator_harness import wait_for

pytestmark = pytest.mark.cluster

IMAGE = "example.invalid/x:1"  # never pulled: kwok only fakes the container lifecycle


def get_json(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(cluster.kubectl("get", "-o", "json", *args))
    return obj


def condition(obj: dict[str, Any], type_: str) -> str | None:
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == type_:
            return str(c.get("status"))
    return None


@pytest.fixture
def namespace(local_cluster: LocalCluster) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    local_cluster.kubectl("create", "namespace", name)
    # Pods are rejected until the namespace's default ServiceAccount exists.
    wait_for(
        "default ServiceAccount",
        lambda: local_cluster.kubectl("get", "sa", "default", "-n", name, check=False),
    )
    yield name
    local_cluster.kubectl("delete", "namespace", name, "--wait=false")


def job_manifest(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE}],
                },
            },
        },
    }


def job_pod(cluster: LocalCluster, namespace: str, job: str) -> dict[str, Any] | None:
    pods = get_json(cluster, "pods", "-n", namespace, "-l", f"job-name={job}")["items"]
    return pods[0] if pods else None


def test_version_is_stamped(local_cluster: LocalCluster) -> None:
    version = json.loads(local_cluster.kubectl("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"].startswith("v1.34.")
    assert version["clientVersion"]["gitVersion"] == version["serverVersion"]["gitVersion"]


def test_deployment_becomes_available(local_cluster: LocalCluster, namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": IMAGE}]},
            },
        },
    }
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(deployment))

    def available() -> bool:
        d = get_json(local_cluster, "deployment", "web", "-n", namespace)
        return condition(d, "Available") == "True" and d["status"].get("readyReplicas") == 2

    wait_for("Deployment web Available with 2 ready replicas", available)
    pods = get_json(local_cluster, "pods", "-n", namespace, "-l", "app=web")["items"]
    assert len(pods) == 2
    assert all(p["spec"]["nodeName"] == "kwok-node-0" for p in pods)
    assert all(p["status"]["phase"] == "Running" for p in pods)


def test_job_pod_appears_and_kwok_completes_it(local_cluster: LocalCluster, namespace: str) -> None:
    local_cluster.kubectl(
        "apply", "-f", "-", input=json.dumps(job_manifest("plain", namespace, {}))
    )

    pod = wait_for("the Job's pod", lambda: job_pod(local_cluster, namespace, "plain"))
    assert pod["spec"]["containers"][0]["image"] == IMAGE
    # kwok's pod-complete stage finishes ordinary Job pods, so the Job completes.
    wait_for(
        "Job plain Complete",
        lambda: (
            condition(get_json(local_cluster, "job", "plain", "-n", namespace), "Complete")
            == "True"
        ),
    )


def test_trainer_pod_is_held_running_until_status_is_patched(
    local_cluster: LocalCluster, namespace: str
) -> None:
    labels = {"modelyard.io/component": "trainer"}
    local_cluster.kubectl(
        "apply", "-f", "-", input=json.dumps(job_manifest("train", namespace, labels))
    )

    def running_pod() -> dict[str, Any] | None:
        pod = job_pod(local_cluster, namespace, "train")
        return pod if pod and pod["status"].get("phase") == "Running" else None

    pod = wait_for("trainer pod Running", running_pod)
    # Plain Job pods complete within a second or two; give kwok time to (wrongly) act.
    time.sleep(3)
    pod = job_pod(local_cluster, namespace, "train")
    assert pod is not None and pod["status"]["phase"] == "Running"

    # Play the trainer's exit: a terminated container carrying a termination message.
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "message": '{"accuracy": 0.93}',
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }
            ],
        }
    }
    name = pod["metadata"]["name"]
    local_cluster.kubectl(
        "patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip

    wait_for(
        "Job train Complete",
        lambda: (
            condition(get_json(local_cluster, "job", "train", "-n", namespace), "Complete")
            == "True"
        ),
    )
    pod = get_json(local_cluster, "pod", name, "-n", namespace)
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["message"] == '{"accuracy": 0.93}'
