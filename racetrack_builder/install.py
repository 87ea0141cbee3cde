"""The install container: the job's requirements installed by a container the tool runs and commits.

A job without secrets installs in a ``RUN`` step of one BuildKit build instead (build.py,
``_build_whole``); this is for a job with a secret build env, a registry cache, or an engine whose
BuildKit cannot take the build. Why not a ``RUN`` step there: the classic builder, which docker-py
drives, records every build argument of a step in the history of the image it makes, intermediate
images included, so a secret passed that way stays readable in the engine (`docker history`), and
BuildKit takes secrets only through the Docker CLI's session. Here the step is a container of the
job's image as it stands before its packages (base image + apt layer):

- the requirements files, the plan and the secret build env go in as files (``put_archive``);
  the install script reads the secrets and deletes them before anything runs, so neither the
  container's config (no env, no command argument) nor the committed layer holds them;
- uv, git and the script come from a volume mounted read-only, which a commit never includes: the
  installer never reaches the image;
- uv installs straight into the job's package folders, so the committed layer holds each package
  once, and the job's final stage is ``FROM`` that commit: nothing is copied between stages.

The commit is tagged with a key of everything the install depends on (the image below it, the
files, the tools, the build env and the secret values, these through scrypt), so a code change
reuses it and a changed secret re-runs it. The tag names the job and the key only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import reporting
from .build_tools import INSTALL_SCRIPT, TOOLS_MOUNT
from .contract import (
    CA_BUNDLE_FILE,
    DIAGNOSIS_MARKER,
    GID,
    JOB_BIN,
    JOB_SITE_PACKAGES,
    SERVER_CHECK_COMMAND,
    UID,
    USER,
    WRAPPER_PYTHON,
    WRAPPER_VENV,
)
from .engine import CommitRun, Engine
from .errors import RacetrackError
from .failures import install_failure
from .requirements import RequirementsPlan

CACHE_REPOSITORY = "racetrack-build/installed"
WORK = "tmp/racetrack-install"  # inside the container, relative to /
# The commit keeps the container's config; these give back the base image's.
_COMMIT_CHANGES = (f"USER {USER}", f'CMD ["{WRAPPER_VENV}/bin/fatman-wrapper", "--help"]')
# Installs of one job kept tagged for reuse (the one just made included): going back to the
# previous requirements or secrets is then a cache hit.
KEEP = 3
KEY_LENGTH = 32  # hex digits of the key in an install's tag


@dataclass(frozen=True)
class InstallRequest:
    job_name: str
    system_image: str  # the image id of the stage the packages go on
    tools_volume: str
    requirements_path: str
    plan: RequirementsPlan
    job_root: Path
    job_files: tuple[str, ...]  # every file of the job, relative to job_root
    python_version: str
    build_env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    ca_cert: Path | None = None
    network: str | None = None
    nocache: bool = False
    check_requirements: bool = True  # the conflict check against the wrapper's packages (pip check)
    python_version_field: str = "python.python_version"  # how the manifest names the job's Python


def install_key(request: InstallRequest, tools_volume: str) -> str:
    """A hash of every input of the install. The secret values enter through scrypt with the
    other inputs as salt: the tag can be compared, not reversed into a token."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(label.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)

    add("image", request.system_image.encode())
    add("tools", tools_volume.encode())
    add("python", request.python_version.encode())
    add("requirements", request.requirements_path.encode())
    add("check", str(request.check_requirements).encode())
    for rel in _files_to_send(request):
        add("file:" + rel, (request.job_root / rel).read_bytes())
    add("build_env", json.dumps(dict(request.build_env), sort_keys=True).encode())
    if request.ca_cert is not None:
        add("ca", request.ca_cert.read_bytes())
    if request.secrets:
        secret = json.dumps(dict(request.secrets), sort_keys=True).encode()
        add("secrets", hashlib.scrypt(secret, salt=digest.digest(), n=2**14, r=8, p=1, dklen=32))
    return digest.hexdigest()


def portable_install_key(request: InstallRequest, system_key: str, tools_identity: str) -> str:
    """The install's key for a registry cache (registry_cache.py): the same inputs, but the system
    stage and the tools named by keys of their own inputs instead of this engine's image and volume
    ids, which another engine building the same inputs does not share."""
    return install_key(replace(request, system_image=system_key), tools_identity)


def installed_ref(request: InstallRequest) -> str:
    """The tag of the install of ``request`` on this engine."""
    return f"{CACHE_REPOSITORY}:{request.job_name}-{install_key(request, request.tools_volume)[:KEY_LENGTH]}"


