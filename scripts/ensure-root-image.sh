#!/usr/bin/env bash
# Make the Python root image that the python3 base image is built FROM, when it is not there yet.
#
# Real users pull `python:3.11-slim` from their registry. Machines without a reachable registry (CI,
# developer machines of this project) build an equivalent locally: a Debian bookworm root file
# system made by debootstrap from the machine's own Debian mirror, imported as a Docker image whose
# environment matches the official image where the base image relies on it (PATH, LANG, CMD,
# `python3`, `python3 -m venv`).
#
# Idempotent: an existing image is reused; the root file system tarball is cached under
# $RACETRACK_CI_CACHE/rootfs (default /var/cache/racetrack-ci/rootfs) so a rerun on the same
# machine skips debootstrap even when the image was removed.
#
# Environment:
#   RACETRACK_PYTHON_IMAGE  image name to make (default racetrack-ci/python:3.11-bookworm)
#   RACETRACK_CI_CACHE      cache directory (default /var/cache/racetrack-ci)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

image="${RACETRACK_PYTHON_IMAGE:-$RT_CI_PYTHON_IMAGE_DEFAULT}"
suite="bookworm"
packages="python3,python3-venv,python3-pip,ca-certificates"
# The cache key names the recipe, so a change of suite or package list makes a new tarball
# instead of silently reusing an old one.
recipe_sha="$(printf '%s\n' "$suite" "$packages" "minbase" | sha256sum | cut -c1-12)"
tarball="$RT_CACHE_DIR/rootfs/python3-$suite-$recipe_sha.tar"

check_venv() {
    # The base image's builder stage runs exactly this; fail here with a clear message rather than
    # in the middle of a Docker build.
    docker run --rm --network none "$image" python3 -m venv /tmp/v >/dev/null ||
        rt_die "image $image cannot create a venv (python3 -m venv); remove it (docker rmi $image) and rerun $0"
}

if docker image inspect "$image" >/dev/null 2>&1; then
    rt_log "root image $image already present"
    check_venv
    exit 0
fi

# Read the mirror from the machine's own apt configuration: deb822 first, then the one-line format.
debian_mirror() {
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)"
    fi
    [ -n "$uri" ] || rt_die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; add one, or pull/tag an image as $image"
    printf '%s\n' "$uri"
}

if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null 2>&1 || rt_apt_install debootstrap
    mirror="$(debian_mirror)"
    mkdir -p "$(dirname "$tarball")"
    work="$(mktemp -d "$RT_CACHE_DIR/rootfs/debootstrap.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    rt_log "debootstrap $suite ($packages) from $mirror into $work (about 100 s)"
    if ! debootstrap --variant=minbase --include="$packages" "$suite" "$work/root" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        rt_die "debootstrap failed (log above); check that the mirror $mirror answers, then rerun $0"
    fi
    # Match what the official slim images leave out: package lists, downloaded .debs, the host's
    # resolv.conf and hostname (Docker mounts its own at run time).
    rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin \
        "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/log/"*.log \
        "$work/root/etc/resolv.conf" "$work/root/etc/hostname"
    # Write then rename, so an interrupted run never leaves a truncated tarball that looks cached.
    tar --numeric-owner -C "$work/root" -cf "$work/rootfs.tar" .
    mv "$work/rootfs.tar" "$tarball"
    rm -rf "$work"
    trap - EXIT
    rt_log "cached root file system: $tarball ($(du -h "$tarball" | cut -f1))"
else
    rt_log "reusing cached root file system $tarball"
fi

rt_log "importing $tarball as $image"
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --change "LABEL org.opencontainers.image.description=\"Debian $suite minbase with python3, python3-venv, python3-pip (debootstrap, for offline CI)\"" \
    --message "racetrack-ci root image: debootstrap $suite minbase + $packages" \
    "$tarball" "$image" >/dev/null
check_venv
rt_log "root image $image ready ($(docker run --rm --network none "$image" python3 --version))"
