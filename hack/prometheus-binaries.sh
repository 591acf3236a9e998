#!/usr/bin/env bash
# Build Prometheus and promtool from the Prometheus Go module, only when missing.
#
#   BIN=$(hack/prometheus-binaries.sh | tail -1)
#
# Builds into ~/.cache/modelyard/prometheus/<PROMETHEUS_MODULE_VERSION>/bin/. Used by the unit
# tier (promtool check/test rules on manifests/monitoring) and the e2e tier (a real Prometheus
# scraping the real node's model servers and the operator). Why from source: see
# hack/kube-binaries.sh. The module is pinned by hack/prometheus/go.mod and go.sum, so a cold
# build downloads only the modules these two commands compile (no `go mod tidy`, which would
# fetch every platform's and every test's dependencies); remove_all_sd leaves out the cloud
# service discoveries (file and HTTP discovery stay), which nothing here uses.
#
# Progress goes to stderr; the bin dir is the last line on stdout.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
MODULE_DIR="${HERE}/prometheus"
VERSION="$(awk 'NF >= 2 && $(NF-1) == "github.com/prometheus/prometheus" { print $NF }' "${MODULE_DIR}/go.mod")"
[[ "${VERSION}" == v0.3* ]] || { echo "prometheus-binaries: no Prometheus version in go.mod" >&2; exit 1; }
CACHE="${MODELYARD_CACHE:-${HOME}/.cache/modelyard}"
BIN="${CACHE}/prometheus/${VERSION}/bin"
CMDS=(prometheus promtool)

log() { echo "prometheus-binaries: $*" >&2; }

present() {
  local c
  for c in "${CMDS[@]}"; do
    [[ -x "${BIN}/${c}" && "$(cat "${BIN}/.${c}.version" 2>/dev/null)" == "${VERSION}" ]] || return 1
  done
}

if present; then
  echo "${BIN}"
  exit 0
fi

mkdir -p "${BIN}"
exec 9>"${BIN}/../.build.lock"
if ! flock -n 9; then
  log "another build holds the lock; waiting"
  flock 9
fi
if present; then
  echo "${BIN}"
  exit 0
fi

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
export GOCACHE="${CACHE}/go-build" GOMODCACHE="${CACHE}/go-mod" GOPATH="${CACHE}/go-path"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
# v0.3XX.Y of the Go module is Prometheus 3.XX.Y: what `prometheus --version` should say.
release="${VERSION#v0.3}"
release="3.$((10#${release%%.*})).${release#*.}"
ldflags="-s -w -X github.com/prometheus/common/version.Version=${release}"
ldflags+=" -X github.com/prometheus/common/version.Branch=module"
ldflags+=" -X github.com/prometheus/common/version.Revision=${VERSION}"

start=${SECONDS}
out="$(mktemp -d)"
trap 'rm -rf "${out}"' EXIT
log "prometheus ${VERSION} (Prometheus ${release}): go build ${CMDS[*]} (slow when cold)"
pkgs=()
for c in "${CMDS[@]}"; do pkgs+=("github.com/prometheus/prometheus/cmd/${c}"); done
(cd "${MODULE_DIR}" && "${GO}" build -p "${BUILD_PARALLELISM:-2}" -trimpath -tags remove_all_sd \
  -ldflags "${ldflags}" -o "${out}/" "${pkgs[@]}") >&2
for c in "${CMDS[@]}"; do
  mv -f "${out}/${c}" "${BIN}/${c}"
  echo "${VERSION}" >"${BIN}/.${c}.version"
done
log "built in $((SECONDS - start)) s"
echo "${BIN}"
