#!/usr/bin/env bash
# Stop the real node started by hack/node/up.sh. Idempotent.
#
#   hack/node/down.sh [CLUSTER_DIR]
#
# With CLUSTER_DIR (and its apiserver still up) the node leaves cleanly: cordon, delete its
# pods (kubelet tears them down, CNI DEL included), delete the Node. Then, in every case:
# kubelet and kube-proxy stop (kube-proxy --cleanup removes its KUBE-* rules); leftover
# containers are killed through our containerd; containerd and its shims stop; our pod netns
# mounts, IPAM leases, bridge and CNI iptables rules are removed.
# Only things carrying our names/paths are touched (Docker's containerd, docker0 and Docker's
# iptables chains are left alone). Keeps images and NODE_DIR/images (fast next up).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NODE_DIR=${NODE_DIR:-/var/lib/modelyard-node}
NODE_NAME=${NODE_NAME:-modelyard-node-0}
CTRD_RUN=/run/modelyard-containerd
SOCK=${CTRD_RUN}/containerd.sock
log() { echo "node-down: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=hack/node/lib.sh
source "${HERE}/lib.sh"
[[ -d "${NODE_DIR}/pids" ]] || { log "nothing to stop (${NODE_DIR}/pids absent)"; exit 0; }

# ---- graceful: let kubelet remove its pods --------------------------------------------
CLUSTER_DIR=${1:-}
BIN=${MODELYARD_KUBE_BIN:-${MODELYARD_CACHE:-${HOME}/.cache/modelyard}/kube/${KUBE_VERSION:-v1.34.4}/bin}
# Named a cluster, but the node now serves another one that is alive (another session took it
# over with NODE_TAKEOVER=1): leave it alone.
if [[ -n "${CLUSTER_DIR}" && -f "${CLUSTER_DIR}/kubeconfig" && -s "${NODE_DIR}/cluster-server" ]]; then
  mine=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clusters"][0]["cluster"]["server"])' \
    "${CLUSTER_DIR}/kubeconfig")
  owner=$(<"${NODE_DIR}/cluster-server")
  if [[ "${owner}" != "${mine}" &&
    "$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "${owner}/healthz")" != 000 ]]; then
    log "the node serves another live cluster (${owner}), not ${mine}: leaving it running"
    exit 0
  fi
fi
if [[ -n "${CLUSTER_DIR}" && -f "${CLUSTER_DIR}/kubeconfig" ]] && pid_alive kubelet; then
  k=("${BIN}/kubectl" --kubeconfig "${CLUSTER_DIR}/kubeconfig" --request-timeout=5s)
  if "${k[@]}" get node "${NODE_NAME}" >/dev/null 2>&1; then
    "${k[@]}" cordon "${NODE_NAME}" >/dev/null 2>&1
    timeout 60 "${k[@]}" delete pods -A --field-selector "spec.nodeName=${NODE_NAME}" \
      --wait=true >/dev/null 2>&1 || log "pods did not all go within 60s; forcing"
    "${k[@]}" delete node "${NODE_NAME}" --wait=false >/dev/null 2>&1
  fi
fi

stop_pid kubelet 20
# kube-proxy's iptables chains (KUBE-*) go with it; only when we ran one.
if [[ -f "${NODE_DIR}/pids/kube-proxy" ]]; then
  stop_pid kube-proxy 10
  if [[ -x "${BIN}/kube-proxy" ]]; then
    "${BIN}/kube-proxy" --cleanup --config="${NODE_DIR}/kube-proxy.yaml" \
      >>"${NODE_DIR}/logs/kube-proxy.log" 2>&1 || log "kube-proxy --cleanup failed (see its log)"
  fi
fi
if [[ -s "${NODE_DIR}/sysctl.orig" ]] && ! pid_alive kubelet; then
  while IFS= read -r kv; do sysctl -q -w "${kv}" >/dev/null || log "could not restore ${kv}"; done \
    <"${NODE_DIR}/sysctl.orig"
  rm -f "${NODE_DIR}/sysctl.orig"
  log "restored host sysctls the kubelet had changed"
fi

# ---- hard: whatever containers remain ----------------------------------------------------
if pid_alive containerd; then
  c=(ctr -a "${SOCK}" -n k8s.io)
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do
    "${c[@]}" tasks kill -s SIGKILL "${id}" >/dev/null 2>&1
  done
  sleep 1
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do
    "${c[@]}" tasks delete -f "${id}" >/dev/null 2>&1
  done
  for id in $("${c[@]}" containers ls -q 2>/dev/null); do
    "${c[@]}" containers delete "${id}" >/dev/null 2>&1
  done
fi
stop_pid containerd 20

# Shims of our containerd (they name our socket on their command line) outlive it.
for p in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
  if [[ "${cmd}" == *containerd-shim*"-address ${SOCK} "* ]]; then
    kill -KILL "${p#/proc/}" 2>/dev/null && log "killed leftover shim ${p#/proc/}"
  fi
done

# Pod netns (netns_mounts_under_state_dir) and sandbox /dev/shm tmpfs mounts live under our
# state dir; after a hard stop nobody unmounted them.
if ! pid_alive containerd; then
  findmnt -rn -o TARGET | grep "^${CTRD_RUN}/" | sort -r |
    while read -r m; do umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null; done
  rm -f "${CTRD_RUN}"/state/io.containerd.grpc.v1.cri/netns/*
fi
rm -rf "${NODE_DIR}/cni/ipam"
# CRI's per-sandbox/container state files; containerd is stopped, so none is in use.
if ! pid_alive containerd; then
  rm -rf "${CTRD_RUN}"/state/io.containerd.grpc.v1.cri/{containers,sandboxes}/*
fi
ip link show mdlyd0 >/dev/null 2>&1 && ip link delete mdlyd0 && log "removed bridge mdlyd0"

# CNI bridge ipMasq rules are tagged with our network name; remove just those.
for chain in $(iptables -t nat -S POSTROUTING 2>/dev/null |
  grep -F 'name: \"modelyard\"' | grep -o -- '-j CNI-[0-9a-f]*' | cut -d' ' -f2); do
  iptables -t nat -S POSTROUTING | grep -F -- "-j ${chain}" | sed 's/^-A /-D /' |
    while read -r rule; do eval "iptables -t nat ${rule}"; done
  iptables -t nat -F "${chain}" 2>/dev/null && iptables -t nat -X "${chain}" 2>/dev/null
done

# The CNI firewall plugin's chains, once no rule for any pod is left in them.
if ! iptables -S CNI-FORWARD 2>/dev/null | grep -q -- '-A CNI-FORWARD -j CNI-ADMIN' ||
  [[ $(iptables -S CNI-FORWARD 2>/dev/null | grep -c '^-A') -le 1 ]]; then
  while iptables -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null; do :; done
  iptables -F CNI-FORWARD 2>/dev/null && iptables -X CNI-FORWARD 2>/dev/null
  iptables -F CNI-ADMIN 2>/dev/null && iptables -X CNI-ADMIN 2>/dev/null
fi

# kubelet's own iptables chains (canaries, KUBE-FIREWALL's localnet DROP, the mode hint), in
# both families -- unless some other kubelet on this machine still uses them.
if ! pgrep -x kubelet >/dev/null; then
  for ipt in iptables ip6tables; do
    command -v "${ipt}" >/dev/null || continue
    for hook in INPUT OUTPUT; do
      while "${ipt}" -t filter -D "${hook}" -j KUBE-FIREWALL 2>/dev/null; do :; done
    done
    for tc in filter:KUBE-FIREWALL mangle:KUBE-IPTABLES-HINT \
      mangle:KUBE-KUBELET-CANARY filter:KUBE-KUBELET-CANARY nat:KUBE-KUBELET-CANARY; do
      "${ipt}" -t "${tc%%:*}" -F "${tc#*:}" 2>/dev/null && "${ipt}" -t "${tc%%:*}" -X "${tc#*:}" 2>/dev/null
    done
  done
fi

# kubelet's bind mounts (pod volumes, its rshared root) under its root dir.
if [[ -d /var/lib/modelyard-kubelet ]]; then
  findmnt -rn -o TARGET | grep '^/var/lib/modelyard-kubelet' | sort -r |
    while read -r m; do umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null; done
fi
# kubelet's /var/log/containers symlinks into our pod log dir (it removes them with the pods;
# these are leftovers of pods it never got to clean up).
for l in /var/log/containers/*.log; do
  [[ -L "${l}" && "$(readlink "${l}")" == "${NODE_DIR}/pod-logs/"* ]] && rm -f "${l}"
done
rmdir /var/log/containers 2>/dev/null # kubelet creates it; gone again if nothing else uses it
rm -f "${NODE_DIR}/cluster-server"
log "node ${NODE_NAME} down"
