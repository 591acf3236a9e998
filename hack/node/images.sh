#!/usr/bin/env bash
# Build the node's two tiny local images as OCI archives, by hand (no registry, no docker):
#
#   modelyard.local/pause:1         a static C `pause` (pause.c) -- containerd's sandbox_image
#   modelyard.local/busybox:1.35    Debian's busybox-static, for e2e test pods (sh, httpd, nc)
#
#   hack/node/images.sh OUT_DIR     -> OUT_DIR/pause.tar OUT_DIR/busybox.tar (kept if present)
#
# Import with: ctr -a SOCK -n k8s.io images import OUT_DIR/pause.tar
# Needs gcc with a static libc (Debian: libc6-dev) and apt-get download (busybox-static).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: images.sh OUT_DIR}
PAUSE_REF=${PAUSE_IMAGE:-modelyard.local/pause:1}
BUSYBOX_REF=${BUSYBOX_IMAGE:-modelyard.local/busybox:1.35}
mkdir -p "${OUT}"
log() { echo "images: $*" >&2; }

sha() { sha256sum "$1" | cut -d' ' -f1; }

# oci_archive REF ROOTFS_DIR OUT_TAR CONFIG_JSON_FRAGMENT
# One uncompressed layer (digest == diff_id); reproducible tar (sorted, fixed mtime/owner).
oci_archive() {
  local ref=$1 rootfs=$2 out=$3 cfg=$4 work layer ldig ldsize cdig csize mdig msize
  work=$(mktemp -d)
  mkdir -p "${work}/blobs/sha256"
  layer="${work}/layer.tar"
  tar -C "${rootfs}" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -cf "${layer}" .
  ldig=$(sha "${layer}"); ldsize=$(stat -c %s "${layer}")
  mv "${layer}" "${work}/blobs/sha256/${ldig}"
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "${cfg}" "${ldig}" >"${work}/config"
  cdig=$(sha "${work}/config"); csize=$(stat -c %s "${work}/config")
  mv "${work}/config" "${work}/blobs/sha256/${cdig}"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "${cdig}" "${csize}" "${ldig}" "${ldsize}" >"${work}/manifest"
  mdig=$(sha "${work}/manifest"); msize=$(stat -c %s "${work}/manifest")
  mv "${work}/manifest" "${work}/blobs/sha256/${mdig}"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "${mdig}" "${msize}" "${ref}" "${ref##*:}" >"${work}/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"${work}/oci-layout"
  tar -C "${work}" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -cf "${out}.tmp" oci-layout index.json blobs
  mv "${out}.tmp" "${out}"
  rm -rf "${work}"
  log "${ref} -> ${out} (manifest sha256:${mdig})"
}

if [[ ! -s "${OUT}/pause.tar" ]]; then
  root=$(mktemp -d)
  gcc -static -Os -s -o "${root}/pause" "${HERE}/pause.c"
  oci_archive "${PAUSE_REF}" "${root}" "${OUT}/pause.tar" '{"Entrypoint":["/pause"],"User":"65535:65535"}'
  rm -rf "${root}"
fi

if [[ ! -s "${OUT}/busybox.tar" ]]; then
  dl=$(mktemp -d); root=$(mktemp -d)
  (cd "${dl}" && apt-get download busybox-static >&2)
  dpkg-deb -x "${dl}"/busybox-static_*.deb "${dl}/x"
  mkdir -p "${root}/bin" "${root}/tmp" "${root}/etc" "${root}/www"
  chmod 1777 "${root}/tmp"
  cp "${dl}/x/bin/busybox" "${root}/bin/busybox"
  for a in $("${root}/bin/busybox" --list); do
    [[ "${a}" == busybox ]] || ln -s busybox "${root}/bin/${a}"
  done
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"${root}/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"${root}/etc/group"
  oci_archive "${BUSYBOX_REF}" "${root}" "${OUT}/busybox.tar" \
    '{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/"}'
  rm -rf "${dl}" "${root}"
fi
echo "${OUT}"
