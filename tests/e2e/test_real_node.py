"""Pods really run: a real kubelet + containerd joined to the local control plane."""

from __future__ import annotations

import functools
import ipaddress
import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from modelyard_devcluster import LocalCluster

from tests.cluster import operator_harness

from .node import BUSYBOX_IMAGE, RealNode

pytestmark = pytest.mark.e2e


# Real pods (image unpacking, probes) take longer than kwok's simulated ones.
wait_for = functools.partial(operator_harness.wait_for, timeout=90.0)


def get_pod(cluster: LocalCluster, ns: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = json.loads(cluster.kubectl("get", "pod", name, "-n", ns, "-o", "json"))
    return pod


def apply(cluster: LocalCluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def pod(name: str, ns: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1, **spec},
    }


@pytest.fixture
def ns(e2e_cluster: LocalCluster, real_node: RealNode) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    e2e_cluster.kubectl("create", "namespace", name)
    wait_for(
        "default ServiceAccount",
        lambda: e2e_cluster.kubectl("get", "sa", "default", "-n", name, check=False),
    )
    yield name
    e2e_cluster.kubectl("delete", "namespace", name, "--wait=false")


def test_node_is_real_and_ready(e2e_cluster: LocalCluster, real_node: RealNode) -> None:
    node = json.loads(e2e_cluster.kubectl("get", "node", real_node.name, "-o", "json"))
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"].startswith("v1.34.")
    assert info["containerRuntimeVersion"].startswith("containerd://")
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True", ready


def test_container_exit_code_and_termination_message(
    e2e_cluster: LocalCluster, real_node: RealNode, ns: str
) -> None:
    container = {
        "name": "main",
        "image": BUSYBOX_IMAGE,
        "imagePullPolicy": "Never",
        "command": [
            "sh",
            "-c",
            'printf "{\\"ok\\": true, \\"pod\\": \\"%s\\"}" "$POD" > /dev/termination-log',
        ],
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    }
    apply(e2e_cluster, pod("done", ns, container, restartPolicy="Never"))
    p = wait_for(
        "pod Succeeded",
        lambda: (q := get_pod(e2e_cluster, ns, "done"))["status"].get("phase") == "Succeeded" and q,
    )
    assert p["spec"]["nodeName"] == real_node.name
    term = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0
    assert json.loads(term["message"]) == {"ok": True, "pod": "done"}


def test_failing_container_reports_exit_code(
    e2e_cluster: LocalCluster, real_node: RealNode, ns: str
) -> None:
    container = {
        "name": "main",
        "image": BUSYBOX_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", "echo gate failed > /dev/termination-log; exit 3"],
    }
    apply(e2e_cluster, pod("fails", ns, container, restartPolicy="Never"))
    p = wait_for(
        "pod Failed",
        lambda: (q := get_pod(e2e_cluster, ns, "fails"))["status"].get("phase") == "Failed" and q,
    )
    term = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["message"].strip()) == (3, "gate failed")


def test_pod_serves_http_at_its_pod_ip(
    e2e_cluster: LocalCluster, real_node: RealNode, ns: str
) -> None:
    container = {
        "name": "web",
        "image": BUSYBOX_IMAGE,
        "imagePullPolicy": "Never",
        "command": [
            "sh",
            "-c",
            'echo "hello from $POD" > /tmp/index.html; exec httpd -f -p 8080 -h /tmp',
        ],
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1},
        "securityContext": {
            "runAsUser": 65534,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    apply(e2e_cluster, pod("web", ns, container))

    def ready() -> dict[str, Any] | None:
        p = get_pod(e2e_cluster, ns, "web")
        conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
        return p if conds.get("Ready") == "True" else None

    p = wait_for("pod Ready", ready)
    ip = ipaddress.ip_address(p["status"]["podIP"])
    # Only ever talk to addresses our own CNI bridge handed out.
    assert ip in real_node.pod_subnet, (ip, real_node.pod_subnet)
    with urllib.request.urlopen(f"http://{ip}:8080/index.html", timeout=5) as resp:
        assert resp.read().decode().strip() == "hello from web"


def test_service_cluster_ip_from_host_and_from_a_pod(
    e2e_cluster: LocalCluster, real_node: RealNode, ns: str
) -> None:
    """kube-proxy on the node: a Service's ClusterIP load-balances to ready pods."""
    web = {
        "name": "web",
        "image": BUSYBOX_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"],
        "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1},
    }
    apply(
        e2e_cluster,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [web], "terminationGracePeriodSeconds": 1},
                },
            },
        },
    )
    apply(
        e2e_cluster,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    e2e_cluster.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=90s")
    svc = json.loads(e2e_cluster.kubectl("get", "service", "web", "-n", ns, "-o", "json"))
    cluster_ip = svc["spec"]["clusterIP"]
    pods = json.loads(e2e_cluster.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "json"))
    names = {p["metadata"]["name"] for p in pods["items"]}

    def served() -> set[str]:
        seen = set()
        for _ in range(20):
            try:
                with urllib.request.urlopen(f"http://{cluster_ip}/index.html", timeout=3) as r:
                    seen.add(r.read().decode().strip())
            except OSError:
                return set()  # rules not programmed yet
        return seen

    assert wait_for("the ClusterIP to answer", served) <= names

    # From inside a pod (busybox's static wget segfaults on lookups; nc is enough).
    fetch = f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {cluster_ip} 80 | tail -1"
    client = {
        "name": "c",
        "image": BUSYBOX_IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", f"{fetch} > /dev/termination-log"],
    }
    apply(e2e_cluster, pod("client", ns, client, restartPolicy="Never"))
    p = wait_for(
        "client pod done",
        lambda: (
            (q := get_pod(e2e_cluster, ns, "client"))["status"].get("phase")
            in ("Succeeded", "Failed")
            and q
        ),
    )
    message = p["status"]["containerStatuses"][0]["state"]["terminated"].get("message", "")
    assert message.strip() in names, message


def test_runtime_image_runs_on_the_real_node(
    e2e_cluster: LocalCluster, real_node: RealNode, ns: str, runtime_image: str
) -> None:
    """The image built locally by Docker loads into containerd and runs as its non-root user."""
    script = (
        "import json, os, sklearn; "
        "open('/dev/termination-log', 'w').write(json.dumps("
        "{'uid': os.getuid(), 'sklearn': sklearn.__version__}))"
    )
    container = {
        "name": "main",
        "image": runtime_image,
        "imagePullPolicy": "Never",
        "command": ["python", "-c", script],
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    apply(e2e_cluster, pod("runtime", ns, container, restartPolicy="Never"))
    p = wait_for(
        "runtime pod Succeeded",
        lambda: (
            (q := get_pod(e2e_cluster, ns, "runtime"))["status"].get("phase")
            in ("Succeeded", "Failed")
            and q
        ),
        timeout=180,
    )
    term = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0, term
    assert json.loads(term["message"])["uid"] == 10001
