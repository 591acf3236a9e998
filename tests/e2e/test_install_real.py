"""The install path a user takes: the operator runs as the pod manifests/ declares.

On the e2e cluster (its API server on a pod-reachable address, CoreDNS answering for
cluster.local, see modelyard_devcluster.network), the operator image built here is loaded into
the real node and deployed with ``kubectl apply -k`` of an overlay that changes only its tag:
the shipped RBAC, Pod Security "restricted" on modelyard-system, in-cluster configuration
through the ``kubernetes`` Service, the liveness probe. Then the sample story (manifests/samples)
runs under it; the operator pod is deleted mid-training; the model is asked for predictions by
another pod at the name ``status.url`` gives; and the HA overlay (deploy/operator-ha/) fails
over when the leader's pod is deleted.

The session's host operator (operator_harness) is stopped while this module runs, so exactly
one operator reconciles; it is started again afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelyard_devcluster import LocalCluster
from modelyard_devcluster.install import image_tag, operator_overlay

import tests.cluster.operator_harness as harness
from tests.cluster.operator_harness import (
    MODELS_HOST_ROOT,
    Api,
    Kubectl,
    condition_is,
    models_volume,
    phase,
    wait_for,
)

from .node import BUSYBOX_IMAGE, RealNode
from .support import REPO, full_image_name, skip_or_fail

pytestmark = pytest.mark.e2e

OPERATOR_NS = "modelyard-system"
SELECTOR = "app.kubernetes.io/name=modelyard,app.kubernetes.io/component=operator"
LEASE = "modelyard-operator"
# What manifests/operator.yaml's MODELYARD_RUNTIME_IMAGE names (loaded, never pulled).
SHIPPED_RUNTIME_IMAGE = "modelyard-runtime:latest"
SAMPLE = "iris"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="module")
def no_host_operator() -> Iterator[None]:
    """Stop the session's host operator (if one runs) for this module; start it again after."""
    paused = harness._current_operator
    if paused is not None and paused.popen is not None and paused.popen.poll() is None:
        paused.stop()
    else:
        paused = None
    yield
    if paused is not None:
        paused.start()


@pytest.fixture(scope="module")
def operator_tag(real_node: RealNode, runtime_image: str) -> str:
    """The operator image (hack/build-operator-image.sh) in the node under a content tag; the
    runtime image also under the name the shipped Deployment gives the operator."""
    source = "modelyard-operator:dev"
    inspect = subprocess.run(
        ["/usr/bin/docker", "image", "inspect", "-f", "{{.Id}}", source],
        capture_output=True,
        text=True,
    )
    if inspect.returncode != 0:
        skip_or_fail(f"{source} not built (hack/build-operator-image.sh)")
    tag = image_tag(inspect.stdout.strip())
    real_node.load_docker_image(source)
    # :latest as well: what manifests/ names, for `make deploy`.
    names = (f"modelyard-operator:{tag}", "modelyard-operator:latest")
    for have, want in [(source, name) for name in names] + [(runtime_image, SHIPPED_RUNTIME_IMAGE)]:
        real_node.ctr("images", "tag", "--force", full_image_name(have), full_image_name(want))
    return tag


@pytest.fixture(scope="module")
def kubectl(e2e_cluster: LocalCluster) -> Kubectl:
    return Kubectl(e2e_cluster.bin_dir / "kubectl", e2e_cluster.kubeconfig)


@pytest.fixture(scope="module")
def api(e2e_cluster: LocalCluster) -> Api:
    return Api(e2e_cluster.kubeconfig)


def deploy(kubectl: Kubectl, overlay: Path) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(overlay))
    kubectl("rollout", "status", "-n", OPERATOR_NS, "deploy/modelyard-operator", "--timeout=180s")


def operator_pods(api: Api) -> list[dict[str, Any]]:
    pods = api.list("v1", "Pod", OPERATOR_NS, selector=SELECTOR)
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    return condition_is(pod, "Ready")


def operator_log(kubectl: Kubectl) -> str:
    return kubectl.run(
        "logs", "-n", OPERATOR_NS, "-l", SELECTOR, "--tail=-1", "--prefix", check=False
    ).stdout


def _level(line: str) -> str:
    """The level of one ``kubectl logs --prefix`` line of the operator's JSON log."""
    _, _, record = line.partition(" ")
    try:
        return str(json.loads(record).get("level", ""))
    except ValueError:
        return ""


