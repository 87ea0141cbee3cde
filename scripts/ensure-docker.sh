#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, installing and starting one when needed.
#
# Idempotent: an engine that already answers is left alone; a stale pid file from an engine that
# died with an earlier session is cleaned before starting a new one. The engine is started detached
# (setsid + nohup) so it outlives this script and serves the rest of a CI run.
#
# Environment:
#   DOCKERD_LOG            where the engine logs (default /var/log/dockerd.log)
#   DOCKERD_START_TIMEOUT  seconds to wait for the engine to answer (default 60)
#
# Debian's engine is 20.10 (API 1.41) while the docker CLI on PATH may be 28.x: both the CLI and
# docker-py negotiate the API version down, so nothing needs pinning. A caller that must pin one
# can still export DOCKER_API_VERSION.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

log_file="${DOCKERD_LOG:-/var/log/dockerd.log}"
timeout_s="${DOCKERD_START_TIMEOUT:-60}"

engine_answers() {
    docker info >/dev/null 2>&1
}

# True when PID names a live process. A zombie counts as gone: a daemon killed with its session is
# often left unreaped when the machine's init does not reap orphans, and kill -0 still succeeds.
pid_alive() {
    local pid="$1" state
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [ -n "$state" ] && [ "$state" != "Z" ]
}

# Remove a pid file whose process is gone; dockerd and its managed containerd both refuse to start
# while one is present.
clean_stale_pid() {
    local pid_file="$1" pid
    [ -f "$pid_file" ] || return 0
    pid="$(tr -dc '0-9' <"$pid_file")"
    if pid_alive "$pid"; then
        return 0
    fi
    rt_log "removing stale pid file $pid_file (process ${pid:-?} is gone)"
    rm -f "$pid_file"
}

if ! command -v dockerd >/dev/null 2>&1; then
    rt_apt_install docker.io
fi
command -v docker >/dev/null 2>&1 || rt_die "no docker CLI on PATH after installing docker.io"

if engine_answers; then
    rt_log "docker engine already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || rt_die "no Docker engine answers and starting one needs root; run: sudo $0"

# A dockerd that is alive but not answering yet (for instance started by a parallel caller) gets
# the same bounded wait instead of a second daemon fighting over the same pid file.
running_pid=""
if [ -f /var/run/docker.pid ]; then
    running_pid="$(tr -dc '0-9' </var/run/docker.pid)"
    if ! pid_alive "$running_pid"; then
        running_pid=""
    fi
fi

if [ -z "$running_pid" ]; then
    clean_stale_pid /var/run/docker.pid
    clean_stale_pid /var/run/docker/containerd/containerd.pid
    clean_stale_pid /run/containerd/containerd.pid
    mkdir -p "$(dirname "$log_file")"
    rt_log "starting dockerd (log: $log_file)"
    # setsid detaches from this shell's session and process group, so neither the end of this
    # script nor a signal to CI's process group stops the engine mid-run.
    setsid nohup dockerd >>"$log_file" 2>&1 </dev/null &
    disown || true
fi

deadline=$((SECONDS + timeout_s))
until engine_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "--- last lines of $log_file ---" >&2
        tail -n 40 "$log_file" >&2 || true
        rt_die "the Docker engine did not answer within ${timeout_s}s; read $log_file, fix the cause, and rerun $0"
    fi
    sleep 1
done
rt_log "docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
