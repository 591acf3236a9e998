#!/usr/bin/env bash
# Build CoreDNS from the CoreDNS Go module, only when missing.
#
#   COREDNS=$(hack/coredns-binaries.sh | tail -1)
#
# Builds ~/.cache/modelyard/coredns/<COREDNS_MODULE_VERSION>/coredns: the cluster DNS, run as a
# host process (the kubelet's clusterDNS points at it). Why from source: see
# hack/kube-binaries.sh. The module is pinned by hack/coredns/go.mod and go.sum, so a cold build
# downloads only the modules this one command compiles (no `go mod tidy`, which would fetch
# every platform's and every test's dependencies). hack/coredns/main.go is CoreDNS's "external
# golang source" build: it sets dnsserver.Directives and imports only these plugins (not
# core/plugin, which imports all of them and the cloud SDKs):
#
#   reload       re-reads the Corefile when it changes (no restart when the Corefile is edited)
#   bind         listen on the clusterDNS address only, not on every address: as a host process,
#                CoreDNS would otherwise take port 53 on all of the host's addresses (and fail
#                where a local resolver such as systemd-resolved holds 127.0.0.53:53)
#   ready        :8181/ready, 200 once every plugin that reports readiness (kubernetes) is ready
#   health       :8080/health, liveness of the process
#   errors       logs errors returned while serving a query
#   log          query log (one line a query), for debugging name resolution
#   loadbalance  round-robins A/AAAA records in answers (Services with several endpoints)
#   cache        caches answers, in front of kubernetes and forward
#   kubernetes   cluster.local: Services and Pods from the API server (what clusterDNS is for)
#   loop         refuses to start when forward points back at this server (a forwarding loop)
#   forward      everything outside the cluster domains to the upstream resolvers
#
# Other plugins these import register themselves too (prometheus, transfer, metadata, dnstap,
# debug: `coredns -plugins` lists them) but are not in Directives, so a Corefile cannot use
# them ("Unknown directive").
#
# Progress goes to stderr; the coredns binary's path is the last line on stdout.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
MODULE_DIR="${HERE}/coredns"
VERSION="$(awk 'NF >= 2 && $(NF-1) == "github.com/coredns/coredns" { print $NF }' "${MODULE_DIR}/go.mod")"
[[ "${VERSION}" == v1.* ]] || { echo "coredns-binaries: no CoreDNS version in go.mod" >&2; exit 1; }
CACHE="${MODELYARD_CACHE:-${HOME}/.cache/modelyard}"
DIR="${CACHE}/coredns/${VERSION}"
BINARY="${DIR}/coredns"

log() { echo "coredns-binaries: $*" >&2; }

present() {
  [[ -x "${BINARY}" && "$(cat "${DIR}/.coredns.version" 2>/dev/null)" == "${VERSION}" ]]
}

if present; then
  echo "${BINARY}"
  exit 0
fi

mkdir -p "${DIR}"
exec 9>"${DIR}/../.build.lock"
if ! flock -n 9; then
  log "another build holds the lock; waiting"
  flock 9
fi
if present; then
  echo "${BINARY}"
  exit 0
fi

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
export GOCACHE="${CACHE}/go-build" GOMODCACHE="${CACHE}/go-mod" GOPATH="${CACHE}/go-path"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
# `coredns -version` prints coremain.CoreVersion, a constant of the module ("CoreDNS-1.15.0"):
# nothing to stamp. GitCommit (the line after it) is empty unless set; it names the module
# version here, as upstream's Makefile sets it to the commit.
ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=${VERSION}"

start=${SECONDS}
out="$(mktemp -d)"
trap 'rm -rf "${out}"' EXIT
log "coredns ${VERSION}: go build (slow when cold)"
(cd "${MODULE_DIR}" && "${GO}" build -p "${BUILD_PARALLELISM:-2}" -trimpath \
  -ldflags "${ldflags}" -o "${out}/coredns" .) >&2
mv -f "${out}/coredns" "${BINARY}"
echo "${VERSION}" >"${DIR}/.coredns.version"
log "built in $((SECONDS - start)) s"
echo "${BINARY}"
