"""An address on this machine that a real node's pods can route to: the control plane's.

Pods on the real node (hack/node/up.sh) reach the host through their bridge's gateway, so any
address local to this machine answers them -- but 127.0.0.1 is the pod's own loopback, and the
machine's outward address would expose the API server to the network. So the cluster makes its
own: a port-less Linux bridge ``mdlyd-cp0`` holding one /32 per cluster from ``ADDRESS_POOL``
(this kernel has no dummy interfaces; an empty bridge that is up works the same: its address
is local, and nothing outside this machine routes to it). The API server binds and advertises
it (so the ``kubernetes`` Service and in-cluster config work), CoreDNS answers on it, and the
kubelet's ``clusterDNS`` points at it.

One address per cluster, claimed with ``ip addr add`` (which fails when another cluster holds
it), so two clusters on one machine never share one. Needs root (CAP_NET_ADMIN).
"""

from __future__ import annotations

import ipaddress
import subprocess

BRIDGE = "mdlyd-cp0"
# Apart from the pod (10.244.0.0/16) and Service (10.96.0.0/16) ranges.
ADDRESS_POOL = ipaddress.ip_network("10.243.0.0/24")


class NetworkError(RuntimeError):
    """The control-plane address could not be created or removed."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError as e:
        raise NetworkError("the `ip` command (iproute2) is needed for the pod network") from e
    if check and result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def _bridge_addresses() -> list[str]:
    out = _ip("-o", "-4", "addr", "show", "dev", BRIDGE, check=False)
    return [line.split()[3].split("/")[0] for line in out.stdout.splitlines() if "inet" in line]


def claim_address() -> str:
    """Create the bridge if missing and add the first free pool address to it; return it."""
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        created = _ip("link", "add", BRIDGE, "type", "bridge", check=False)
        if created.returncode != 0 and "File exists" not in created.stderr:
            raise NetworkError(f"ip link add {BRIDGE} type bridge: {created.stderr.strip()}")
    _ip("link", "set", BRIDGE, "up")
    for host in ADDRESS_POOL.hosts():
        added = _ip("addr", "add", f"{host}/32", "dev", BRIDGE, check=False)
        if added.returncode == 0:
            return str(host)
        if "File exists" not in added.stderr:
            raise NetworkError(f"ip addr add {host}/32 dev {BRIDGE}: {added.stderr.strip()}")
    raise NetworkError(f"every address of {ADDRESS_POOL} on {BRIDGE} is taken")


def release_address(address: str) -> None:
    """Remove ``address`` from the bridge, and the bridge once it holds none."""
    if address in _bridge_addresses():
        _ip("addr", "del", f"{address}/32", "dev", BRIDGE, check=False)
    if _ip("link", "show", BRIDGE, check=False).returncode == 0 and not _bridge_addresses():
        _ip("link", "del", BRIDGE, check=False)
