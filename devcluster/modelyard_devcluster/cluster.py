"""A real Kubernetes control plane as local processes, with kwok instead of kubelets.

Why this exists: the build/CI machines reach only package registries, so there is no kind
node image and no release download; ``hack/kube-binaries.sh`` builds etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kubectl and kwok from Go modules, and this module
runs them on 127.0.0.1 with free ports. Controllers (Deployments, ReplicaSets, Jobs, GC,
ServiceAccount tokens) and the scheduler are the real ones; kwok plays the kubelet of one
fake node and moves pods through their lifecycle via "Stages".

Kwok's stages are data, ``kwok-stages.yaml`` beside this module (copied from kwok v0.8.0
``kustomize/stage``): the fake node stays Ready, scheduled pods become Running/Ready, Running
pods owned by a Job become Succeeded -- except pods labelled ``modelyard.io/component=trainer``
(``HOLD_LABEL``), which stay Running so tests can patch their status (e.g. a terminated
container with the trainer's termination message) -- and graceful deletions finish.

Usage::

    with LocalCluster(bin_dir, work_dir) as cluster:
        cluster.kubectl("get", "nodes")

    python -m modelyard_devcluster.cluster up --dir DIR     # detached; DIR/kubeconfig
    python -m modelyard_devcluster.cluster down --dir DIR

``pod_network=True`` (root; what the e2e tier and ``make up`` use, with a real node) puts the
API server on an address the node's pods can route to (network.py) and runs CoreDNS there as a
host process, so in-cluster config, the ``kubernetes`` Service and ``*.svc.cluster.local``
names work from pods; hack/node/up.sh points the kubelet's ``clusterDNS`` at it.

Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from modelyard_devcluster.network import claim_address, release_address
from modelyard_devcluster.processes import (
    Proc,
    alive,
    die_with_parent,
    free_port,
    proc_start_time,
    terminate,
)

KUBE_VERSION = os.environ.get("KUBE_VERSION", "v1.34.4")
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)
# Start order; stop runs in reverse so nothing outlives what it depends on.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_NAME = "kwok-node-0"
# kwok manages only nodes carrying this annotation, so it never touches a real node.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
# Pods with this label are left Running by kwok even when owned by a Job.
HOLD_LABEL = ("modelyard.io/component", "trainer")
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
# Where hack/node/up.sh finds the DNS server its kubelet hands to pods (absent: none).
CLUSTER_DNS_FILE = "cluster-dns"
# What CoreDNS's kubernetes plugin reads (the upstream ClusterRole system:coredns).
COREDNS_RULES = [
    {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
     "verbs": ["list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
     "verbs": ["list", "watch"]},
]  # fmt: skip


class ClusterError(RuntimeError):
    """The local cluster could not be started, reached or stopped."""


def default_bin_dir() -> Path:
    """Where ``hack/kube-binaries.sh`` puts the binaries (``MODELYARD_KUBE_BIN`` overrides)."""
    if env := os.environ.get("MODELYARD_KUBE_BIN"):
        return Path(env)
    cache = Path(os.environ.get("MODELYARD_CACHE", Path.home() / ".cache" / "modelyard"))
    return cache / "kube" / KUBE_VERSION / "bin"


def missing_binaries(bin_dir: Path) -> list[str]:
    """Names of required binaries that are absent or not executable in ``bin_dir``."""
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


# ---------------------------------------------------------------------------------------
# Certificates and kubeconfigs.


def _openssl(*args: str, cwd: Path) -> None:
    try:
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)
    except FileNotFoundError as e:
        raise ClusterError("the openssl CLI is needed to create the cluster's certificates") from e
    except subprocess.CalledProcessError as e:
        raise ClusterError(f"openssl {args[0]} failed: {e.stderr.decode(errors='replace')}") from e


def _make_pki(pki: Path, address: str) -> None:
    """A CA, an apiserver serving cert signed by it, and the service-account key pair.

    Our own CA (rather than the apiserver's --cert-dir self-signed cert) lets clients verify
    TLS for real and gives kube-controller-manager a proper --root-ca-file, which it
    publishes to pods as the kube-root-ca.crt ConfigMap.
    """
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=pki)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-out", "ca.crt", "-days", "3650",
        "-subj", "/CN=modelyard-local-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=pki,
    )  # fmt: skip
    (pki / "apiserver.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName=IP:{address},IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local\n"
    )
    _openssl("genrsa", "-out", "apiserver.key", "2048", cwd=pki)
    _openssl(
        "req", "-new", "-key", "apiserver.key", "-out", "apiserver.csr",
        "-subj", "/CN=kube-apiserver", cwd=pki,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "apiserver.crt", "-days", "3650",
        "-extfile", "apiserver.ext", cwd=pki,
    )  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    # The apiserver's client identity towards kubelets (kubectl logs/exec/port-forward on a
    # real node, hack/node/up.sh): a kubelet authenticates it by the cluster CA and asks the
    # apiserver (SubjectAccessReview) whether it may use nodes/proxy -- system:masters may.
    (pki / "client.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth\n"
    )
    _openssl("genrsa", "-out", "kubelet-client.key", "2048", cwd=pki)
    _openssl(
        "req", "-new", "-key", "kubelet-client.key", "-out", "kubelet-client.csr",
        "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client", cwd=pki,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "kubelet-client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "kubelet-client.crt", "-days", "3650",
        "-extfile", "client.ext", cwd=pki,
    )  # fmt: skip


def _kubeconfig(server: str, ca: Path, user: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "modelyard-local",
                "cluster": {"server": server, "certificate-authority": str(ca)},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": "modelyard-local", "context": {"cluster": "modelyard-local", "user": user}}
        ],
        "current-context": "modelyard-local",
    }


def _corefile(address: str, kubeconfig: Path, ready_port: int) -> str:
    """Cluster DNS as kubeadm's default Corefile, bound to the cluster address; health and
    ready on loopback ports of their own (the default :8080/:8181 may be taken)."""
    return f"""\
.:53 {{
    bind {address}
    errors
    health 127.0.0.1:{free_port()}
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} modelyard-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    forward . /etc/resolv.conf
    cache 30
    loop
    loadbalance
}}
"""


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bool(resp.status == 200)


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


# ---------------------------------------------------------------------------------------


@dataclass
class _Layout:
    """Files under the work dir."""

    root: Path
    pki: Path = field(init=False)
    logs: Path = field(init=False)
    etcd_data: Path = field(init=False)
    kwok_home: Path = field(init=False)
    kubeconfig: Path = field(init=False)
    pids: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pki = self.root / "pki"
        self.logs = self.root / "logs"
        self.etcd_data = self.root / "etcd"
        self.kwok_home = self.root / "kwok"
        self.kubeconfig = self.root / "kubeconfig"
        self.pids = self.root / "pids.json"

    def generated(self) -> list[Path]:
        """Everything ``start`` creates; removed before a fresh start, nothing else is."""
        return [
            self.pki,
            self.logs,
            self.etcd_data,
            self.kwok_home,
            self.kubeconfig,
            self.pids,
            *self.root.glob("*.kubeconfig"),
            self.root / "tokens.csv",
            self.root / "Corefile",
            self.root / CLUSTER_DNS_FILE,
        ]


class LocalCluster:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on 127.0.0.1.

    ``detached=True`` starts the processes so they outlive this Python process (for the
    ``up`` CLI); otherwise they are tied to it and are killed if it dies.
    ``pod_network=True`` (needs ``coredns_binary``, from hack/coredns-binaries.sh) serves the
    API on the cluster's own pod-reachable address instead, plus CoreDNS (module docstring).
    """

    def __init__(
        self,
        bin_dir: Path | str,
        work_dir: Path | str,
        *,
        detached: bool = False,
        start_timeout: float = 120.0,
        stop_timeout: float = 15.0,
        pod_network: bool = False,
        coredns_binary: Path | str | None = None,
    ) -> None:
        if pod_network and coredns_binary is None:
            raise ClusterError("pod_network needs coredns_binary (hack/coredns-binaries.sh)")
        self.bin_dir = Path(bin_dir).resolve()
        self.layout = _Layout(Path(work_dir).resolve())
        self.detached = detached
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.pod_network = pod_network
        self.coredns_binary = Path(coredns_binary).resolve() if coredns_binary else None
        # Where the API server (and CoreDNS) listen: pod_network claims one in _prepare.
        self.address = "127.0.0.1"
        self.api_port = 0
        self.server = ""
        self._etcd_url = ""
        self._admin_token = ""
        self._procs: list[Proc] = []
        # Each component's command line as started: start_component reuses ports and flags.
        self._command_lines: dict[str, list[str]] = {}

    # -- public API ---------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (user ``modelyard-admin`` in group ``system:masters``)."""
        return self.layout.kubeconfig

    @property
    def work_dir(self) -> Path:
        return self.layout.root

    def start(self) -> LocalCluster:
        """Start all components; return once the cluster can run pods.

        Ready means: /readyz ok, the ``default`` ServiceAccount exists in ``default`` (pods
        are rejected by admission before that) and the fake node is Ready.
        """
        if missing := missing_binaries(self.bin_dir):
            raise ClusterError(
                f"missing binaries in {self.bin_dir}: {', '.join(missing)}"
                " (run hack/kube-binaries.sh)"
            )
        if self._procs:
            raise ClusterError("cluster already started")
        # Checked before the try: its cleanup must never stop a cluster we did not start.
        if any(self.running().values()):
            raise ClusterError(f"a cluster from {self.work_dir} is still running; stop it first")
        try:
            deadline = time.monotonic() + self.start_timeout
            self._prepare()
            self._start_components(deadline)
            self._wait("default ServiceAccount", self._default_sa_exists, deadline)
            self._create_node()
            self._wait(f"node {NODE_NAME} Ready", self._node_ready, deadline)
            if self.pod_network:
                self._start_coredns(deadline)
        except BaseException:
            self._stop(self._procs)  # only what this call started
            raise
        return self

    def stop(self) -> None:
        """Stop only the processes this object (or its pids.json) started, newest first."""
        self._stop(self._procs or self._load_pids())

    def _stop(self, procs: list[Proc]) -> None:
        for proc in reversed(procs):
            terminate(proc.pid, proc.start_time, self.stop_timeout, proc.popen)
        self._procs = []
        self.layout.pids.unlink(missing_ok=True)
        if self.address != "127.0.0.1":
            release_address(self.address)
            self.address = "127.0.0.1"

    def running(self) -> dict[str, bool]:
        """Component name -> whether its process is alive."""
        procs = self._procs or self._load_pids()
        return {p.name: alive(p.pid, p.start_time) for p in procs}

    # -- one component down and up again (the fault tests, tests/e2e/faults) ---------------

    @property
    def etcd_url(self) -> str:
        """etcd's client URL (plain HTTP on 127.0.0.1; its JSON gateway serves ``/v3/kv/*``)."""
        return self._etcd_url

    def _component(self, name: str) -> Proc:
        for proc in self._procs:
            if proc.name == name:
                return proc
        raise ClusterError(f"no component {name!r} started by this LocalCluster")

    def stop_component(self, name: str) -> None:
        """Stop one component by its PID (SIGTERM, SIGKILL after ``stop_timeout``); the others
        keep running. ``start_component`` brings it back."""
        proc = self._component(name)
        terminate(proc.pid, proc.start_time, self.stop_timeout, proc.popen)

    def start_component(self, name: str, timeout: float = 60.0) -> None:
        """Start a stopped component again with the same command line (same ports, same etcd
        data), so its clients reconnect to it; return once it serves (etcd ``/health``,
        apiserver ``/readyz``; the others at once)."""
        old = self._component(name)
        if alive(old.pid, old.start_time):
            raise ClusterError(f"{name} is still running")
        self._procs[self._procs.index(old)] = self._spawn(name, self._command_lines[name])
        self._save_pids()
        gate = {"etcd": self._etcd_healthy, "kube-apiserver": self._readyz}.get(name)
        if gate is not None:
            self._wait(f"{name} serving again", gate, time.monotonic() + timeout)

    def restart_component(
        self, name: str, *, while_down: Callable[[], None] | None = None, timeout: float = 60.0
    ) -> float:
        """``stop_component``, then ``while_down()`` if given, then ``start_component``; returns
        how many seconds the component was down."""
        self.stop_component(name)
        down = time.monotonic()
        if while_down is not None:
            while_down()
        self.start_component(name, timeout=timeout)
        return time.monotonic() - down

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run the cluster's own kubectl (same version as the apiserver) and return stdout."""
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise ClusterError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}"
            )
        return result.stdout

    def service_account_kubeconfig(
        self, namespace: str, name: str, path: Path, duration: str = "24h"
    ) -> Path:
        """Write a kubeconfig whose user is ServiceAccount ``namespace/name`` (a TokenRequest
        token), so a process runs with exactly that account's RBAC. Retries while the account
        is still being created."""
        deadline = time.monotonic() + 30
        while True:
            try:
                token = self.kubectl(
                    "create", "token", name, "-n", namespace, f"--duration={duration}"
                ).strip()
                break
            except ClusterError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        admin = json.loads(self.kubeconfig.read_text())
        user = f"system:serviceaccount:{namespace}:{name}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": admin["clusters"],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": name, "context": {"cluster": admin["clusters"][0]["name"], "user": user}}
            ],
            "current-context": name,
        }
        _write_private(path, json.dumps(config, indent=2))
        return path

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON request to the apiserver as admin."""
        if not self._admin_token:
            self._load_credentials()
        req = urllib.request.Request(
            self.server + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {self._admin_token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=10) as resp:
                result: dict[str, Any] = json.loads(resp.read() or b"{}")
                return result
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            raise ClusterError(f"{method} {path}: HTTP {e.code}: {detail}") from e

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- setup --------------------------------------------------------------------------

    def _prepare(self) -> None:
        lay = self.layout
        for path in lay.generated():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        lay.root.mkdir(parents=True, exist_ok=True)
        lay.logs.mkdir()
        lay.kwok_home.mkdir()
        if self.pod_network:
            self.address = claim_address()
        _make_pki(lay.pki, self.address)

        self.api_port = free_port()
        self.server = f"https://{self.address}:{self.api_port}"
        ca = lay.pki / "ca.crt"
        # Static tokens: one identity per component, so RBAC's bootstrap roles for
        # system:kube-controller-manager and system:kube-scheduler apply as in a real cluster.
        users = {
            "admin": ("modelyard-admin", "system:masters"),
            "kube-controller-manager": ("system:kube-controller-manager", ""),
            "kube-scheduler": ("system:kube-scheduler", ""),
            # kwok acts for many nodes and patches any pod's status: give it full rights.
            "kwok": ("kwok-controller", "system:masters"),
        }
        if self.pod_network:
            users["coredns"] = ("system:coredns", "")
        lines = []
        for name, (user, group) in users.items():
            token = secrets.token_hex(24)
            if name == "admin":
                self._admin_token = token
                path = lay.kubeconfig
            else:
                path = lay.root / f"{name}.kubeconfig"
            lines.append(f'{token},{user},{user},"{group}"' if group else f"{token},{user},{user}")
            _write_private(path, json.dumps(_kubeconfig(self.server, ca, user, token), indent=2))
        _write_private(lay.root / "tokens.csv", "\n".join(lines) + "\n")

    def _commands(self) -> dict[str, list[str]]:
        lay, b = self.layout, self.bin_dir
        pki = lay.pki
        etcd_client, etcd_peer = free_port(), free_port()
        etcd_url = self._etcd_url = f"http://127.0.0.1:{etcd_client}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        return {
            "etcd": [
                str(b / "etcd"),
                "--name=modelyard",
                f"--data-dir={lay.etcd_data}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=modelyard={peer_url}",
                # A throwaway test store: skipping fsync makes it much faster on slow disks.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            "kube-apiserver": [
                str(b / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={self.api_port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--token-auth-file={lay.root / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                # On in real clusters: setting blockOwnerDeletion on an owner reference needs
                # `update` on the owner's finalizers subresource (the shipped RBAC grants it).
                "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # Reaching a real node's kubelet (kubectl logs/exec): by its InternalIP (node
                # names do not resolve here), with a client cert the kubelet trusts.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                f"--kubelet-client-certificate={pki / 'kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'kubelet-client.key'}",
                "--allow-privileged=true",
                "--profiling=false",
            ],
            "kube-controller-manager": [
                str(b / "kube-controller-manager"),
                f"--kubeconfig={lay.root / 'kube-controller-manager.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                # Each controller uses its own ServiceAccount, as in kubeadm clusters, so
                # RBAC problems in our manifests show up here too.
                "--use-service-account-credentials=true",
                # Default set: deployment, replicaset, job, garbagecollector, serviceaccount,
                # serviceaccount-token, namespace, nodelifecycle, ... (kubelet-less is fine).
                "--controllers=*",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allocate-node-cidrs=false",
                "--profiling=false",
            ],
            "kube-scheduler": [
                str(b / "kube-scheduler"),
                f"--kubeconfig={lay.root / 'kube-scheduler.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            "kwok": [
                str(b / "kwok"),
                f"--kubeconfig={lay.root / 'kwok.kubeconfig'}",
                f"--config={KWOK_STAGES}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector={}={}".format(*KWOK_NODE_ANNOTATION),
                "--node-ip=127.0.0.1",
                f"--node-lease-duration-seconds={40}",
                f"--cidr={POD_CIDR}",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        }

    def _start_components(self, deadline: float) -> None:
        commands = self._command_lines = self._commands()
        # Each gate holds back the next components until their dependency serves: starting
        # all at once works too, but fills the logs with connection-refused and RBAC-forbidden
        # noise (bootstrap roles do not exist yet) that hides real problems.
        gates: dict[str, tuple[str, Callable[[], bool]]] = {
            "etcd": ("etcd /health", self._etcd_healthy),
            "kube-apiserver": ("apiserver /readyz", self._readyz),
        }
        for name in COMPONENTS:
            self._procs.append(self._spawn(name, commands[name]))
            self._save_pids()
            if name in gates:
                self._wait(*gates[name], deadline=deadline)

    def _spawn(self, name: str, command: list[str]) -> Proc:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        # kwok otherwise also loads ~/.kwok/kwok.yaml, which could add or change stages.
        env["KWOK_WORKDIR"] = str(self.layout.kwok_home)
        with (self.layout.logs / f"{name}.log").open("ab") as log:
            popen = subprocess.Popen(
                command,
                cwd=self.layout.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal must not kill the cluster halfway
                # through teardown, and `up` must survive its parent shell.
                start_new_session=True,
                preexec_fn=None if self.detached else die_with_parent,
            )
        start_time = proc_start_time(popen.pid)
        if start_time is None:
            popen.wait()
            raise ClusterError(f"{name} exited at once; see {self.layout.logs / name}.log")
        return Proc(name, popen.pid, start_time, popen)

    def _start_coredns(self, deadline: float) -> None:
        """CoreDNS as a host process on the cluster address, reading Services and
        EndpointSlices as ``system:coredns`` (RBAC as upstream's); forwards other names to
        this machine's resolvers."""
        assert self.coredns_binary is not None
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "system:coredns"}, "rules": COREDNS_RULES}  # fmt: skip
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "system:coredns"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": "system:coredns"}],
        }  # fmt: skip
        self.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
        self.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)
        ready_port = free_port()
        (self.layout.root / "Corefile").write_text(
            _corefile(self.address, self.layout.root / "coredns.kubeconfig", ready_port)
        )
        command = [str(self.coredns_binary), "-conf", str(self.layout.root / "Corefile")]
        self._command_lines["coredns"] = command
        self._procs.append(self._spawn("coredns", command))
        self._save_pids()
        ready = f"http://127.0.0.1:{ready_port}/ready"
        self._wait("CoreDNS /ready", lambda: _http_ok(ready), deadline)
        (self.layout.root / CLUSTER_DNS_FILE).write_text(self.address + "\n")

    def _create_node(self) -> None:
        key, value = KWOK_NODE_ANNOTATION
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            # No taint: this is the cluster's only node, every test pod should land here.
            "spec": {},
        }
        self.api("POST", "/api/v1/nodes", node)

    # -- readiness ----------------------------------------------------------------------

    def _wait(self, what: str, check: Callable[[], bool], deadline: float) -> None:
        last_error = ""
        while time.monotonic() < deadline:
            self._check_processes()
            try:
                if check():
                    return
            except (ClusterError, OSError, ValueError) as e:
                last_error = str(e)
            time.sleep(0.5)
        raise ClusterError(f"timed out waiting for {what}; last error: {last_error or 'none'}")

    def _check_processes(self) -> None:
        for proc in self._procs:
            if proc.popen is not None and proc.popen.poll() is not None:
                log = self.layout.logs / f"{proc.name}.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise ClusterError(
                    f"{proc.name} exited with {proc.popen.returncode}; {log}:\n{tail}"
                )

    def _etcd_healthy(self) -> bool:
        with urllib.request.urlopen(self._etcd_url + "/health", timeout=5) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")

    def _readyz(self) -> bool:
        req = urllib.request.Request(
            self.server + "/readyz", headers={"Authorization": f"Bearer {self._admin_token}"}
        )
        with urllib.request.urlopen(req, context=self._ssl_context(), timeout=5) as resp:
            return bool(resp.status == 200 and resp.read().strip() == b"ok")

    def _default_sa_exists(self) -> bool:
        try:
            self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")
        except ClusterError:
            return False
        return True

    def _node_ready(self) -> bool:
        node = self.api("GET", f"/api/v1/nodes/{NODE_NAME}")
        conditions = node.get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.layout.pki / "ca.crt"))

    # -- state for the detached CLI -------------------------------------------------------

    def _save_pids(self) -> None:
        data = {
            "server": self.server,
            "address": self.address,
            "processes": [
                {"name": p.name, "pid": p.pid, "start_time": p.start_time} for p in self._procs
            ],
        }
        tmp = self.layout.pids.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.layout.pids)

    def _load_pids(self) -> list[Proc]:
        try:
            data = json.loads(self.layout.pids.read_text())
        except FileNotFoundError:
            return []
        self.server = data.get("server", self.server)
        self.address = data.get("address", self.address)
        return [Proc(p["name"], int(p["pid"]), int(p["start_time"])) for p in data["processes"]]

    def _load_credentials(self) -> None:
        config = json.loads(self.kubeconfig.read_text())
        self.server = config["clusters"][0]["cluster"]["server"]
        self._admin_token = config["users"][0]["user"]["token"]


