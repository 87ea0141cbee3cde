#!/usr/bin/env bash
# Run a test suite of this checkout on another Python, inside a container of its root image.
#
#   scripts/test-on-python.sh VERSION [SUITE...]     e.g. test-on-python.sh 3.13 wrapper cli
#
# SUITE (default: wrapper):
#   wrapper  the wrapper's tests (base-images/python3/tests, -m "not browser": no browser in the
#            container), with base-images/python3[test] installed; the wrapper supports 3.9+
#   cli      the CLI's unit tests (tests/unit); the CLI needs 3.11+. Runs in
#            racetrack-ci/python-test:VERSION: the root image plus git, git-lfs and ssh (the tests
#            make repositories and reach remotes); .[test] and the wrapper are installed, as in .venv
#
# Each suite runs in a fresh container of racetrack-ci/python:VERSION (made with
# scripts/ensure-root-image.sh when missing; RACETRACK_PYTHON_IMAGE, when it is a template with
# {version}, names another one): a copy of the working tree (untracked files included, .venv and
# .git left out), a new venv with an up-to-date pip, the suite's package installed from the public
# package index, then pytest with this repository's configuration. The container uses the host's
# network (the index, and the servers the tests start on 127.0.0.1) and the host's CA bundle
# (PIP_CERT), for networks that intercept TLS. pip's downloads are cached in $RACETRACK_CI_CACHE/pip
# (default /var/cache/racetrack-ci/pip), so a rerun installs in seconds.
#
# Exits non-zero, naming the Python version and the suite, when an install or a test fails.
#
# Environment:
#   TEST_ON_PYTHON_TIMEOUT  seconds one suite may take, install included (default 900)
#   PYTEST_ADDOPTS          passed to pytest in the container (e.g. "-x -k metrics")
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
repo_root="$(dirname "$here")"

[ "$#" -ge 1 ] || rt_die "usage: $0 VERSION [wrapper|cli]...  (e.g. $0 3.13 wrapper cli)"
version="$1"
shift
suites=("$@")
if [ "${#suites[@]}" -eq 0 ]; then
    suites=(wrapper)
fi
for suite in "${suites[@]}"; do
    case "$suite" in
        wrapper) ;;
        cli)
            case "$version" in
                3.9 | 3.10) rt_die "the CLI requires Python >= 3.11 (pyproject.toml); its unit tests cannot run on $version" ;;
            esac
            ;;
        *) rt_die "unknown suite '$suite'; give wrapper and/or cli" ;;
    esac
done

template="racetrack-ci/python:{version}"
case "${RACETRACK_PYTHON_IMAGE:-}" in
    *"{version}"*) template="$RACETRACK_PYTHON_IMAGE" ;;
esac
root_image="$(rt_python_image "$template" "$version")"
timeout_s="${TEST_ON_PYTHON_TIMEOUT:-900}"

