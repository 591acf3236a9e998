#!/usr/bin/env bash
# Build the runtime image (trainer + server) with a base that exists on this machine and the
# host's extra CA certificates.
#
#   IMAGE=$(hack/build-runtime-image.sh | tail -1)      # -> modelyard-runtime:dev
#
# Base and CAs as hack/image-build.sh chooses them (python:3.11-slim, else the local bookworm
# base; the host's locally added CAs into serving_image/ca-certificates/ of a temporary copy of
# the build context).
#
# Progress goes to stderr; the image tag is the last line on stdout.
# Env: IMAGE (tag), BASE_IMAGE, EXTRA_CA_DIR, DOCKER_BUILD_ARGS (extra flags).
set -euo pipefail

# shellcheck source=hack/image-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/image-build.sh"
IMAGE=${IMAGE:-modelyard-runtime:dev}

choose_base
new_context runtime
# The repository-root layout the Dockerfile copies from, and only what
# serving_image/Dockerfile.dockerignore lets through (also its .dockerignore here, for
# builders without per-Dockerfile ignore files).
cp "$REPO/serving_image/Dockerfile.dockerignore" "$CONTEXT/.dockerignore"
copy_sources pyproject.toml README.md serving_image/Dockerfile serving_image/requirements.txt \
  serving_image/modelyard_runtime
stage_cas serving_image/ca-certificates
build_image serving_image/Dockerfile
