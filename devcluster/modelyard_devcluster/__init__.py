"""The dev cluster: a real control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler) and kwok on this machine, from binaries built by hack/kube-binaries.sh.
What `make up`, the cluster and e2e tiers and the benchmarks run; ``python -m
modelyard_devcluster.cluster up|down|status --dir DIR`` starts one by hand."""

from modelyard_devcluster.cluster import (
    NODE_NAME,
    POD_CIDR,
    SERVICE_CIDR,
    ClusterError,
    LocalCluster,
    default_bin_dir,
    missing_binaries,
)
from modelyard_devcluster.processes import alive, free_port, proc_start_time, terminate

__all__ = [
    "NODE_NAME",
    "POD_CIDR",
    "SERVICE_CIDR",
    "ClusterError",
    "LocalCluster",
    "alive",
    "default_bin_dir",
    "free_port",
    "missing_binaries",
    "proc_start_time",
    "terminate",
]
