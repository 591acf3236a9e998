#!/usr/bin/env bash
# Build the local cluster tier's binaries from Go modules, only when missing.
#
#   BIN=$(hack/kube-binaries.sh | tail -1)
#
# Builds into ~/.cache/modelyard/kube/<KUBE_VERSION>/bin/:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl   (k8s.io/kubernetes)
#   etcd                                                            (go.etcd.io/etcd/server/v3)
#   kwok                                                            (sigs.k8s.io/kwok)
#
# Why from source: these machines reach only package registries (PyPI, Go module proxy,
# npm, apt) -- no container registry and no release downloads -- and no registry ships a
# kube-apiserver binary. Everything lives outside the checkout (CI clones fresh) and is
# keyed by version, so a warm run only checks files and exits in well under a second.
#
# Progress goes to stderr; the bin dir is the last line on stdout.
#
# Env overrides: KUBE_VERSION, ETCD_VERSION, KWOK_VERSION, MODELYARD_CACHE, GO (go binary),
# BUILD_PARALLELISM (go build -p), KUBE_EXTRA_CMDS (more k8s.io/kubernetes/cmd/* to build
# into the same bin dir, e.g. KUBE_EXTRA_CMDS="kubelet" for hack/node/up.sh's real node).
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE="${MODELYARD_CACHE:-${HOME}/.cache/modelyard}"
BIN="${CACHE}/kube/${KUBE_VERSION}/bin"
PARALLEL="${BUILD_PARALLELISM:-2}"

KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
read -r -a EXTRA_CMDS <<<"${KUBE_EXTRA_CMDS:-}"

log() { echo "kube-binaries: $*" >&2; }

# A binary counts as present only if its stamp names the version we want, so bumping
# ETCD_VERSION/KWOK_VERSION rebuilds just that binary. The kube binaries' stamp holds the
# version actually built (it may be a v1.34.x fallback, see build_kube).
stamp_ok() { # name wanted-version-prefix
  [[ -x "${BIN}/$1" && -f "${BIN}/.$1.version" ]] && [[ "$(<"${BIN}/.$1.version")" == $2* ]]
}

compute_needs() {
  need_kube=0 need_etcd=0 need_kwok=0 need_core=0 MISSING_EXTRAS=()
  local c
  for c in "${KUBE_CMDS[@]}"; do
    stamp_ok "$c" "${KUBE_VERSION%.*}." || need_kube=1 need_core=1
  done
  # Extras build only what is missing, so asking for kubelet never relinks the control plane.
  for c in "${EXTRA_CMDS[@]}"; do
    stamp_ok "$c" "${KUBE_VERSION%.*}." || { need_kube=1; MISSING_EXTRAS+=("$c"); }
  done
  stamp_ok etcd "${ETCD_VERSION}" || need_etcd=1
  stamp_ok kwok "${KWOK_VERSION}" || need_kwok=1
  ((need_kube + need_etcd + need_kwok > 0))
}

if ! compute_needs; then
  echo "${BIN}"
  exit 0
fi

# ---- slow path -------------------------------------------------------------------------
# One build at a time per cache: several sessions/CI jobs share this machine, and two builds
# would delete each other's wrapper modules. Whoever waited re-checks: the first may have
# built everything already.
mkdir -p "${BIN}" "${CACHE}/work"
exec 9>"${CACHE}/kube/.build.lock"
if ! flock -n 9; then
  log "another build holds ${CACHE}/kube/.build.lock; waiting"
  flock 9
fi
if ! compute_needs; then
  echo "${BIN}"
  exit 0
fi

GO="${GO:-}"
if [[ -z "${GO}" ]]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
  else log "no Go toolchain found (set GO=/path/to/go)"; exit 1
  fi
fi
# Keep Go's caches beside the binaries so a warm CI machine rebuilds nothing, and never let
# go.mod's toolchain line trigger a toolchain download.
export GOCACHE="${CACHE}/go-build" GOMODCACHE="${CACHE}/go-mod" GOPATH="${CACHE}/go-path"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
log "using $("${GO}" version)"

# Wrapper modules are generated fresh under the cache; they are build scaffolding only.
new_wrapper() { # dir module-name
  rm -rf "$1" && mkdir -p "$1"
  printf 'module %s\n\ngo 1.24.0\n' "$2" >"$1/go.mod"
}

# tools.go keeps `go mod tidy` from dropping the commands we want to build.
write_tools() { # dir pkg...
  local dir=$1; shift
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for p in "$@"; do printf '\t_ "%s"\n' "$p"; done
    printf ')\n'
  } >"${dir}/tools.go"
}

# Install freshly built binaries atomically with their version stamps.
install_bins() { # from-dir version name...
  local from=$1 version=$2; shift 2
  for n in "$@"; do
    mv -f "${from}/${n}" "${BIN}/${n}"
    echo "${version}" >"${BIN}/.${n}.version"
  done
}

