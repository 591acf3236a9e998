#!/usr/bin/env bash
# Load images built by Docker into the real node's containerd (there is no registry).
#
#   hack/node/load-image.sh modelyard-runtime:dev [more images...]
#
# `docker save | ctr import`; Docker's short name `x:tag` becomes docker.io/library/x:tag,
# which is what the kubelet asks for when a pod says `image: x:tag`. Use imagePullPolicy
# IfNotPresent or Never: nothing can be pulled. ~45 s for the 616 MB runtime image.
set -euo pipefail
SOCK=/run/modelyard-containerd/containerd.sock
DOCKER=${DOCKER:-/usr/bin/docker}
[[ -x "${DOCKER}" ]] || DOCKER=docker
[[ $# -gt 0 ]] || { echo "usage: $0 IMAGE..." >&2; exit 2; }
[[ -S "${SOCK}" ]] || { echo "load-image: no containerd at ${SOCK} (hack/node/up.sh first)" >&2; exit 1; }
for image in "$@"; do
  "${DOCKER}" image inspect "${image}" >/dev/null
  "${DOCKER}" save "${image}" | ctr -a "${SOCK}" -n k8s.io images import - >&2
done