# ---------------------------------------------------------------------------------------
# CLI: backs `make up` / `make down`.


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelyard_devcluster.cluster", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("up", "start a detached cluster; prints the kubeconfig path"),
        ("down", "stop the cluster started by `up` in --dir"),
        ("status", "show which components of the cluster in --dir are running"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--dir", required=True, type=Path, help="work dir (kubeconfig, logs, pids.json)"
        )
        p.add_argument("--bin", type=Path, default=None, help="binaries dir (default: %(default)s)")
        p.add_argument(
            "--coredns",
            type=Path,
            default=None,
            help="CoreDNS binary: serve the API on a pod-reachable address, with cluster DNS",
        )
    args = parser.parse_args(argv)

    cluster = LocalCluster(
        args.bin or default_bin_dir(),
        args.dir,
        detached=True,
        pod_network=args.coredns is not None,
        coredns_binary=args.coredns,
    )
    if args.command == "up":
        try:
            cluster.start()
        except ClusterError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"cluster up at {cluster.server}; logs in {cluster.layout.logs}", file=sys.stderr)
        print(f"export KUBECONFIG={cluster.kubeconfig}", file=sys.stderr)
        print(cluster.kubeconfig)
    elif args.command == "down":
        cluster.stop()
        print(f"cluster in {cluster.work_dir} stopped", file=sys.stderr)
    else:
        states = cluster.running()
        if not states:
            print(f"no cluster started from {cluster.work_dir}")
        for name, running in states.items():
            print(f"{name}: {'running' if running else 'stopped'}")
        return 0 if states and all(states.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
