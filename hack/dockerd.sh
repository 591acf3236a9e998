#!/usr/bin/env bash
# Ensure a Docker engine answers on /var/run/docker.sock, idempotently.
#
#   hack/dockerd.sh            # exits 0 once `docker version` talks to a daemon
#
# Why we start it ourselves: CI and fresh machines have no running engine, and nothing a
# session started survives into CI. Debian's docker.io is what works here (cgroup v1,
# overlay2); we use Debian's client /usr/bin/docker because another, newer client may be
# first on PATH and speak an API version this daemon does not.
#
# Env: DOCKERD_LOG (default ~/.cache/modelyard/dockerd.log), DOCKERD_PIDFILE,
#      DOCKERD_WAIT (seconds to wait for the socket, default 60).
set -euo pipefail

SOCK=/var/run/docker.sock
DOCKER=/usr/bin/docker
CACHE=${MODELYARD_CACHE:-$HOME/.cache/modelyard}
LOG=${DOCKERD_LOG:-$CACHE/dockerd.log}
PIDFILE=${DOCKERD_PIDFILE:-/var/run/modelyard-dockerd.pid}
WAIT=${DOCKERD_WAIT:-60}

log() { echo "dockerd.sh: $*" >&2; }

answers() { [ -S "$SOCK" ] && [ -x "$DOCKER" ] && "$DOCKER" version >/dev/null 2>&1; }

if answers; then
  log "engine already answers on $SOCK"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || [ ! -x "$DOCKER" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "dockerd is missing and we are not root: install docker.io"
    exit 1
  fi
  log "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq docker.io >&2
fi

# A daemon we started earlier may still be coming up: only start one if none runs.
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "dockerd (pid $(cat "$PIDFILE")) is running; waiting for the socket"
else
  mkdir -p "$(dirname "$LOG")"
  log "starting dockerd (log: $LOG)"
  # setsid: the daemon must outlive the shell (and test process) that started it.
  setsid dockerd --pidfile "$PIDFILE.dockerd" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
fi

for _ in $(seq "$WAIT"); do
  if answers; then
    log "engine answers on $SOCK"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within ${WAIT}s; last log lines:"
tail -n 20 "$LOG" >&2 || true
exit 1
