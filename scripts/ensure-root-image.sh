#!/usr/bin/env bash
# Make the Python root images that the python3 base image is built FROM, when they are not there yet.
#
#   scripts/ensure-root-image.sh [VERSION...]     e.g. ensure-root-image.sh 3.9 3.11 3.13
#
# Real users pull `python:<version>-slim` from their registry. Machines without a reachable registry
# (CI, developer machines of this project) build an equivalent locally: a Debian root file system
# made by debootstrap from the machine's own Debian mirror, imported as a Docker image whose
# environment matches the official image where the base image relies on it (PATH, LANG, CMD,
# `python3`, `python3 -m venv`, Python's headers for source builds of C extensions).
#
# Each VERSION (default: 3.11) comes from the Debian release that ships it:
#   3.9 -> bullseye (3.9.2)    3.11 -> bookworm (3.11.2)    3.13 -> trixie (3.13.5)
# and is named racetrack-ci/python:VERSION. racetrack-ci/python:3.11 is also tagged
# racetrack-ci/python:3.11-bookworm, its name before there were several (kept for one release).
#
# Idempotent: an existing image is checked and reused (one of ours made by an older recipe is
# re-imported); each root file system tarball is cached under $RACETRACK_CI_CACHE/rootfs (default
# /var/cache/racetrack-ci/rootfs), keyed by its recipe, so a rerun skips debootstrap even when the
# image was removed.
#
# Environment:
#   RACETRACK_PYTHON_IMAGE  with `{version}`: the image names to make (default
#                           racetrack-ci/python:{version}). Without it (a fixed name, as the tests'
#                           fixtures pass `racetrack-ci/python:3.11-bookworm`): one more name for
#                           the single VERSION made; an existing image of that name is only checked.
#   RACETRACK_CI_CACHE      cache directory (default /var/cache/racetrack-ci)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

# The versions this script can make, and the Debian release that ships each.
declare -A suites=([3.9]=bullseye [3.11]=bookworm [3.13]=trixie)
known_versions="3.9 3.11 3.13"
packages="python3,python3-venv,python3-pip,python3-dev,ca-certificates"
variant="minbase"
# Bump when the recipe changes in a way the suite and package list do not show (the clean-up below,
# the import's settings): images and tarballs of another recipe are then made again.
recipe_rev="2"

versions=("$@")
if [ "${#versions[@]}" -eq 0 ]; then
    versions=(3.11)
fi
for version in "${versions[@]}"; do
    [ -n "${suites[$version]:-}" ] ||
        rt_die "cannot make a root image for Python '$version'; this script makes: $known_versions"
done

template="racetrack-ci/python:{version}"
extra_name=""
case "${RACETRACK_PYTHON_IMAGE:-}" in
    "") ;;
    *"{version}"*) template="$RACETRACK_PYTHON_IMAGE" ;;
    *)
        [ "${#versions[@]}" -eq 1 ] ||
            rt_die "RACETRACK_PYTHON_IMAGE=$RACETRACK_PYTHON_IMAGE names one image, but ${#versions[@]} versions were asked for (${versions[*]}); use a template with {version}"
        extra_name="$RACETRACK_PYTHON_IMAGE"
        ;;
esac

recipe_sha() {
    printf '%s\n' "$1" "$packages" "$variant" "$recipe_rev" | sha256sum | cut -c1-12
}

# Read the mirror from the machine's own apt configuration: deb822 first, then the one-line format.
debian_mirror() {
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)"
    fi
    [ -n "$uri" ] || rt_die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; add one, or pull/tag the image yourself"
    printf '%s\n' "$uri"
}

# What the base image's builder stage relies on, checked here so a bad image fails with a clear
# message rather than in the middle of a Docker build: the Python version asked for, a working
# `python3 -m venv`, and Python.h for source builds of C extensions.
check_image() {
    local image="$1" version="$2" out
    out="$(docker run --rm --network none "$image" sh -ec '
        python3 --version
        python3 -m venv /tmp/v
        include="$(python3 -c "import sysconfig; print(sysconfig.get_paths()[\"include\"])")"
        test -f "$include/Python.h" || { echo "no $include/Python.h (python3-dev)"; exit 1; }
    ' 2>&1)" ||
        rt_die "image $image cannot run python3 -m venv or has no Python.h: $out; remove it (docker rmi $image) and rerun $0 $version"
    case "$out" in
        "Python $version."*) ;;
        *) rt_die "$image has ${out:-no python3}, not Python $version; remove it (docker rmi $image) and rerun $0 $version" ;;
    esac
    printf '%s\n' "$out"
}

