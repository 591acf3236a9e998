#!/usr/bin/env python3
"""`make up` / `make down` / `make status`: the main job on this machine, end to end.

    python hack/mainjob.py up     --dir .local/cluster
    python hack/mainjob.py down   --dir .local/cluster
    python hack/mainjob.py status --dir .local/cluster

`up` (idempotent: what already runs is reused):
  1. builds or finds what it needs: Kubernetes binaries incl. kubelet + kube-proxy
     (hack/kube-binaries.sh), node prerequisites from apt (hack/node/prereqs.sh), a Docker
     engine (hack/dockerd.sh) and the runtime image (hack/build-runtime-image.sh, cached);
  2. starts a LocalCluster (devcluster/modelyard_devcluster) detached in --dir, and a REAL node
     (containerd + kubelet + kube-proxy, hack/node/up.sh); kwok's fake node is tainted so pods
     land on the real one; loads the runtime image into the node's containerd;
  3. installs the CRDs and the RBAC from manifests/ and runs the operator as a local process
     authenticated as its ServiceAccount (a TokenRequest token) -- not as the Deployment in
     manifests/operator.yaml: the apiserver listens on 127.0.0.1 only, pods cannot reach it;
  4. provides model storage: a hostPath PersistentVolume on --dir/models (owned by UID 10001,
     the runtime image's user) pre-bound to the samples' claim default/modelyard-models;
  5. applies manifests/samples, waits for TrainingJob iris Succeeded and ModelDeployment iris
     Ready, and sends a real Open Inference Protocol V2 request to the Service ClusterIP
     (kube-proxy on the node).
On failure it prints `kubectl describe`, pod logs and the operator log tail, and exits 1.

`down` stops only what `up` started, newest first: the operator (by PID + start time), the
node (hack/node/down.sh, which also restores the host's sysctls and iptables and leaves a node
that serves another live cluster alone), the control plane; then removes --dir/models.

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
from modelyard_devcluster import (  # noqa: E402
    ClusterError,
    LocalCluster,
    alive,
    free_port,
    proc_start_time,
    terminate,
)
from modelyard_devcluster.install import rbac_documents  # noqa: E402

RUNTIME_IMAGE = os.environ.get("MODELYARD_RUNTIME_IMAGE", "modelyard-runtime:dev")
NODE_NAME = os.environ.get("NODE_NAME", "modelyard-node-0")
NODE_DIR = Path(os.environ.get("NODE_DIR", "/var/lib/modelyard-node"))
CTR = ["ctr", "-a", "/run/modelyard-containerd/containerd.sock", "-n", "k8s.io"]
DOCKER = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else "docker"
KWOK_TAINT = "modelyard.io/fake-node=true:NoSchedule"
OPERATOR_NS, OPERATOR_SA = "modelyard-system", "modelyard-operator"
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
        self.operator_json = self.root / "operator.json"
        self.operator_log = self.root / "operator.log"
        self.operator_kubeconfig = self.root / "operator.kubeconfig"
        self.build_log = self.root / "build-runtime-image.log"
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


def build_prerequisites(t: Timings, state: State) -> Path:
    with t.phase("binaries (hack/kube-binaries.sh, kubelet + kube-proxy)"):
        env = {**os.environ, "KUBE_EXTRA_CMDS": "kubelet kube-proxy"}
        bin_dir = Path(
            run(["hack/kube-binaries.sh"], capture=False, env=env).strip().splitlines()[-1]
        )
    with t.phase("node prerequisites (hack/node/prereqs.sh)"):
        run(["hack/node/prereqs.sh"], capture=False)
    with t.phase("docker engine (hack/dockerd.sh)"):
        run(["hack/dockerd.sh"], capture=False)
    with t.phase(f"runtime image build (hack/build-runtime-image.sh -> {RUNTIME_IMAGE})"):
        state.root.mkdir(parents=True, exist_ok=True)
        with state.build_log.open("w") as log:
            result = subprocess.run(
                ["hack/build-runtime-image.sh"],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "IMAGE": RUNTIME_IMAGE},
            )
        lines = state.build_log.read_text(errors="replace").splitlines()
        if result.returncode != 0:
            raise UpError("image build failed; " + f"{state.build_log}:\n" + "\n".join(lines[-30:]))
        say(
            "    "
            + next((ln for ln in reversed(lines) if "built" in ln), lines[-1] if lines else "")
        )
    return bin_dir


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


def load_image(t: Timings) -> None:
    ref = RUNTIME_IMAGE if "/" in RUNTIME_IMAGE else f"docker.io/library/{RUNTIME_IMAGE}"
    image_id = run([DOCKER, "image", "inspect", "-f", "{{.Id}}", RUNTIME_IMAGE]).strip()
    if _config_digest(ref) == image_id:
        say(f"==> {RUNTIME_IMAGE} ({image_id[7:19]}) already in the node's containerd")
        return
    with t.phase(f"image load into the node (docker save {RUNTIME_IMAGE} | ctr import)"):
        run(["hack/node/load-image.sh", RUNTIME_IMAGE])
        if _config_digest(ref) != image_id:
            raise UpError(f"{ref} is not {image_id} in the node's containerd after the import")


def install(kube: Kube) -> None:
    say("==> CRDs and RBAC from manifests/ (not the operator Deployment: see below)")
    kube("apply", "--server-side", "-k", str(REPO / "crds"))
    # `kubectl wait` fails outright on a CRD with no status.conditions yet: read the condition.
    established = 'jsonpath={.status.conditions[?(@.type=="Established")].status}'
    for crd in ("trainingjobs.modelyard.io", "modeldeployments.modelyard.io"):
        wait(
            f"CRD {crd} Established",
            lambda crd=crd: kube("get", "crd", crd, "-o", established).strip() == "True",
            timeout=60,
        )
    rendered = kube("kustomize", str(REPO / "manifests"))
    docs = [json.dumps(d) for d in rbac_documents(rendered)]
    kube("apply", "--server-side", "-f", "-", input="\n---\n".join(docs))


def operator_running(state: State, server: str) -> dict[str, Any] | None:
    try:
        info = json.loads(state.operator_json.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not alive(info["pid"], info["start_time"]):
        return None
    if info.get("server") != server:  # left over from a cluster that is gone: not ours to keep
        stop_operator(state)
        return None
    return dict(info)


def _live(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def start_operator(t: Timings, cluster: LocalCluster, kube: Kube, state: State) -> None:
    if info := operator_running(state, cluster.server):
        say(f"==> operator already running (pid {info['pid']}, log {state.operator_log})")
        return
    with t.phase("operator (local process, ServiceAccount token)"):
        cluster.service_account_kubeconfig(
            OPERATOR_NS, OPERATOR_SA, state.operator_kubeconfig, duration="720h"
        )
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        env.update(
            KUBECONFIG=str(state.operator_kubeconfig),
            MODELYARD_RUNTIME_IMAGE=RUNTIME_IMAGE,
            MODELYARD_IMAGE_PULL_POLICY="IfNotPresent",  # nothing can be pulled: loaded images
            MODELYARD_DEFAULT_STORAGE_URI=f"pvc://{MODELS_CLAIM}",
            MODELYARD_LOG_FORMAT="text",
            MODELYARD_LIVENESS_ENDPOINT=f"http://127.0.0.1:{port}/healthz",
            MODELYARD_METRICS_HOST="127.0.0.1",
            MODELYARD_METRICS_PORT=str(free_port()),
            PYTHONUNBUFFERED="1",
        )
        with state.operator_log.open("ab") as log:
            log.write(f"\n===== operator start {time.strftime('%F %T')} =====\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", "modelyard"],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `up`
            )
        start_time = proc_start_time(proc.pid)
        info = {"pid": proc.pid, "start_time": start_time, "port": port, "server": cluster.server}
        state.operator_json.write_text(json.dumps(info, indent=2) + "\n")
        deadline = time.monotonic() + 60
        while not _live(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise UpError(
                    f"the operator did not come up; {state.operator_log}:\n" + log_tail(state)
                )
            time.sleep(0.3)
        say(f"    operator pid {proc.pid}, log {state.operator_log}")


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


def log_tail(state: State, lines: int = 40) -> str:
    try:
        return "\n".join(state.operator_log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no operator log)"


def diagnose(kube: Kube | None, state: State) -> None:
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
    say(f"\n--- operator log tail ({state.operator_log})")
    say(log_tail(state))


def up(state: State, bin_dir_arg: Path | None) -> int:
    if os.geteuid() != 0:
        say("error: `make up` needs root (containerd, network namespaces, iptables)")
        return 1
    t = Timings()
    t_all = time.monotonic()
    kube: Kube | None = None
    applied: Kube | None = None
    try:
        bin_dir = build_prerequisites(t, state)
        cluster = LocalCluster(bin_dir_arg or bin_dir, state.root, detached=True)
        started = start_cluster(t, cluster)
        kube = Kube(cluster)
        start_node(t, cluster, kube, state)
        load_image(t)
        install(kube)
        start_operator(t, cluster, kube, state)
        provide_storage(kube, state)
        applied = kube  # from here on, the samples' objects are worth showing on a failure
        apply_and_wait(t, kube)
        url, body, answer = infer(kube)
    except (UpError, ClusterError, subprocess.TimeoutExpired) as e:
        say(f"\nerror: {e}")
        diagnose(applied, state)
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
  operator:   a local process, authenticated as ServiceAccount {OPERATOR_NS}/{OPERATOR_SA}
              (not the Deployment in manifests/operator.yaml: this apiserver listens on
              127.0.0.1 only, which pods cannot reach)
              pid: {state.operator_json}
              log: {state.operator_log}
  node:       {NODE_NAME}: real containerd + kubelet + kube-proxy; logs in {NODE_DIR}/logs
              No cluster DNS: use ClusterIPs or pod IPs, not the status URL's *.svc name.
  models:     {state.models} (PV {MODELS_PV})
`make down` stops everything `make up` started (operator, node, control plane) and restores
the host's sysctls and iptables rules.""")
    return 0


# ---------------------------------------------------------------------------------------


def stop_operator(state: State) -> None:
    try:
        info = json.loads(state.operator_json.read_text())
    except (FileNotFoundError, ValueError):
        return
    if alive(info["pid"], info["start_time"]):
        terminate(info["pid"], info["start_time"], 15.0, None)
        say(f"operator (pid {info['pid']}) stopped")
    state.operator_json.unlink(missing_ok=True)


def down(state: State, bin_dir: Path | None) -> int:
    t0 = time.monotonic()
    stop_operator(state)
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
    state.operator_kubeconfig.unlink(missing_ok=True)
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
    info = operator_running(state, cluster.server) if states else None
    say(f"operator: {'running, pid ' + str(info['pid']) if info else 'stopped'}")
    return 0 if states and all(states.values()) and mine and info else 1


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
