#!/usr/bin/env bash
# Build the python3 base image (racetrack/python3:latest) from base-images/python3, unless an image
# built from the very same content already exists.
#
# The image is labelled org.racetrack.context-sha: a hash of the build context (the files Docker
# would send, see base-images/python3/.dockerignore), the Dockerfile and the root image's id. When
# the wrapper, the Dockerfile or the root image changes, the hash changes and the image is rebuilt.
#
# The build runs with host networking (pip inside the build reaches a package index, or a local one
# on 127.0.0.1) and, when a CA bundle is set, with it as ca-bundle.pem in a temporary copy of the
# context: the builder stage trusts it, the final image never contains it.
#
# Usage: scripts/build-base-image.sh [--force]
# Environment:
#   RACETRACK_PYTHON_IMAGE  root image (default racetrack-ci/python:3.11-bookworm; see
#                           scripts/ensure-root-image.sh)
#   RACETRACK_BASE_IMAGE    image to build (default racetrack/python3:latest)
#   RACETRACK_CA_BUNDLE     CA bundle for pip in the build (default: the host's
#                           /etc/ssl/certs/ca-certificates.crt when present; empty to use none)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

force=0
case "${1:-}" in
    --force) force=1 ;;
    "") ;;
    *) rt_die "unknown argument '$1'; usage: $0 [--force]" ;;
esac

repo_root="$(cd "$here/.." && pwd)"
src="$repo_root/base-images/python3"
python_image="${RACETRACK_PYTHON_IMAGE:-$RT_CI_PYTHON_IMAGE_DEFAULT}"
image="${RACETRACK_BASE_IMAGE:-racetrack/python3:latest}"
default_ca=""
[ -f /etc/ssl/certs/ca-certificates.crt ] && default_ca=/etc/ssl/certs/ca-certificates.crt
ca_bundle="${RACETRACK_CA_BUNDLE-$default_ca}"

[ -f "$src/Dockerfile" ] || rt_die "no Dockerfile in $src; run this script from a racetrack-build checkout"
[ -f "$src/pyproject.toml" ] || rt_die "no wrapper package in $src (pyproject.toml missing)"
if [ -n "$ca_bundle" ] && [ ! -f "$ca_bundle" ]; then
    rt_die "RACETRACK_CA_BUNDLE=$ca_bundle does not exist; point it at a PEM file or set it empty"
fi

root_id="$(docker image inspect --format '{{.Id}}' "$python_image" 2>/dev/null)" ||
    rt_die "root image $python_image is missing; run scripts/ensure-root-image.sh or pull it (docker pull $python_image)"

# A clean copy of the context: the same excludes as .dockerignore, so the hash covers exactly what
# Docker would send and the CA bundle can be added without touching the checkout.
ctx="$(mktemp -d "${TMPDIR:-/tmp}/racetrack-base-ctx.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
tar -C "$src" \
    --exclude=./tests --exclude=./.venv --exclude=./build --exclude=./dist \
    --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' \
    --exclude=./.pytest_cache --exclude=./.ruff_cache --exclude=./.mypy_cache \
    --exclude=./ca-bundle.pem \
    -cf - . | tar -C "$ctx" -xf -
context_sha="$( (rt_tree_sha "$ctx"; echo "$root_id") | sha256sum | cut -c1-32)"

if [ "$force" -eq 0 ]; then
    existing="$(docker image inspect --format '{{index .Config.Labels "org.racetrack.context-sha"}}' "$image" 2>/dev/null || true)"
    if [ "$existing" = "$context_sha" ]; then
        rt_log "base image $image is up to date (context $context_sha)"
        exit 0
    fi
    if [ -n "$existing" ]; then
        rt_log "base image $image was built from other content ($existing); rebuilding"
    fi
fi

if [ -n "$ca_bundle" ]; then
    cp "$ca_bundle" "$ctx/ca-bundle.pem"
fi
rt_log "building $image FROM $python_image (context $context_sha${ca_bundle:+, CA $ca_bundle})"
# --force-rm: the legacy builder otherwise keeps the container of a failed step forever.
docker build --quiet --network host --force-rm \
    --build-arg "PYTHON_IMAGE=$python_image" \
    --label "org.racetrack.context-sha=$context_sha" \
    --tag "$image" \
    "$ctx" >/dev/null ||
    rt_die "building $image failed (output above). If pip reported CERTIFICATE_VERIFY_FAILED, set RACETRACK_CA_BUNDLE to the CA bundle your network needs; otherwise fix the wrapper or Dockerfile in $src. Then rerun $0"
rt_log "base image $image ready ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
