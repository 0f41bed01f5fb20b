#!/usr/bin/env bash
# A private Docker engine for the e2e tests: Debian's docker.io, one dockerd with
# its own data root, exec root, socket and pidfile under a state directory.
#
#   bash scripts/docker-engine.sh start  [--state-dir DIR]   # prints: export DOCKER_HOST=unix://...
#   bash scripts/docker-engine.sh status [--state-dir DIR]   # exit 0 when it answers
#   bash scripts/docker-engine.sh stop   [--state-dir DIR] [--purge]
#
# DIR defaults to .e2e/docker in the repository. `start` installs docker.io with
# apt-get when dockerd is missing (root only; idempotent), starts
#   dockerd --storage-driver vfs --bridge none --iptables=false --ip6tables=false
# (vfs: works on any file system, also inside a container; no default bridge and
# no iptables rules: the host's firewall and docker0 stay untouched, and tests
# create their own bridge networks, whose containers reach each other on layer 2)
# and waits until `docker info` answers. A running engine is reused. No systemd:
# the daemon is a plain background process, its log is DIR/dockerd.log.
# `stop` stops it (SIGTERM, then SIGKILL after 30 s; its containers stop with it),
# unmounts what is left below DIR and removes the socket, pidfile and exec root;
# the data root (images) is kept for the next start unless --purge.
# Environment: LKS_DOCKERD_ARGS extra dockerd arguments (word-split),
#              LKS_DOCKER_START_TIMEOUT seconds to wait for `docker info` (60).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INSTALL_HINT="apt-get install -y docker.io"

usage() {
  echo "usage: $0 start|stop|status [--state-dir DIR] [--purge]" >&2
  exit 2
}

[ $# -ge 1 ] || usage
action="$1"
shift
state="$repo/.e2e/docker"
purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --state-dir) [ $# -ge 2 ] || usage; state="$2"; shift 2 ;;
    --state-dir=*) state="${1#*=}"; shift ;;
    --purge) purge=1; shift ;;
    *) usage ;;
  esac
done
case "$action" in start | stop | status) ;; *) usage ;; esac

mkdir -p "$state"
state="$(cd "$state" && pwd)"
sock="$state/docker.sock"
pidfile="$state/dockerd.pid"
host="unix://$sock"

log() { echo "docker-engine: $*" >&2; }
die() { log "$*"; exit 1; }

# The client: Debian's /usr/bin/docker when present, else any docker on PATH.
docker_cli() {
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker || true; fi
}

answers() {
  local cli
  cli="$(docker_cli)"
  [ -n "$cli" ] && DOCKER_HOST="$host" timeout 10 "$cli" info >/dev/null 2>&1
}

running_pid() {
  local pid
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
  echo "$pid"
}

install_engine() {
  if command -v dockerd >/dev/null 2>&1 && command -v containerd >/dev/null 2>&1 &&
    command -v runc >/dev/null 2>&1; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "dockerd is not installed and this is not root: $INSTALL_HINT"
  command -v apt-get >/dev/null 2>&1 || die "dockerd is not installed and there is no apt-get: install Docker Engine (Debian: $INSTALL_HINT)"
  log "installing docker.io with apt-get (once)"
  local t0=$SECONDS
  # policy-rc.d 101: the package must not try to start a service (no systemd here;
  # we run our own dockerd). Only while installing, and only if there is none yet.
  local policy=/usr/sbin/policy-rc.d ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && ours=1
  fi
  local rc=0
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io >"$state/apt.log" 2>&1 ||
    { apt-get update -q >>"$state/apt.log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io >>"$state/apt.log" 2>&1; }; } || rc=$?
  [ "$ours" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install docker.io failed (see $state/apt.log); by hand: $INSTALL_HINT"
  log "docker.io installed in $((SECONDS - t0)) s"
}

# Unmount everything mounted below $state (container rootfs, netns files), deepest first.
unmount_below() {
  local mnt
  awk -v d="$state/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || :
  done
}

start() {
  if running_pid >/dev/null && answers; then
    log "already running (pid $(running_pid))"
    echo "export DOCKER_HOST=$host"
    return 0
  fi
  install_engine
  if pid="$(running_pid)"; then
    log "a dockerd (pid $pid) from $pidfile does not answer: stopping it first"
    stop_engine
  fi
  rm -f "$sock" "$pidfile"
  mkdir -p "$state/data" "$state/exec"
  # Our own (empty) daemon.json: never the host's /etc/docker/daemon.json.
  [ -f "$state/daemon.json" ] || echo '{}' >"$state/daemon.json"
  # shellcheck disable=SC2086  # LKS_DOCKERD_ARGS is word-split on purpose
  setsid dockerd \
    --storage-driver vfs \
    --data-root "$state/data" \
    --exec-root "$state/exec" \
    --pidfile "$pidfile" \
    --host "$host" \
    --bridge none \
    --iptables=false \
    --ip6tables=false \
    --config-file "$state/daemon.json" \
    ${LKS_DOCKERD_ARGS:-} \
    </dev/null >"$state/dockerd.log" 2>&1 &
  local child=$! deadline=$((SECONDS + ${LKS_DOCKER_START_TIMEOUT:-60}))
  until answers; do
    if ! kill -0 "$child" 2>/dev/null; then
      tail -n 20 "$state/dockerd.log" >&2 || :
      die "dockerd exited while starting; see $state/dockerd.log"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill "$child" 2>/dev/null || :
      die "dockerd did not answer on $sock within ${LKS_DOCKER_START_TIMEOUT:-60} s; see $state/dockerd.log"
    fi
    sleep 0.2
  done
  log "dockerd running (pid $child, data root $state/data)"
  echo "export DOCKER_HOST=$host"
}

stop_engine() {
  local pid
  if pid="$(running_pid)"; then
    kill -TERM "$pid" 2>/dev/null || :
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "dockerd (pid $pid) did not stop in 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || :
    fi
    log "dockerd (pid $pid) stopped"
  else
    log "no dockerd running for $state"
  fi
  unmount_below
  rm -rf "$state/exec" "$sock" "$pidfile"
  if [ "$purge" = 1 ]; then
    rm -rf "$state/data"
    log "data root removed"
  fi
}

case "$action" in
  start) start ;;
  stop) stop_engine ;;
  status)
    if pid="$(running_pid)" && answers; then
      echo "running (pid $pid): export DOCKER_HOST=$host"
    else
      echo "not running ($state)"
      exit 1
    fi
    ;;
esac
