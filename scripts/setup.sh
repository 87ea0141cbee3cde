#!/usr/bin/env bash
# Prepare this machine for building and testing racetrack-build, from nothing: Debian packages, the
# Python venv with the CLI and the wrapper, a running Docker engine, a Python root image (built with
# debootstrap when no registry can provide one) and the python3 base image.
#
# Idempotent: every step reuses what an earlier run left and does the work only when it is missing.
# Sourced by .ci/run and scripts/quickstart.sh (so its phases join their timing table); can be run
# on its own: `bash scripts/setup.sh`. Needs root for apt and dockerd.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    trap rt_report_timings EXIT
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1

rt_phase "system packages"
# docker.io: the engine; debootstrap: the root image; chromium + driver: browser tests of the
# wrapper's pages; wrk + hyperfine: benchmarks; docker-registry: the push tests; jq: the CI
# recipes' scripts (tests/integration/test_ci_recipes.py runs them). One apt-get update, only for
# what is missing.
rt_apt_install docker.io debootstrap chromium chromium-driver wrk hyperfine docker-registry git-lfs \
    openssh-server openssl iproute2 jq

rt_phase "python venv"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# pip's output goes to a log shown only on failure: the machine's pip configuration makes it chatty.
pip_log="$(mktemp "${TMPDIR:-/tmp}/racetrack-ci-pip.XXXXXX")"
if ! .venv/bin/python -m pip install --quiet -e '.[test]' -e 'base-images/python3[test]' >"$pip_log" 2>&1; then
    tail -n 60 "$pip_log" >&2
    rt_die "pip install into .venv failed (output above); fix the dependency named there and rerun"
fi
rm -f "$pip_log"

rt_phase "docker engine"
bash scripts/ensure-docker.sh
# Runs on the same machine pile up untagged images (replaced base images, test builds); drop the
# ones older than an hour, which no build in progress can still be about to tag.
docker image prune --force --filter until=1h >/dev/null

rt_phase "root image"
# The root images base images are built on: RACETRACK_PYTHON_IMAGE is a template, `{version}`
# standing for the job's Python version. Real users have a registry and the product default
# (python:{version}-slim); machines without one build equivalents locally with debootstrap. The
# versions made are RT_ROOT_IMAGE_VERSIONS (default 3.11, the one the base image below is built on;
# .ci/run asks for 3.9 and 3.13 too).
if [ -z "${RACETRACK_PYTHON_IMAGE:-}" ]; then
    if docker image inspect python:3.11-slim >/dev/null 2>&1 ||
        timeout 120 docker pull --quiet python:3.11-slim >/dev/null 2>&1; then
        RACETRACK_PYTHON_IMAGE='python:{version}-slim'
    else
        rt_log "python:3.11-slim cannot be pulled here; making $RT_CI_PYTHON_IMAGE_DEFAULT instead"
        RACETRACK_PYTHON_IMAGE="$RT_CI_PYTHON_IMAGE_DEFAULT"
    fi
fi
export RACETRACK_PYTHON_IMAGE
read -r -a _rt_root_versions <<<"${RT_ROOT_IMAGE_VERSIONS:-3.11}"
bash scripts/ensure-root-image.sh "${_rt_root_versions[@]}"

rt_phase "base image"
# The product's own command: a cached rebuild takes seconds, and the labels it sets let every later
# build (and the tests) tell whether the image is current. Host networking lets pip in the build
# reach the index; the host's CA bundle lets it through a TLS-intercepting network.
ca_args=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    ca_args=(--ca-cert /etc/ssl/certs/ca-certificates.crt)
fi
.venv/bin/racetrack-build base --network host "${ca_args[@]}"