@pytest.fixture(scope="module")
def installed(
    no_host_operator: None,
    operator_tag: str,
    kubectl: Kubectl,
    api: Api,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """manifests/ (image tag overlaid) applied; the operator's Deployment rolled out. Removed
    afterwards, all but the CRDs and RBAC the session shares."""
    work = tmp_path_factory.mktemp("install")
    overlay = operator_overlay(work / "base", REPO / "manifests", operator_tag)
    deploy(kubectl, overlay)
    yield work
    log = operator_log(kubectl)
    # Foreground: the Deployment goes only after its pods are gone, and then wait for every
    # operator pod to have ended, so no pod operator acts beside the host operator afterwards.
    objects = ("deploy/modelyard-operator", "pdb/modelyard-operator")
    flags = ("--ignore-not-found", "--cascade=foreground", "--wait=true", "--timeout=120s")
    kubectl("delete", "-n", OPERATOR_NS, *objects, *flags)
    wait_for(
        "every operator pod gone",
        lambda: not api.list("v1", "Pod", OPERATOR_NS, selector=SELECTOR),
        timeout=120,
    )
    kubectl("delete", "-n", OPERATOR_NS, "lease", LEASE, "--ignore-not-found")
    errors = [ln for ln in log.splitlines() if _level(ln) in ("error", "critical")]
    assert not errors, "the operator pods logged errors:\n" + "\n".join(errors[:20])


@pytest.fixture
def sample_ns(api: Api) -> Iterator[str]:
    """A namespace whose models PersistentVolume waits for the samples' own claim."""
    name = f"install-{uuid.uuid4().hex[:6]}"
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for("default ServiceAccount", lambda: api.get("v1", "ServiceAccount", name, "default"))
    host = MODELS_HOST_ROOT / name
    host.mkdir(parents=True, exist_ok=True)
    host.chmod(0o777)
    models_volume(api, name, claim=False)
    yield name
    api.delete("v1", "Namespace", None, name)
    api.delete("v1", "PersistentVolume", None, f"models-{name}")


def run_pod(api: Api, kubectl: Kubectl, namespace: str, name: str, script: str) -> str:
    """Run ``script`` in a busybox pod on the node; return its log once it Succeeded."""
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "client", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", script]}
                ],
            },
        }
    )
    done = wait_for(
        f"pod {name} finished",
        lambda: phase(api.get("v1", "Pod", namespace, name)) in ("Succeeded", "Failed"),
        timeout=120,
    )
    assert done
    log = kubectl("logs", "-n", namespace, name)
    assert phase(api.get("v1", "Pod", namespace, name)) == "Succeeded", log
    return log


def test_operator_pod_runs_the_sample_story(
    installed: Path, kubectl: Kubectl, api: Api, sample_ns: str
) -> None:
    ns_labels = api.get("v1", "Namespace", None, OPERATOR_NS)["metadata"]["labels"]
    assert ns_labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # Enforced for real: a pod that does not meet "restricted" is refused at admission.
    refused = kubectl.run(
        "run", "psa-probe", "-n", OPERATOR_NS, f"--image={BUSYBOX_IMAGE}", "--restart=Never",
        "--dry-run=server", check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr
    [first] = operator_pods(api)
    assert ready(first), first["status"]

    kubectl("apply", "-n", sample_ns, "-k", str(REPO / "manifests" / "samples"))
    # Mid-training: the Job exists and its trainer pod is running; take the operator away.
    wait_for(
        "the trainer pod running",
        lambda: any(
            phase(p) == "Running"
            for p in api.list("v1", "Pod", sample_ns, selector="modelyard.io/component=trainer")
        ),
        timeout=180,
    )
    kubectl("delete", "pod", "-n", OPERATOR_NS, first["metadata"]["name"], "--wait=false")
    replacement = wait_for(
        "a new operator pod Ready",
        lambda: next(
            (
                p
                for p in operator_pods(api)
                if p["metadata"]["uid"] != first["metadata"]["uid"] and ready(p)
            ),
            None,
        ),
        timeout=120,
    )
    tj = wait_for(
        f"TrainingJob {SAMPLE} Succeeded",
        lambda: (
            (obj := api.tj(sample_ns, SAMPLE)) and phase(obj) in ("Succeeded", "Failed") and obj
        ),
        timeout=420,
        interval=2,
    )
    assert phase(tj) == "Succeeded", tj["status"]
    jobs = api.list("batch/v1", "Job", sample_ns)
    assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]

    md = wait_for(
        f"ModelDeployment {SAMPLE} Ready",
        lambda: (obj := api.md(sample_ns, SAMPLE)) and condition_is(obj, "Ready") and obj,
        timeout=300,
        interval=2,
    )
    url = md["status"]["url"]
    assert url == f"http://{SAMPLE}.{sample_ns}.svc.cluster.local/v2/models/{SAMPLE}", url
    body = {"inputs": [{"name": "input-0", "shape": [3, 4], "datatype": "FP64",
                        "data": [v for row in ROWS for v in row]}]}  # fmt: skip
    # From another pod, by the status URL's name: CoreDNS resolves it, kube-proxy routes it.
    log = run_pod(
        api,
        kubectl,
        sample_ns,
        "v2-client",
        # Retried: kube-proxy may still be writing the Service's rules. (This busybox's
        # wget -T crashes; `timeout` bounds each try instead.)
        f"nslookup {SAMPLE}.{sample_ns}.svc.cluster.local && for i in $(seq 20); do "
        f"timeout 10 wget -q -O - --header 'Content-Type: application/json' "
        f"--post-data '{json.dumps(body)}' {url}/infer && exit 0; sleep 1; done; exit 1",
    )
    answer = json.loads(log.strip().splitlines()[-1])
    assert answer["model_name"] == SAMPLE
    assert answer["outputs"][0]["data"] == [0, 2, 1], answer  # setosa, virginica, versicolor

    # The liveness probe passed all along: the replacement was never restarted.
    pod = api.get("v1", "Pod", OPERATOR_NS, replacement["metadata"]["name"])
    statuses = pod["status"]["containerStatuses"]
    assert ready(pod) and all(s["restartCount"] == 0 for s in statuses), statuses