def install_requirements(engine: Engine, request: InstallRequest) -> str:
    """The ref of the job's packages image: reused when its key is on the engine, else made."""
    ref = installed_ref(request)
    if not request.nocache and engine.image_id(ref) is not None:
        reporting.progress("installing requirements: reusing the packages installed from the same inputs")
        return ref
    earlier = any(_is_install_of(tag, request.job_name) for tag, _ in engine.tags_of(CACHE_REPOSITORY))
    why = (
        "--no-cache" if request.nocache
        else "an input changed since the last install: the requirements files, build_env, a secret value, "
        "the system packages, the --ca-cert bundle, the base image or racetrack-build" if earlier
        else "the first install of this job on this engine"
    )
    reporting.progress(f"installing requirements ({request.requirements_path}): {why}")
    result = engine.run_and_commit(
        CommitRun(
            image=request.system_image,
            command=[WRAPPER_PYTHON, "-I", INSTALL_SCRIPT],
            ref=ref,
            files=_archive(request),
            network=request.network,
            volumes={request.tools_volume: TOOLS_MOUNT},
            changes=_COMMIT_CHANGES,
            on_line=_show,
        )
    )
    if result.exit_code != 0 or result.image_id is None:
        raise install_failure(result.lines)
    reporting.log(f"installed in {result.run_seconds:.1f}s, committed in {result.commit_seconds:.1f}s")
    _forget_older(engine, request.job_name, ref)
    return ref


def _is_install_of(ref: str, job_name: str) -> bool:
    """Whether ``ref`` is an install of ``job_name`` (``adder-<key>``, not ``adder-two-<key>``)."""
    pattern = rf"{re.escape(CACHE_REPOSITORY)}:{re.escape(job_name)}-[0-9a-f]{{{KEY_LENGTH}}}"
    return re.fullmatch(pattern, ref) is not None


def _forget_older(engine: Engine, job_name: str, ref: str) -> None:
    """Untag all but the newest ``KEEP`` installs of the job: each change of requirements, base
    image or secrets makes one, and a machine that builds often would keep them all. An image a
    job image still starts FROM stays on the engine, untagged; the others go."""
    ours = sorted(
        ((created, tag) for tag, created in engine.tags_of(CACHE_REPOSITORY)
         if _is_install_of(tag, job_name) and tag != ref),
        reverse=True,
    )
    for _, tag in ours[KEEP - 1:]:
        with contextlib.suppress(RacetrackError):
            engine.untag(tag)


def _show(line: str) -> None:
    if not line.startswith(DIAGNOSIS_MARKER):
        reporting.log(line)


def install_files(plan: RequirementsPlan, job_files: tuple[str, ...]) -> tuple[str, ...]:
    """What the install reads: the requirements files, or the whole job when they install local
    paths."""
    return job_files if plan.needs_source else plan.files


def _files_to_send(request: InstallRequest) -> tuple[str, ...]:
    return install_files(request.plan, request.job_files)


def install_plan(
    requirements_path: str,
    plan: RequirementsPlan,
    build_env: Mapping[str, str],
    python_version: str,
    check_requirements: bool = True,
    python_version_field: str = "python.python_version",
) -> dict[str, object]:
    """plan.json for the install script (base-images/build-tools/racetrack_install.py)."""
    return {
        "check_requirements": check_requirements,
        "python_version_field": python_version_field,
        "requirements": requirements_path,
        "files": list(plan.files),
        "build_env": dict(build_env),
        "wrapper_python": WRAPPER_PYTHON,
        "site_packages": JOB_SITE_PACKAGES,
        "bin": JOB_BIN,
        "python_version": python_version,
        "server_check": SERVER_CHECK_COMMAND,
        "user": [UID, GID],
    }


def _archive(request: InstallRequest) -> bytes:
    """The tar unpacked into the container: plan, secrets, files (root-owned, private)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_bytes(name: str, data: bytes, mode: int = 0o600) -> None:
            info = tarfile.TarInfo(f"{WORK}/{name}")
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        plan = install_plan(
            request.requirements_path, request.plan, request.build_env, request.python_version,
            request.check_requirements, request.python_version_field,
        )
        add_bytes("plan.json", json.dumps(plan).encode())
        add_bytes("secrets.json", json.dumps(dict(request.secrets)).encode())
        if request.ca_cert is not None:
            add_bytes(CA_BUNDLE_FILE, request.ca_cert.read_bytes(), 0o644)
        for rel in _files_to_send(request):
            path = request.job_root / rel
            info = tar.gettarinfo(str(path), arcname=f"{WORK}/job/{rel}")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buffer.getvalue()
