#!/usr/bin/env python3
"""`make up` / `make down` / `make status`: the main job on this machine, end to end.

    python hack/mainjob.py up     --dir .local/cluster
    python hack/mainjob.py down   --dir .local/cluster
    python hack/mainjob.py status --dir .local/cluster

`up` (idempotent: what already runs is reused):
  1. builds or finds what it needs: Kubernetes binaries incl. kubelet + kube-proxy
     (hack/kube-binaries.sh), CoreDNS (hack/coredns-binaries.sh), node prerequisites from apt
     (hack/node/prereqs.sh), a Docker engine (hack/dockerd.sh), the runtime and the operator
     images (hack/build-runtime-image.sh, hack/build-operator-image.sh; cached);
  2. starts a LocalCluster (devcluster/modelyard_devcluster) detached in --dir with its API
     server on the cluster's own pod-reachable address and CoreDNS, and a REAL node
     (containerd + kubelet + kube-proxy, hack/node/up.sh); kwok's fake node is tainted so pods
     land on the real one; loads both images into the node's containerd;
  3. provides model storage: a hostPath PersistentVolume on --dir/models (owned by UID 10001,
     the runtime image's user) pre-bound to the samples' claim default/modelyard-models;
  4. installs Modelyard as a user does: `kubectl apply -k` of manifests/ through an overlay
     that only sets the operator image's tag (--dir/install/); the operator runs as its
     Deployment, under the shipped RBAC and Pod Security "restricted";
  5. applies manifests/samples, waits for TrainingJob iris Succeeded and ModelDeployment iris
     Ready, and sends a real Open Inference Protocol V2 request to the Service ClusterIP
     (kube-proxy on the node).
On failure it prints `kubectl describe`, pod logs and the operator's log, and exits 1.

`down` stops only what `up` started, newest first: the node (hack/node/down.sh, which also
restores the host's sysctls and iptables and leaves a node that serves another live cluster
alone), the control plane (with its CoreDNS and address); then removes --dir/models.

Must run as root (containerd, network namespaces, iptables). Standard library + PyYAML.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("modelyard_devcluster") is None:
    # `make down` / `make status` also run without .venv: the package from the tree.
    sys.path.insert(0, str(REPO / "devcluster"))

from modelyard_devcluster import NODE_NAME as KWOK_NODE  # noqa: E402
from modelyard_devcluster import ClusterError, LocalCluster  # noqa: E402
from modelyard_devcluster.install import image_tag, operator_overlay  # noqa: E402

RUNTIME_IMAGE = os.environ.get("MODELYARD_RUNTIME_IMAGE", "modelyard-runtime:dev")
OPERATOR_IMAGE = os.environ.get("MODELYARD_OPERATOR_IMAGE", "modelyard-operator:dev")
# What manifests/operator.yaml tells the operator to run trainers and servers with.
SHIPPED_RUNTIME_IMAGE = "modelyard-runtime:latest"
NODE_NAME = os.environ.get("NODE_NAME", "modelyard-node-0")
NODE_DIR = Path(os.environ.get("NODE_DIR", "/var/lib/modelyard-node"))
CTR = ["ctr", "-a", "/run/modelyard-containerd/containerd.sock", "-n", "k8s.io"]
DOCKER = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else "docker"
KWOK_TAINT = "modelyard.io/fake-node=true:NoSchedule"
OPERATOR_NS, OPERATOR_DEPLOY = "modelyard-system", "deploy/modelyard-operator"
SAMPLES_NS, SAMPLE = "default", "iris"
MODELS_CLAIM, MODELS_PV, RUNTIME_UID = "modelyard-models", "modelyard-models-local", 10001
TJ_TIMEOUT = float(os.environ.get("UP_TRAINING_TIMEOUT", "600"))
MD_TIMEOUT = float(os.environ.get("UP_SERVING_TIMEOUT", "300"))
# Three iris flowers: a setosa, a virginica, a versicolor.
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
IRIS = {0: "setosa", 1: "versicolor", 2: "virginica"}


class UpError(RuntimeError):
    """A step of `up` failed; the message says which and what to look at."""


def say(msg: str = "") -> None:
    print(msg, flush=True)


class Timings:
    """Wall-clock seconds per phase, printed as they end and again in the summary."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        say(f"==> {name}")
        t0 = time.monotonic()
        yield
        self.add(name, f"{time.monotonic() - t0:.1f}s")

    def add(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        say(f"    {name}: {value}")


def run(cmd: list[str], *, check: bool = True, capture: bool = True, **kw: Any) -> str:
    """Run a command; stdout returned (stderr passes through unless captured)."""
    result = subprocess.run(
        cmd,
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if capture else None,
        **kw,
    )
    if check and result.returncode != 0:
        err = (result.stderr or "").strip()[-3000:]
        raise UpError(
            f"{' '.join(cmd)} failed ({result.returncode})" + (f":\n{err}" if err else "")
        )
    return result.stdout


# ---------------------------------------------------------------------------------------
# State files in --dir (besides LocalCluster's own).


class State:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.overlay = self.root / "install"
        self.build_logs = self.root / "build-logs"
        self.node_marker = self.root / "node-started"  # written before hack/node/up.sh runs
        self.models = self.root / "models"


class Kube:
    """The cluster's own kubectl as admin."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.base = [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig)]

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return run([*self.base, *args], input=input, check=check, timeout=120)

    def json(self, *args: str) -> Any:
        out = self("get", *args, "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None


# ---------------------------------------------------------------------------------------
# Steps of `up`.


def build_prerequisites(t: Timings, state: State) -> tuple[Path, Path]:
    """Binaries and images; returns the Kubernetes bin dir and the CoreDNS binary."""
    with t.phase("binaries (hack/kube-binaries.sh, kubelet + kube-proxy)"):
        env = {**os.environ, "KUBE_EXTRA_CMDS": "kubelet kube-proxy"}
        bin_dir = Path(
            run(["hack/kube-binaries.sh"], capture=False, env=env).strip().splitlines()[-1]
        )
    with t.phase("CoreDNS (hack/coredns-binaries.sh)"):
        coredns = Path(run(["hack/coredns-binaries.sh"], capture=False).strip().splitlines()[-1])
    with t.phase("node prerequisites (hack/node/prereqs.sh)"):
        run(["hack/node/prereqs.sh"], capture=False)
    with t.phase("docker engine (hack/dockerd.sh)"):
        run(["hack/dockerd.sh"], capture=False)
    state.build_logs.mkdir(parents=True, exist_ok=True)
    for script, image in (
        ("hack/build-runtime-image.sh", RUNTIME_IMAGE),
        ("hack/build-operator-image.sh", OPERATOR_IMAGE),
    ):
        with t.phase(f"image build ({script} -> {image})"):
            build_log = state.build_logs / f"{Path(script).stem}.log"
            with build_log.open("w") as log:
                result = subprocess.run(
                    [script],
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    env={**os.environ, "IMAGE": image},
                )
            lines = build_log.read_text(errors="replace").splitlines()
            if result.returncode != 0:
                raise UpError(f"image build failed; {build_log}:\n" + "\n".join(lines[-30:]))
            built = [ln for ln in lines if "built" in ln] or lines[-1:]
            say(f"    {built[-1] if built else ''}")
    return bin_dir, coredns


def start_cluster(t: Timings, cluster: LocalCluster) -> bool:
    """Start the control plane unless it already runs; True when it was started now."""
    states = cluster.running()
    if states and all(states.values()):
        say(f"==> control plane already up in {cluster.work_dir} (reused)")
        cluster._load_credentials()
        return False
    if states:  # a partly dead cluster of ours: stop the rest, start afresh
        dead = ", ".join(n for n, running in states.items() if not running)
        say(f"==> control plane in {cluster.work_dir} is partly down ({dead}): restarting it")
        cluster.stop()
    with t.phase("control plane cold start (etcd, apiserver, controllers, scheduler, kwok)"):
        try:
            cluster.start()
        except ClusterError as e:
            raise UpError(f"the control plane did not start: {e}") from e
    return True


def start_node(t: Timings, cluster: LocalCluster, kube: Kube, state: State) -> None:
    with t.phase(f"real node {NODE_NAME} (hack/node/up.sh: containerd, kubelet, kube-proxy)"):
        state.node_marker.write_text(cluster.server + "\n")
        env = {**os.environ, "MODELYARD_KUBE_BIN": str(cluster.bin_dir), "NODE_NAME": NODE_NAME}
        result = subprocess.run(
            ["hack/node/up.sh", str(cluster.work_dir)],
            cwd=REPO,
            env=env,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for line in result.stderr.splitlines():
            say(f"    {line}")
        if result.returncode != 0:
            if "serves another live cluster" in result.stderr:
                state.node_marker.unlink(missing_ok=True)  # not ours: `down` must not touch it
                raise UpError(
                    "the machine's one real node serves another live cluster (someone else's "
                    "test session?). Wait for it to finish, or stop that cluster; `make down` "
                    "stops this control plane."
                )
            raise UpError(f"hack/node/up.sh failed; logs in {NODE_DIR}/logs")
    # kwok's fake node stays (LocalCluster waits for it) but takes no pods.
    kube("taint", "node", KWOK_NODE, KWOK_TAINT, "--overwrite")


def _config_digest(ref: str) -> str | None:
    """The image config digest (= Docker's image ID) of ``ref`` in the node's containerd."""
    for line in run([*CTR, "images", "ls"], check=False).splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == ref:
            digest = fields[2]
            break
    else:
        return None
    for _ in range(3):  # an index (OCI layout archives) -> its first manifest
        doc = json.loads(run([*CTR, "content", "get", digest]))
        if "config" in doc:
            return str(doc["config"]["digest"])
        digest = doc["manifests"][0]["digest"]
    return None


def _full(ref: str) -> str:
    return ref if "/" in ref else f"docker.io/library/{ref}"


def load_image(t: Timings, image: str, *names: str) -> None:
    """``image`` from Docker into the node's containerd, there also called ``names``."""
    image_id = run([DOCKER, "image", "inspect", "-f", "{{.Id}}", image]).strip()
    if all(_config_digest(_full(name)) == image_id for name in names):
        say(f"==> {image} ({image_id[7:19]}) already in the node's containerd")
        return
    with t.phase(f"image load into the node (docker save {image} | ctr import)"):
        if _config_digest(_full(image)) != image_id:
            run(["hack/node/load-image.sh", image])
        for name in names:
            run([*CTR, "images", "tag", "--force", _full(image), _full(name)])
            if _config_digest(_full(name)) != image_id:
                raise UpError(f"{name} is not {image_id} in the node's containerd after the import")


def operator_tag() -> str:
    return image_tag(run([DOCKER, "image", "inspect", "-f", "{{.Id}}", OPERATOR_IMAGE]).strip())


def install(t: Timings, kube: Kube, state: State, tag: str) -> None:
    """manifests/ as a user applies it, through an overlay that sets only the image tag."""
    overlay = operator_overlay(state.overlay, REPO / "manifests", tag)
    with t.phase(f"install: kubectl apply -k manifests/ (operator image tag {tag})"):
        for line in kube("apply", "--server-side", "-k", str(overlay)).splitlines():
            say(f"    {line}")
        # `kubectl wait` fails outright on a CRD with no status.conditions yet: read them.
        established = 'jsonpath={.status.conditions[?(@.type=="Established")].status}'
        for crd in ("trainingjobs.modelyard.io", "modeldeployments.modelyard.io"):
            wait(
                f"CRD {crd} Established",
                lambda crd=crd: kube("get", "crd", crd, "-o", established).strip() == "True",
                timeout=60,
            )
        result = subprocess.run(
            [*kube.base, "rollout", "status", "-n", OPERATOR_NS, OPERATOR_DEPLOY, "--timeout=180s"],
            text=True,
            capture_output=True,
        )
        if result.returncode != 0:
            raise UpError(f"the operator Deployment did not roll out: {result.stderr.strip()}")


def provide_storage(kube: Kube, state: State) -> None:
    say(f"==> model storage: PV {MODELS_PV} (hostPath {state.models}) bound to {MODELS_CLAIM}")
    state.models.mkdir(parents=True, exist_ok=True)
    os.chown(state.models, RUNTIME_UID, RUNTIME_UID)  # the trainer writes as UID 10001
    state.models.chmod(0o755)
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": MODELS_PV},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": str(state.models), "type": "Directory"},
            "claimRef": {"namespace": SAMPLES_NS, "name": MODELS_CLAIM},
        },
    }
    kube("apply", "--server-side", "-f", "-", input=json.dumps(pv))


