#!/usr/bin/env bash
# Quick start: set this machine up (scripts/setup.sh), build examples/adder from this checkout,
# start it on 127.0.0.1 and call it. Run from a clone, as root on a fresh Debian machine:
#
#   bash scripts/quickstart.sh
#
# QUICKSTART_PORT picks the port on 127.0.0.1 (default 7000).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
trap rt_report_timings EXIT
# shellcheck source=scripts/setup.sh
source scripts/setup.sh

port="${QUICKSTART_PORT:-7000}"
image="example-adder:quickstart"

rt_phase "build examples/adder"
# --local: the working tree of this clone, with git.directory applied from its root exactly as a
# clone of git.remote would be; --smoke-test: start the image and call its documented example.
.venv/bin/racetrack-build examples/adder/fatman.yaml --local --tag "$image" --smoke-test

rt_phase "call examples/adder"
container="$(docker run --detach --rm --publish "127.0.0.1:$port:7000" "$image")"
trap 'docker rm --force "$container" >/dev/null 2>&1 || true; rt_report_timings' EXIT
for _ in $(seq 1 120); do
    if curl --silent --fail "http://127.0.0.1:$port/ready" >/dev/null; then
        break
    fi
    sleep 0.5
done
echo "POST http://127.0.0.1:$port/api/v1/perform {\"x\": 20, \"y\": 5}" >&2
answer="$(curl --silent --show-error --fail -X POST "http://127.0.0.1:$port/api/v1/perform" \
    -H 'Content-Type: application/json' -d '{"x": 20, "y": 5}')"
echo "-> $answer" >&2
[ "$answer" = "25.0" ] || rt_die "examples/adder answered '$answer', expected 25.0"
rt_log "examples/adder works. Swagger UI: racetrack-build run examples/adder/fatman.yaml, then http://127.0.0.1:7000/docs"