def lease_holder(api: Api) -> str:
    lease = api.get("coordination.k8s.io/v1", "Lease", OPERATOR_NS, LEASE) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_ha_overlay_fails_over(
    installed: Path, operator_tag: str, kubectl: Kubectl, api: Api, sample_ns: str
) -> None:
    overlay = operator_overlay(installed / "ha", REPO / "deploy" / "operator-ha", operator_tag)
    deploy(kubectl, overlay)
    pods = wait_for(
        "two operator pods Ready",
        lambda: (
            (found := operator_pods(api)) and len(found) == 2 and all(map(ready, found)) and found
        ),
        timeout=120,
    )
    names = [p["metadata"]["name"] for p in pods]

    def leader_pods() -> list[dict[str, Any]]:
        # The overlay rolled the pods (new template): wait out the old leader's hand-over.
        return [p for p in pods if lease_holder(api).startswith(p["metadata"]["name"] + "-")]

    leaders = wait_for(f"one of {names} holding the lease", leader_pods, timeout=60)
    holder = lease_holder(api)
    [leader] = leaders
    [standby] = [p for p in pods if p is not leader]

    # No replacement may start (the node is cordoned), so only the standby can take over.
    node = leader["spec"]["nodeName"]
    kubectl("cordon", node)
    try:
        kubectl("delete", "pod", "-n", OPERATOR_NS, leader["metadata"]["name"], "--wait=false")
        t0 = time.monotonic()
        new_holder = wait_for(
            "the standby holding the lease",
            lambda: (h := lease_holder(api)) and h != holder and h,
            timeout=60,
        )
        took = time.monotonic() - t0
        print(f"failover: the standby held the lease {took:.1f}s after the delete")
    finally:
        kubectl("uncordon", node)
    assert new_holder.startswith(standby["metadata"]["name"] + "-"), (new_holder, names)
    # A deleted leader releases the lease; the standby's next renew (lease/3 = 5 s) takes it.
    # Bound: one lease (15 s), as if the release were lost.
    assert took < 15 + 5, f"failover took {took:.1f}s"

    # The new leader reconciles: a ModelDeployment with nothing to serve gets its status.
    api.create(
        {
            "apiVersion": "modelyard.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "after-failover", "namespace": sample_ns},
            "spec": {"model": {"trainingJobRef": {"name": "absent"}}},
        }
    )
    wait_for(
        "status from the new leader",
        lambda: (
            (obj := api.md(sample_ns, "after-failover")) and (obj.get("status") or {}).get("phase")
        ),
        timeout=60,
    )


def test_make_deploy_works_here_as_on_kind(
    installed: Path, e2e_cluster: LocalCluster, kubectl: Kubectl, api: Api
) -> None:
    """README's kind quick start ends in `make deploy`: the same command, with this cluster's
    kubeconfig and kubectl, rolls out manifests/ as shipped (the image tag :latest)."""
    env = {
        **os.environ,
        "KUBECONFIG": str(e2e_cluster.kubeconfig),
        "PATH": f"{e2e_cluster.bin_dir}:{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(
        ["make", "-s", "deploy"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deploying to context modelyard-local" in done.stdout, done.stdout
    kubectl("rollout", "status", "-n", OPERATOR_NS, "deploy/modelyard-operator", "--timeout=180s")
    deployment = api.get("apps/v1", "Deployment", OPERATOR_NS, "modelyard-operator") or {}
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "modelyard-operator:latest", container["image"]
    wait_for(
        "one operator pod Ready",
        lambda: (found := operator_pods(api)) and len(found) == 1 and ready(found[0]),
        timeout=120,
    )