def _condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def _took(obj: dict[str, Any], cond: str) -> str:
    """creationTimestamp -> the condition's lastTransitionTime, from the object itself."""

    def ts(s: str) -> float:
        return time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))

    end = _condition(obj, cond).get("lastTransitionTime")
    if not end:
        return "?"
    return f"{ts(end) - ts(obj['metadata']['creationTimestamp']):.0f}s"


def wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            raise UpError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)


def apply_and_wait(t: Timings, kube: Kube) -> None:
    say("==> kubectl apply -k manifests/samples")
    before = kube.json("tj", SAMPLE, "-n", SAMPLES_NS)
    t0 = time.monotonic()
    for line in kube("apply", "-k", str(REPO / "manifests" / "samples")).splitlines():
        say(f"    {line}")
    note = " (existing objects; times from their status)" if before else ""

    def tj_done() -> Any:
        tj = kube.json("tj", SAMPLE, "-n", SAMPLES_NS)
        ph = ((tj or {}).get("status") or {}).get("phase")
        if ph == "Failed":
            raise UpError(f"TrainingJob {SAMPLE} Failed: {json.dumps(tj['status'], indent=2)}")
        return tj if ph == "Succeeded" else None

    say(f"==> waiting for TrainingJob {SAMPLE} Succeeded (timeout {TJ_TIMEOUT:.0f}s)")
    tj = wait(f"TrainingJob {SAMPLE} Succeeded", tj_done, TJ_TIMEOUT)
    t.add(
        "apply -> TrainingJob Succeeded",
        f"{time.monotonic() - t0:.1f}s wall; {_took(tj, 'Succeeded')} by status{note}",
    )

    def md_ready() -> Any:
        md = kube.json("md", SAMPLE, "-n", SAMPLES_NS)
        return md if _condition(md, "Ready").get("status") == "True" else None

    say(f"==> waiting for ModelDeployment {SAMPLE} Ready (timeout {MD_TIMEOUT:.0f}s)")
    md = wait(f"ModelDeployment {SAMPLE} Ready", md_ready, MD_TIMEOUT)
    t.add(
        "apply -> ModelDeployment Ready",
        f"{time.monotonic() - t0:.1f}s wall; {_took(md, 'Ready')} by status{note}",
    )


