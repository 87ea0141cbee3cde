# Shared helpers for the shell scripts in scripts/ and .ci/run. Source it, do not run it.
#
# Everything here is idempotent and safe to call on a machine that already has what is asked for:
# CI runs on a machine that an earlier run (or a developer session) may have left half-prepared.

# Print a timestamped progress line on stderr, so stdout stays usable for values a script returns.
rt_log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

# Print an error on stderr and exit non-zero. The message should name the fix.
rt_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# The Python root images used for CI and local test builds when the caller does not set one: a
# template, `{version}` standing for the job's Python version (3.9, 3.11, 3.13). Real users keep the
# product default (python:{version}-slim, pulled from their registry); CI machines cannot pull, so
# they build these images locally with scripts/ensure-root-image.sh VERSION...
RT_CI_PYTHON_IMAGE_DEFAULT="racetrack-ci/python:{version}"

# The root image of one Python version: `rt_python_image TEMPLATE VERSION` puts VERSION in place of
# `{version}`; a name without `{version}` is returned as it is.
rt_python_image() {
    printf '%s\n' "${1//\{version\}/$2}"
}

# Where machine-wide caches live: kept across CI runs on the same machine, outside any clone.
RT_CACHE_DIR="${RACETRACK_CI_CACHE:-/var/cache/racetrack-ci}"

# Install Debian packages that are not installed yet, with a single `apt-get update` per process.
# Waits for the dpkg lock (another apt run may hold it) instead of failing at once.
_RT_APT_UPDATED=0
rt_apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        rt_die "missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})"
    fi
    rt_log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$_RT_APT_UPDATED" -eq 0 ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        _RT_APT_UPDATED=1
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
}

# A hash of every file below a directory, names and contents, independent of timestamps and of
# the order `find` walks in. Used to label images with exactly what they were built from.
rt_tree_sha() {
    local dir="$1"
    (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) |
        sha256sum | cut -d' ' -f1
}

# Phases with timings: `rt_phase NAME` starts one (ending the previous); `rt_report_timings` prints
# seconds per phase. Scripts install it as an EXIT trap so a slow or broken step is easy to spot,
# also when a phase fails.
_rt_start=$SECONDS
_rt_phase_names=()
_rt_phase_secs=()
_rt_current_phase=""
_rt_phase_start=0

rt_phase() {
    _rt_end_phase
    _rt_current_phase="$1"
    _rt_phase_start=$SECONDS
    echo "=== $_rt_current_phase" >&2
}

_rt_end_phase() {
    if [ -n "$_rt_current_phase" ]; then
        _rt_phase_names+=("$_rt_current_phase")
        _rt_phase_secs+=($((SECONDS - _rt_phase_start)))
        _rt_current_phase=""
    fi
}

rt_report_timings() {
    local rc=$? i
    _rt_end_phase
    echo "=== timings (seconds)" >&2
    for i in "${!_rt_phase_names[@]}"; do
        printf '  %-28s %5d\n' "${_rt_phase_names[$i]}" "${_rt_phase_secs[$i]}" >&2
    done
    printf '  %-28s %5d\n' "total" $((SECONDS - _rt_start)) >&2
    if [ "$rc" -ne 0 ]; then
        echo "=== FAILED (exit $rc)" >&2
    fi
}