if ! docker image inspect "$root_image" >/dev/null 2>&1; then
    case "$root_image" in
        racetrack-ci/*) RACETRACK_PYTHON_IMAGE="$template" bash "$here/ensure-root-image.sh" "$version" ;;
        *) rt_die "the root image $root_image of Python $version is not on the engine; pull it (docker pull $root_image)" ;;
    esac
fi

# pip's cache, shared by every run on this machine (a user without /var/cache rights keeps their own).
pip_cache="$RT_CACHE_DIR/pip"
if ! mkdir -p "$pip_cache" 2>/dev/null || [ ! -w "$pip_cache" ]; then
    pip_cache="${XDG_CACHE_HOME:-$HOME/.cache}/racetrack-ci/pip"
    mkdir -p "$pip_cache"
fi

docker_args=(--rm --init --network host
    -v "$repo_root:/src:ro"
    -v "$pip_cache:/pip-cache"
    -e PIP_CACHE_DIR=/pip-cache -e PIP_DISABLE_PIP_VERSION_CHECK=1 -e PIP_NO_INPUT=1
    -e CI="${CI:-}" -e PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-}")
# The host's CA bundle: the one pip trusts on a network that intercepts TLS.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    docker_args+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/racetrack-host-ca.crt:ro
        -e PIP_CERT=/etc/racetrack-host-ca.crt)
fi
# Files written to the bind mounts (the pip cache) belong to the caller, not to root.
if [ "$(id -u)" -ne 0 ]; then
    docker_args+=(--user "$(id -u):$(id -g)" -e HOME=/tmp)
fi

# The image a suite runs in: the root image as it is, or with git for the CLI's tests. Built through
# Docker's build cache, so a rerun on an unchanged root image takes a second.
suite_image() {
    local suite="$1" image
    if [ "$suite" != cli ]; then
        printf '%s\n' "$root_image"
        return 0
    fi
    image="racetrack-ci/python-test:$version"
    rt_log "making $image ($root_image + git, git-lfs, ssh)"
    if ! docker build --quiet --network host -t "$image" - >/dev/null <<EOF; then
FROM $root_image
LABEL org.opencontainers.image.description="$root_image with git for racetrack-build's unit tests (scripts/test-on-python.sh)"
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git git-lfs openssh-client >/dev/null && rm -rf /var/lib/apt/lists/*
EOF
        rt_die "Python $version: could not build $image (apt-get install git in $root_image); see the build output above"
    fi
    printf '%s\n' "$image"
}

# What runs in the container: copy the tree, make the venv, install, test. Exit 97 means the install
# failed (its log is printed), anything else is pytest's own exit status.
container_script='
set -euf
mkdir -p /tmp/src
tar -C /src --exclude=./.venv --exclude=./.git --exclude=__pycache__ --exclude=./.mypy_cache \
    --exclude=./.ruff_cache --exclude=./.pytest_cache --exclude=./.hypothesis -cf - . | tar -C /tmp/src -xf -
cd /tmp/src
started=$(date +%s)
if ! { python3 -m venv /tmp/venv &&
        /tmp/venv/bin/python -m pip install --quiet --upgrade pip &&
        /tmp/venv/bin/python -m pip install --quiet $INSTALL; } >/tmp/pip.log 2>&1; then
    tail -n 60 /tmp/pip.log
    exit 97
fi
echo "installed $INSTALL in $(( $(date +%s) - started ))s: $(/tmp/venv/bin/python --version), pip $(/tmp/venv/bin/python -m pip --version | cut -d" " -f2)"
# A module that cannot be imported on this Python is an error, and the other modules still run, so
# one run names every failure.
exec /tmp/venv/bin/python -m pytest --continue-on-collection-errors "$@"
'

failed=()
for suite in "${suites[@]}"; do
    case "$suite" in
        wrapper) install="-e base-images/python3[test]" pytest_args=(base-images/python3/tests -m "not browser") ;;
        # As in the host's .venv: the contract tests import the wrapper too.
        cli) install="-e .[test] -e base-images/python3[test]" pytest_args=(tests/unit) ;;
    esac
    image="$(suite_image "$suite")"
    name="racetrack-test-py$version-$suite-$$"
    started=$SECONDS
    rt_log "Python $version, $suite: pytest ${pytest_args[*]} in $image"
    set +e
    timeout --kill-after=10 "$timeout_s" docker run "${docker_args[@]}" --name "$name" -e INSTALL="$install" \
        "$image" bash -c "$container_script" bash "${pytest_args[@]}"
    rc=$?
    set -e
    # A timed-out client leaves its container running; remove it (it is gone already otherwise).
    docker rm -f "$name" >/dev/null 2>&1 || true
    secs=$((SECONDS - started))
    case "$rc" in
        0) rt_log "Python $version, $suite: passed in ${secs}s" ;;
        97) failed+=("$suite") && echo "error: Python $version, $suite: pip install $install failed in the container (log above)" >&2 ;;
        5) failed+=("$suite") && echo "error: Python $version, $suite: pytest collected no tests" >&2 ;;
        124 | 137) failed+=("$suite") && echo "error: Python $version, $suite: timed out after ${timeout_s}s (TEST_ON_PYTHON_TIMEOUT)" >&2 ;;
        *) failed+=("$suite") && echo "error: Python $version, $suite: tests failed (exit $rc, after ${secs}s; output above)" >&2 ;;
    esac
done

if [ "${#failed[@]}" -ne 0 ]; then
    rt_die "on Python $version: ${failed[*]} failed; rerun with: bash scripts/test-on-python.sh $version ${failed[*]}"
fi
