#!/usr/bin/env bash
# What a real local node needs from Debian, installed only when missing: containerd + runc
# (the CRI runtime; Debian's docker.io usually brought them), the CNI plugins, a static libc
# for the pause image, and iptables/conntrack for kube-proxy.
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
[[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || need+=(libc6-dev)
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
if ((${#need[@]})); then
  echo "prereqs.sh: installing ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