def infer(kube: Kube) -> tuple[str, dict[str, Any], dict[str, Any]]:
    svc = kube.json("service", SAMPLE, "-n", SAMPLES_NS)
    if not svc:
        raise UpError(f"no Service {SAMPLE} in {SAMPLES_NS}")
    url = (
        f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}"
        f"/v2/models/{SAMPLE}/infer"
    )
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
    last: Exception | None = None
    for _ in range(20):  # kube-proxy may still be writing the Service's rules
        try:
            req = urllib.request.Request(
                url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                return url, body, json.loads(resp.read())
        except OSError as e:
            last = e
            time.sleep(1)
    raise UpError(f"POST {url} failed: {last}")


def operator_log(kube: Kube, lines: int = 40) -> str:
    return kube("logs", "-n", OPERATOR_NS, OPERATOR_DEPLOY, f"--tail={lines}", check=False)


def diagnose(kube: Kube | None) -> None:
    """What to look at when `up` failed after applying the samples: objects, pods, their
    logs, the operator's log. (Earlier steps' errors carry their own logs.)"""
    if kube is None:
        return
    for args in (
        ("describe", "tj,md", "-n", SAMPLES_NS),
        ("get", "pods,jobs,deploy,svc,pvc", "-n", SAMPLES_NS, "-o", "wide"),
        ("describe", "pods", "-n", SAMPLES_NS),
    ):
        say(f"\n--- kubectl {' '.join(args)}")
        say(kube(*args, check=False).rstrip()[-6000:])
    for pod in (kube.json("pods", "-n", SAMPLES_NS) or {}).get("items", []):
        name = pod["metadata"]["name"]
        say(f"\n--- kubectl logs {name} --tail=20")
        say(
            kube(
                "logs", name, "-n", SAMPLES_NS, "--all-containers", "--tail=20", check=False
            ).rstrip()
        )
    say(f"\n--- kubectl logs -n {OPERATOR_NS} {OPERATOR_DEPLOY} --tail=40")
    say(operator_log(kube).rstrip())


def up(state: State, bin_dir_arg: Path | None) -> int:
    if os.geteuid() != 0:
        say("error: `make up` needs root (containerd, network namespaces, iptables)")
        return 1
    t = Timings()
    t_all = time.monotonic()
    kube: Kube | None = None
    applied: Kube | None = None
    try:
        bin_dir, coredns = build_prerequisites(t, state)
        cluster = LocalCluster(
            bin_dir_arg or bin_dir,
            state.root,
            detached=True,
            pod_network=True,
            coredns_binary=coredns,
        )
        started = start_cluster(t, cluster)
        kube = Kube(cluster)
        start_node(t, cluster, kube, state)
        load_image(t, RUNTIME_IMAGE, SHIPPED_RUNTIME_IMAGE)
        tag = operator_tag()
        # :latest too, so `make deploy` (manifests/ as shipped) runs here as on kind.
        load_image(t, OPERATOR_IMAGE, f"modelyard-operator:{tag}", "modelyard-operator:latest")
        provide_storage(kube, state)
        applied = kube  # from here on, what the cluster holds is worth showing on a failure
        install(t, kube, state, tag)
        apply_and_wait(t, kube)
        url, body, answer = infer(kube)
    except (UpError, ClusterError, subprocess.TimeoutExpired) as e:
        say(f"\nerror: {e}")
        diagnose(applied)
        say(
            f"\n`make up` failed after {time.monotonic() - t_all:.0f}s. `make down` stops what "
            "it started; `make up` again retries (what runs is reused)."
        )
        return 1

    say("\n==> kubectl get tj,md")
    say(kube("get", "tj,md", "-n", SAMPLES_NS).rstrip())
    say(f"\n==> V2 inference through the Service ClusterIP (kube-proxy on {NODE_NAME})")
    say(f"    curl -s -H 'Content-Type: application/json' {url} \\\n      -d '{json.dumps(body)}'")
    say(f"    -> {json.dumps(answer)}")
    data = (answer.get("outputs") or [{}])[0].get("data") or []
    say(
        "    classes: "
        + ", ".join(f"{row} -> {IRIS.get(c, c)}" for row, c in zip(ROWS, data, strict=False))
    )
    say("\n==> timings")
    width = max(len(name) for name, _ in t.rows)
    for name, value in t.rows:
        say(f"    {name:<{width}}  {value}")
    say(f"    {'total `make up`':<{width}}  {time.monotonic() - t_all:.1f}s")
    say(f"""
Modelyard is {"up" if started else "already up (reused)"} (total {time.monotonic() - t_all:.0f}s).
  kubeconfig: {cluster.kubeconfig}
    export KUBECONFIG={cluster.kubeconfig}
    kubectl get tj,md; kubectl describe md {SAMPLE}; kubectl logs -l modelyard.io/component=server
  kubectl:    {cluster.bin_dir / "kubectl"} (same version as the cluster)
  operator:   the Deployment of manifests/ (overlay: {state.overlay}), as a pod on the node
              logs: kubectl logs -n {OPERATOR_NS} {OPERATOR_DEPLOY}
  API server: {cluster.server} (the cluster's own address: pods reach it as the
              `kubernetes` Service; nothing outside this machine can)
  DNS:        CoreDNS on {cluster.address}:53 (the kubelet's clusterDNS): the status URL's
              *.svc.cluster.local name answers from pods; from this host use the ClusterIP.
  node:       {NODE_NAME}: real containerd + kubelet + kube-proxy; logs in {NODE_DIR}/logs
  models:     {state.models} (PV {MODELS_PV})
`make down` stops everything `make up` started (node, control plane, CoreDNS) and restores
the host's sysctls and iptables rules.""")
    return 0


# ---------------------------------------------------------------------------------------


def down(state: State, bin_dir: Path | None) -> int:
    t0 = time.monotonic()
    cluster = LocalCluster(bin_dir or _default_bin(), state.root, detached=True)
    rc = 0
    if state.node_marker.exists():
        env = {**os.environ, "MODELYARD_KUBE_BIN": str(cluster.bin_dir), "NODE_NAME": NODE_NAME}
        result = subprocess.run(["hack/node/down.sh", str(state.root)], cwd=REPO, env=env)
        rc = result.returncode
        if rc == 0:
            state.node_marker.unlink(missing_ok=True)
    else:
        say("no node started from here (nothing for hack/node/down.sh)")
    if cluster.running():
        cluster.stop()
        say(f"control plane in {state.root} stopped")
    else:
        say(f"no control plane running from {state.root}")
    if state.models.exists():
        shutil.rmtree(state.models)
        say(f"removed {state.models}")
    say(f"down in {time.monotonic() - t0:.1f}s (the Docker engine is shared and keeps running)")
    return rc


def status(state: State, bin_dir: Path | None) -> int:
    cluster = LocalCluster(bin_dir or _default_bin(), state.root, detached=True)
    states = cluster.running()
    if not states:
        say(f"no control plane started from {state.root}")
    for name, running in states.items():
        say(f"{name}: {'running' if running else 'stopped'}")
    owner = NODE_DIR / "cluster-server"
    node = owner.read_text().strip() if owner.exists() else ""
    mine = bool(node) and node == cluster.server
    where = "this cluster" if mine else (node or "nothing (not running)")
    say(f"node {NODE_NAME}: serves {where}")
    return 0 if states and all(states.values()) and mine else 1


def _default_bin() -> Path:
    from modelyard_devcluster import default_bin_dir

    return default_bin_dir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/mainjob.py", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--dir",
        type=Path,
        default=REPO / ".local" / "cluster",
        help="state dir (default: %(default)s)",
    )
    parser.add_argument("--bin", type=Path, default=None, help="Kubernetes binaries dir")
    args = parser.parse_args(argv)
    state = State(args.dir)
    return {"up": up, "down": down, "status": status}[args.command](state, args.bin)


if __name__ == "__main__":
    sys.exit(main())
