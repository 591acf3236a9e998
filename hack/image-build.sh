# shellcheck shell=bash
# Sourced by hack/build-runtime-image.sh and hack/build-operator-image.sh: what the image
# builds share, one copy of each (the base choice, the CA copy, the build and its report).
#
# Base: $BASE_IMAGE if set; else python:3.11-slim when it is present or can be pulled; else
# the local Debian bookworm image from hack/base-image.sh (machines with no registry).
# CAs: locally added ones (/usr/local/share/ca-certificates/*.crt, or $EXTRA_CA_DIR) go into a
# temporary copy of the build context, so pip in the build can verify TLS through an
# intercepting proxy; the checkout is never touched and TLS verification is never turned off.
#
# Env: IMAGE (tag), BASE_IMAGE, EXTRA_CA_DIR, DOCKER_BUILD_ARGS (extra flags), DOCKER_BUILDKIT.

IMAGE_BUILD_HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$IMAGE_BUILD_HACK/.." && pwd)
OFFICIAL_BASE=python:3.11-slim
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=docker

log() { echo "$(basename "$0"): $*" >&2; }

# Sets BASE_IMAGE (unless already set).
choose_base() {
  if [ -n "${BASE_IMAGE:-}" ]; then
    return
  fi
  if "$DOCKER" image inspect "$OFFICIAL_BASE" >/dev/null 2>&1 \
     || timeout 60 "$DOCKER" pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
    BASE_IMAGE=$OFFICIAL_BASE
  else
    log "$OFFICIAL_BASE cannot be pulled here; using a local bookworm base"
    BASE_IMAGE=$("$IMAGE_BUILD_HACK/base-image.sh" | tail -1)
  fi
}

# new_context NAME: sets CONTEXT to a fresh temporary directory, removed when the script exits.
new_context() {
  CONTEXT=$(mktemp -d "${TMPDIR:-/tmp}/modelyard-$1-context.XXXXXX")
  # shellcheck disable=SC2064  # expand now: CONTEXT is this context
  trap "rm -rf '$CONTEXT'" EXIT
}

# copy_sources PATH...: repository paths into $CONTEXT, same layout, without bytecode.
copy_sources() {
  (cd "$REPO" && tar -c --exclude=__pycache__ --exclude='*.pyc' "$@") | tar -x -C "$CONTEXT"
}

# stage_cas DIR: DIR (relative to the repository) gets, in $CONTEXT, the *.crt files it holds
# in the checkout plus those of $EXTRA_CA_DIR.
stage_cas() {
  local dest="$CONTEXT/$1" count=0 cert
  mkdir -p "$dest"
  cp "$REPO/$1/"*.crt "$dest/" 2>/dev/null || true
  for cert in "$EXTRA_CA_DIR"/*.crt; do
    [ -f "$cert" ] || continue
    cp "$cert" "$dest/"
    count=$((count + 1))
  done
  log "base $BASE_IMAGE; $count extra CA certificate(s) from $EXTRA_CA_DIR"
}

# build_image DOCKERFILE: build $CONTEXT with DOCKERFILE (relative to it) as $IMAGE; progress
# and the time/size report go to stderr, the tag to stdout (its last line).
build_image() {
  local started size
  started=$(date +%s)
  # shellcheck disable=SC2086  # DOCKER_BUILD_ARGS is a list of flags
  DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-1} "$DOCKER" build \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -f "$CONTEXT/$1" -t "$IMAGE" ${DOCKER_BUILD_ARGS:-} "$CONTEXT" >&2
  size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
  log "built $IMAGE in $(( $(date +%s) - started ))s, $(( size / 1000000 )) MB"
  echo "$IMAGE"
}
