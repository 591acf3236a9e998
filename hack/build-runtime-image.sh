#!/usr/bin/env bash
# Build the runtime image (trainer + server) with a base that exists on this machine and the
# host's extra CA certificates.
#
#   IMAGE=$(hack/build-runtime-image.sh | tail -1)      # -> modelyard-runtime:dev
#
# Base: $BASE_IMAGE if set; else python:3.11-slim when it is present or can be pulled; else
# the local Debian bookworm image from hack/base-image.sh (machines with no registry).
# CAs: locally added ones (/usr/local/share/ca-certificates/*.crt, or $EXTRA_CA_DIR) go into a
# temporary copy of the build context's serving_image/ca-certificates/, so pip in the build can verify TLS
# through an intercepting proxy; the checkout is never touched.
#
# Progress goes to stderr; the image tag is the last line on stdout.
# Env: IMAGE (tag), BASE_IMAGE, EXTRA_CA_DIR, DOCKER_BUILD_ARGS (extra flags).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
IMAGE=${IMAGE:-modelyard-runtime:dev}
OFFICIAL_BASE=python:3.11-slim
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker

log() { echo "build-runtime-image.sh: $*" >&2; }

if [ -z "${BASE_IMAGE:-}" ]; then
  if "$DOCKER" image inspect "$OFFICIAL_BASE" >/dev/null 2>&1 \
     || timeout 60 "$DOCKER" pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
    BASE_IMAGE=$OFFICIAL_BASE
  else
    log "$OFFICIAL_BASE cannot be pulled here; using a local bookworm base"
    BASE_IMAGE=$("$HERE/base-image.sh" | tail -1)
  fi
fi

CONTEXT=$(mktemp -d "${TMPDIR:-/tmp}/modelyard-runtime-context.XXXXXX")
trap 'rm -rf "$CONTEXT"' EXIT
# The repository-root layout the Dockerfile copies from, and only what
# serving_image/Dockerfile.dockerignore lets through (also its .dockerignore here, for
# builders without per-Dockerfile ignore files).
mkdir -p "$CONTEXT/serving_image/ca-certificates"
cp "$REPO/pyproject.toml" "$REPO/README.md" "$CONTEXT/"
cp "$REPO/serving_image/Dockerfile.dockerignore" "$CONTEXT/.dockerignore"
cp "$REPO/serving_image/Dockerfile" "$REPO/serving_image/requirements.txt" \
   "$CONTEXT/serving_image/"
(cd "$REPO" && tar -c --exclude=__pycache__ --exclude='*.pyc' serving_image/modelyard_runtime) \
  | tar -x -C "$CONTEXT"
cp "$REPO/serving_image/ca-certificates/"*.crt "$CONTEXT/serving_image/ca-certificates/" \
  2>/dev/null || true
count=0
for cert in "$EXTRA_CA_DIR"/*.crt; do
  [ -f "$cert" ] || continue
  cp "$cert" "$CONTEXT/serving_image/ca-certificates/"
  count=$((count + 1))
done
log "base $BASE_IMAGE; $count extra CA certificate(s) from $EXTRA_CA_DIR"

started=$(date +%s)
# shellcheck disable=SC2086  # DOCKER_BUILD_ARGS is a list of flags
DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-1} "$DOCKER" build \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -f "$CONTEXT/serving_image/Dockerfile" -t "$IMAGE" ${DOCKER_BUILD_ARGS:-} "$CONTEXT" >&2
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
log "built $IMAGE in $(( $(date +%s) - started ))s, $(( size / 1000000 )) MB"
echo "$IMAGE"