build_kube_version() { # exact version, e.g. v1.34.4
  local v=$1 minor staging gomod dir pkgs=() ldflags="" major minor_n
  minor=${v#v1.}; minor_n=${minor%%.*}; major=1
  staging="v0.${minor}" # k8s.io/<staging> modules are tagged v0.Y.Z for kubernetes v1.Y.Z
  log "kubernetes ${v}: resolving staging modules"
  gomod=$("${GO}" mod download -json "k8s.io/kubernetes@${v}" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [[ -f "${gomod}" ]] || { log "no go.mod for k8s.io/kubernetes@${v}"; return 1; }

  dir="${CACHE}/work/kubernetes-${v}"
  new_wrapper "${dir}" modelyard.local/kube-binaries
  {
    printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "${v}"
    # Every `k8s.io/x => ./staging/src/k8s.io/x` in upstream go.mod becomes a versioned
    # replace; the list changes between minors so it is derived, never hard-coded.
    grep -E '^[[:space:]]*k8s\.io/[^[:space:]]+ => \./staging/' "${gomod}" |
      awk -v s="${staging}" '{ printf "\t%s => %s %s\n", $1, $1, s }'
    printf ')\n'
  } >>"${dir}/go.mod"
  local cmds=()
  ((need_core)) && cmds+=("${KUBE_CMDS[@]}")
  cmds+=("${MISSING_EXTRAS[@]}")
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${c}"); done
  write_tools "${dir}" "${pkgs[@]}"

  log "kubernetes ${v}: go mod tidy"
  (cd "${dir}" && "${GO}" mod tidy) >&2 || return 1

  # Stamp the version, or the binaries report v0.0.0 and kubectl warns about skew.
  local build_date; build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${p}.gitVersion=${v} -X ${p}.gitMajor=${major} -X ${p}.gitMinor=${minor_n}"
    ldflags+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=${build_date}"
  done
  log "kubernetes ${v}: go build ${cmds[*]} (slow when cold)"
  rm -rf "${dir}/out" && mkdir -p "${dir}/out"
  (cd "${dir}" && "${GO}" build -p "${PARALLEL}" -trimpath -ldflags "-s -w${ldflags}" \
    -o out/ "${pkgs[@]}") >&2 || return 1
  install_bins "${dir}/out" "${v}" "${cmds[@]}"
  rm -rf "${dir}/out"
}

build_kube() {
  build_kube_version "${KUBE_VERSION}" && return 0
  # Fall back to the newest other patch of the same minor the proxy serves.
  local minor=${KUBE_VERSION%.*} v
  for v in $("${GO}" list -m -versions k8s.io/kubernetes | tr ' ' '\n' |
    grep -E "^${minor//./\\.}\.[0-9]+$" | sort -rV); do
    [[ "${v}" == "${KUBE_VERSION}" ]] && continue
    log "kubernetes ${KUBE_VERSION} failed; trying ${v}"
    build_kube_version "${v}" && return 0
  done
  log "could not build any kubernetes ${minor}.x"
  return 1
}

build_etcd() {
  local dir="${CACHE}/work/etcd-${ETCD_VERSION}"
  log "etcd ${ETCD_VERSION}: go build"
  new_wrapper "${dir}" modelyard.local/etcd-binary
  printf '\nrequire go.etcd.io/etcd/server/v3 %s\n' "${ETCD_VERSION}" >>"${dir}/go.mod"
  write_tools "${dir}" go.etcd.io/etcd/server/v3
  (cd "${dir}" && "${GO}" mod tidy && mkdir -p out &&
    "${GO}" build -p "${PARALLEL}" -trimpath -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3) >&2
  install_bins "${dir}/out" "${ETCD_VERSION}" etcd
  rm -rf "${dir}/out"
}

build_kwok() {
  # kwok's go.mod has no replace directives, so plain `go install pkg@version` works.
  local dir="${CACHE}/work/kwok-${KWOK_VERSION}"
  log "kwok ${KWOK_VERSION}: go install"
  rm -rf "${dir}" && mkdir -p "${dir}"
  GOBIN="${dir}" GOFLAGS=-buildvcs=false "${GO}" install -p "${PARALLEL}" -trimpath \
    -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" >&2
  install_bins "${dir}" "${KWOK_VERSION}" kwok
  rm -rf "${dir}"
}

start=${SECONDS}
((need_etcd)) && build_etcd
((need_kwok)) && build_kwok
((need_kube)) && build_kube
cat >"${BIN}/../VERSIONS" <<EOF
kubernetes $(<"${BIN}/.kubectl.version")
etcd $(<"${BIN}/.etcd.version")
kwok $(<"${BIN}/.kwok.version")
go $("${GO}" env GOVERSION)
EOF
log "done in $((SECONDS - start))s"
echo "${BIN}"
