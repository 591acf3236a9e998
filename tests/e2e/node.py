"""A real node (containerd + kubelet) joined to a LocalCluster, via hack/node/up.sh.

The cluster tier (tests/cluster) fakes the node with kwok; this tier runs pods for real:
containers start, exit codes and termination messages are real, pod IPs answer HTTP.
It needs root, Debian's containerd and CNI plugins, and kubelet + kube-proxy built by
``KUBE_EXTRA_CMDS="kubelet kube-proxy" hack/kube-binaries.sh``. ``unavailable()`` says what
is missing. Pods reach each other and Service ClusterIPs; the host reaches pod IPs and
ClusterIPs. With a LocalCluster(pod_network=True) pods also reach the API server (the
``kubernetes`` Service) and resolve cluster.local names (CoreDNS).

Usage::

    with LocalCluster(bin_dir, work) as cluster, RealNode(cluster) as node:
        node.load_docker_image("modelyard-runtime:dev")
        cluster.kubectl("apply", "-f", ...)   # pods land on node.name

Only the Python standard library is used.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from modelyard_devcluster import LocalCluster, proc_start_time, terminate

REPO = Path(__file__).resolve().parents[2]
UP = REPO / "hack" / "node" / "up.sh"
DOWN = REPO / "hack" / "node" / "down.sh"
SOCKET = "/run/modelyard-containerd/containerd.sock"
NODE_NAME = os.environ.get("NODE_NAME", "modelyard-node-0")
POD_SUBNET = os.environ.get("POD_SUBNET", "10.244.1.0/24")
# Built by hack/node/images.sh and imported by up.sh; never pulled.
BUSYBOX_IMAGE = "modelyard.local/busybox:1.35"
PAUSE_IMAGE = "modelyard.local/pause:1"


class NodeError(RuntimeError):
    """The real node could not be started or used."""


def unavailable(bin_dir: Path) -> str | None:
    """Why a real node cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "a real node needs root (containerd, network namespaces, cgroups)"
    for tool in ("containerd", "ctr", "runc", "openssl", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install containerd runc iptables openssl)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "CNI plugins missing (apt-get install containernetworking-plugins)"
    for cmd in ("kubelet", "kube-proxy"):
        if not os.access(bin_dir / cmd, os.X_OK):
            build = "KUBE_EXTRA_CMDS='kubelet kube-proxy' hack/kube-binaries.sh"
            return f"no {cmd} in {bin_dir} ({build})"
    return None


class RealNode:
    """Start/stop the node of hack/node/up.sh against ``cluster``; one per machine."""

    def __init__(self, cluster: LocalCluster, *, node_dir: Path | None = None) -> None:
        self.cluster = cluster
        self.name = NODE_NAME
        self.pod_subnet = ipaddress.ip_network(POD_SUBNET)
        self.node_dir = node_dir or Path(os.environ.get("NODE_DIR", "/var/lib/modelyard-node"))
        self._env = {
            **os.environ,
            "NODE_DIR": str(self.node_dir),
            "NODE_NAME": self.name,
            "POD_SUBNET": POD_SUBNET,
            "MODELYARD_KUBE_BIN": str(cluster.bin_dir),
        }

    def start(self) -> RealNode:
        result = subprocess.run(
            [str(UP), str(self.cluster.work_dir)],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            self.stop()  # down.sh leaves a node that serves another live cluster alone
            raise NodeError(
                f"hack/node/up.sh failed ({result.returncode}):\n{result.stderr[-4000:]}\n"
                f"{self.log_tail('kubelet')}"
            )
        return self

    def stop(self) -> None:
        subprocess.run(
            [str(DOWN), str(self.cluster.work_dir)],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def stop_kubelet(self, timeout: float = 20.0) -> None:
        """Stop only the kubelet (SIGTERM, then SIGKILL), by the pid and start time up.sh
        recorded; its containers keep running under containerd, as on a real node."""
        record = self.node_dir / "pids" / "kubelet"
        try:
            pid, start_time = (int(f) for f in record.read_text().split())
        except (FileNotFoundError, ValueError) as e:
            raise NodeError(f"no kubelet recorded in {record}") from e
        if proc_start_time(pid) == start_time:
            terminate(pid, start_time, timeout, None)
        # up.sh starts a kubelet again when its record is gone (as hack/node/lib.sh's stop_pid).
        record.unlink(missing_ok=True)

    def start_kubelet(self) -> None:
        """Start the kubelet again (up.sh: leaves running parts alone, waits for Ready)."""
        self.start()

    def log_tail(self, component: str, lines: int = 30) -> str:
        path = self.node_dir / "logs" / f"{component}.log"
        try:
            text = path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return f"({path} absent)"
        return f"--- {path} (last {lines} lines)\n" + "\n".join(text)

    def ctr(self, *args: str, input: bytes | None = None) -> str:
        result = subprocess.run(
            ["ctr", "-a", SOCKET, "-n", "k8s.io", *args],
            input=input,
            capture_output=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise NodeError(f"ctr {' '.join(args)}: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode()

    def has_image(self, ref: str) -> bool:
        return ref in self.ctr("images", "ls", "-q").split()

    def load_docker_image(self, ref: str, docker: str = "/usr/bin/docker") -> str:
        """``docker save ref | ctr images import -``; returns the name pods should use.

        Docker names ``x:tag`` ``docker.io/library/x:tag`` in the archive, which is what the
        kubelet asks for when a pod says ``image: x:tag`` -- so the short name works.
        """
        save = subprocess.Popen([docker, "save", ref], stdout=subprocess.PIPE)
        assert save.stdout is not None
        try:
            imp = subprocess.run(
                ["ctr", "-a", SOCKET, "-n", "k8s.io", "images", "import", "-"],
                stdin=save.stdout,
                capture_output=True,
                timeout=600,
            )
        finally:
            save.stdout.close()
            save.wait(timeout=600)
        if save.returncode != 0 or imp.returncode != 0:
            raise NodeError(f"loading {ref}: {imp.stderr.decode(errors='replace')}")
        return ref

    def __enter__(self) -> RealNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
