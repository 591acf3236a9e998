#!/usr/bin/env bash
# Build the operator image with a base that exists on this machine and the host's extra CA
# certificates.
#
#   IMAGE=$(hack/build-operator-image.sh | tail -1)     # -> modelyard-operator:dev
#
# Base and CAs as hack/image-build.sh chooses them (python:3.11-slim, else the local bookworm
# base; the host's locally added CAs into operator/ca-certificates/ of a temporary copy of the
# build context).
#
# Progress goes to stderr; the image tag is the last line on stdout.
# Env: IMAGE (tag), BASE_IMAGE, EXTRA_CA_DIR, DOCKER_BUILD_ARGS (extra flags).
set -euo pipefail

# shellcheck source=hack/image-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/image-build.sh"
IMAGE=${IMAGE:-modelyard-operator:dev}

choose_base
new_context operator
# The repository-root layout the Dockerfile copies from, and only what
# operator/Dockerfile.dockerignore lets through (also its .dockerignore here).
cp "$REPO/operator/Dockerfile.dockerignore" "$CONTEXT/.dockerignore"
copy_sources pyproject.toml README.md operator/Dockerfile operator/requirements.txt \
  operator/modelyard serving_image/modelyard_runtime
stage_cas operator/ca-certificates
build_image operator/Dockerfile
