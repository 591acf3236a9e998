# shellcheck shell=bash disable=SC2034
# Helpers for up.sh / down.sh: daemons tracked by pid AND kernel start time, so a reused
# PID is never mistaken for ours. Expects NODE_DIR to be set. Sourced, not run.

# Host sysctls the kubelet rewrites on start (pkg/kubelet/cm setupKernelTunables).
KUBELET_SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"

_start_time() { # pid -> field 22 of /proc/PID/stat (empty if gone or zombie)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- ${stat}
  [[ "$1" == Z ]] && return 0
  echo "${20}"
}

replace_if_changed() { # path ; move PATH.new over PATH only if the content differs
  # kube-proxy exits ("content of the proxy server's configuration file was updated") when its
  # config is rewritten, and containerd reloads CNI on any write: keep unchanged files as is.
  # Sets CHANGED=1 when the file was replaced, so callers can restart what reads it.
  if cmp -s "$1.new" "$1"; then
    rm -f "$1.new"; CHANGED=0
  else
    mv -f "$1.new" "$1"; CHANGED=1
  fi
}

pid_of() { # name -> pid recorded in NODE_DIR/pids/NAME (may be stale)
  local f="${NODE_DIR}/pids/$1"
  [[ -f "$f" ]] && cut -d' ' -f1 "$f"
}

pid_alive() { # name -> 0 if the recorded process still runs
  local f="${NODE_DIR}/pids/$1" pid st
  [[ -f "$f" ]] || return 1
  read -r pid st <"$f"
  [[ -n "${pid}" && "$(_start_time "${pid}")" == "${st}" ]]
}

start_daemon() { # name cmd... ; detached (own session), output to NODE_DIR/logs/NAME.log
  local name=$1 pid st; shift
  setsid "$@" >>"${NODE_DIR}/logs/${name}.log" 2>&1 </dev/null &
  pid=$!
  sleep 0.2
  st=$(_start_time "${pid}")
  if [[ -z "${st}" ]]; then
    tail -20 "${NODE_DIR}/logs/${name}.log" >&2
    die "${name} exited at once; see ${NODE_DIR}/logs/${name}.log"
  fi
  echo "${pid} ${st}" >"${NODE_DIR}/pids/${name}"
  log "started ${name} (pid ${pid})"
}

stop_pid() { # name timeout_s ; SIGTERM, wait, SIGKILL -- only the recorded process
  local name=$1 timeout=$2 f="${NODE_DIR}/pids/$1" pid st i
  [[ -f "$f" ]] || return 0
  read -r pid st <"$f"
  if [[ -n "${pid}" && "$(_start_time "${pid}")" == "${st}" ]]; then
    kill -TERM "${pid}" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      [[ "$(_start_time "${pid}")" == "${st}" ]] || break
      sleep 0.1
    done
    if [[ "$(_start_time "${pid}")" == "${st}" ]]; then
      kill -KILL "${pid}" 2>/dev/null || true
      sleep 0.5
    fi
    log "stopped ${name} (pid ${pid})"
  fi
  rm -f "$f"
}

wait_for() { # timeout_s what cmd... ; poll cmd every 0.5 s
  local timeout=$1 what=$2 deadline; shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for ${what}"
    sleep 0.5
  done
}
