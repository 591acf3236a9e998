#!/usr/bin/env bash
# Build a local Python 3.11 base image once, for machines that cannot pull python:3.11-slim.
#
#   BASE=$(hack/base-image.sh | tail -1)     # -> modelyard-base:bookworm-py311
#
# Debian bookworm's python3 is 3.11, the version the runtime image targets. The root
# filesystem comes from debootstrap (Debian's apt mirror is reachable where registries are
# not) and is imported with `docker import`. The tarball is kept in
# ~/.cache/modelyard/base-image/<tag>.tar so a wiped Docker data dir re-imports it in seconds
# instead of re-running debootstrap (~1 min).
#
# Progress goes to stderr; the image name is the last line on stdout.
# Env: BASE_IMAGE_TAG, DEBIAN_SUITE, DEBIAN_MIRROR, MODELYARD_CACHE.
set -euo pipefail

SUITE=${DEBIAN_SUITE:-bookworm}
TAG=${BASE_IMAGE_TAG:-modelyard-base:${SUITE}-py311}
MIRROR=${DEBIAN_MIRROR:-}
CACHE=${MODELYARD_CACHE:-$HOME/.cache/modelyard}/base-image
TARBALL="$CACHE/${TAG//[:\/]/_}.tar"
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker

log() { echo "base-image.sh: $*" >&2; }

if "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
  log "$TAG exists"
  echo "$TAG"
  exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq debootstrap >&2
  fi
  if [ -z "$MIRROR" ]; then
    # Use the mirror the host's apt already reaches (it may be a proxy/mirror, not deb.debian.org).
    MIRROR=$(grep -rhoE '^(deb|URIs:)[^#]*https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -oE 'https?://[^ ]+' | grep -i debian | grep -v security | head -1 || true)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
  fi
  ROOTFS=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$ROOTFS"' EXIT
  log "debootstrap $SUITE from $MIRROR (about a minute)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >&2
  # Keep the image lean: apt lists and caches are not needed at run time.
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb
  tar -C "$ROOTFS" -c . >"$TARBALL.tmp"
  mv "$TARBALL.tmp" "$TARBALL"
fi

log "importing $TARBALL as $TAG"
"$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$TARBALL" "$TAG" >&2
echo "$TAG"