# Make the cached root file system tarball of one suite (debootstrap), unless it is there already.
# Prints its path on stdout.
ensure_tarball() {
    local suite="$1" sha tarball work mirror
    sha="$(recipe_sha "$suite")"
    tarball="$RT_CACHE_DIR/rootfs/python3-$suite-$sha.tar"
    if [ -s "$tarball" ]; then
        rt_log "reusing cached root file system $tarball"
        printf '%s\n' "$tarball"
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || rt_apt_install debootstrap
    [ -f "/usr/share/debootstrap/scripts/$suite" ] ||
        rt_die "this debootstrap cannot make $suite; update it (apt-get install debootstrap) and rerun $0"
    mirror="$(debian_mirror)"
    mkdir -p "$RT_CACHE_DIR/rootfs"
    work="$(mktemp -d "$RT_CACHE_DIR/rootfs/debootstrap-$suite.XXXXXX")"
    # shellcheck disable=SC2064  # expand $work now: it is local to this function
    trap "rm -rf '$work'" EXIT
    rt_log "debootstrap $suite ($packages) from $mirror into $work (one to two minutes)"
    if ! debootstrap --variant="$variant" --include="$packages" "$suite" "$work/root" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        rt_die "debootstrap of $suite failed (log above); check that the mirror $mirror answers, then rerun $0"
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
    # Tarballs of this suite made by an older recipe can never be used again.
    find "$RT_CACHE_DIR/rootfs" -maxdepth 1 -name "python3-$suite-*.tar" ! -name "python3-$suite-$sha.tar" \
        -delete
    rt_log "cached root file system: $tarball ($(du -h "$tarball" | cut -f1))"
    printf '%s\n' "$tarball"
}

# Whether an image of ours (racetrack-ci/...) was made by another recipe than this one: such an
# image is re-imported. Images of other names (a real python:3.11-slim) are never replaced.
stale_recipe() {
    local image="$1" suite="$2" label
    case "$image" in racetrack-ci/*) ;; *) return 1 ;; esac
    label="$(docker image inspect --format '{{ index .Config.Labels "org.racetrack.ci.root-recipe" }}' "$image" 2>/dev/null || true)"
    [ "$label" != "$suite-$(recipe_sha "$suite")" ]
}

ensure_version() {
    local version="$1" suite="${suites[$1]}" image="${template//\{version\}/$1}" tarball got names=() name
    names=("$image")
    if [ "$image" = "racetrack-ci/python:3.11" ]; then
        names+=("racetrack-ci/python:3.11-bookworm")
    fi
    if [ -n "$extra_name" ] && [ "$extra_name" != "$image" ]; then
        names+=("$extra_name")
        # A fixed name that already exists and is not ours (say a pulled python:3.11-slim) is used
        # as it is, as before there were several versions.
        if docker image inspect "$extra_name" >/dev/null 2>&1 && ! stale_recipe "$extra_name" "$suite"; then
            got="$(check_image "$extra_name" "$version")"
            rt_log "root image $extra_name already present ($got)"
            return 0
        fi
    fi
    if docker image inspect "$image" >/dev/null 2>&1 && ! stale_recipe "$image" "$suite"; then
        rt_log "root image $image already present"
    else
        tarball="$(ensure_tarball "$suite")"
        rt_log "importing $tarball as $image"
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["python3"]' \
            --change "LABEL org.opencontainers.image.description=\"Debian $suite minbase with python3, python3-venv, python3-pip, python3-dev (debootstrap, for offline CI)\"" \
            --change "LABEL org.racetrack.ci.root-recipe=\"$suite-$(recipe_sha "$suite")\"" \
            --message "racetrack-ci root image: debootstrap $suite $variant + $packages" \
            "$tarball" "$image" >/dev/null
    fi
    got="$(check_image "$image" "$version")"
    for name in "${names[@]:1}"; do
        docker tag "$image" "$name"
    done
    rt_log "root image ${names[*]} ready ($got)"
}

for version in "${versions[@]}"; do
    ensure_version "$version"
done
