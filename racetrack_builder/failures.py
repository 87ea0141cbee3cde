"""Why a build step failed, in the user's terms: a headline, the fix, and the exit code's class.

``explain`` reads a :class:`~racetrack_builder.build_stream.StepFailure` (the instruction and the
last lines of its output) and recognises what went wrong: a root image that is not there, a package
index refusing credentials, TLS interception, no network, apt or pip failures, a requirement
conflicting with the wrapper, a job or server that cannot be imported. Anything else is reported
as a failed step with its log.
"""

from __future__ import annotations

import json
import re

from .build_stream import StepFailure, output_lines
from .contract import DIAGNOSIS_MARKER, INSTALL_SCRIPT_NAME
from .errors import AuthenticationRefused, BuildFailed, EnvironmentFailure, RacetrackError, UsageError

_TLS_FAILURE = re.compile(
    r"CERTIFICATE_VERIFY_FAILED|Certificate verification failed|certificate verify failed", re.I
)
_NETWORK_FAILURE = re.compile(
    r"Temporary failure resolving|Name or service not known|Failed to establish a new "
    r"connection|Connection refused|Network is unreachable|Could not resolve",
    re.I,
)
# An index answering 401/403, pip asking for a user, or git refusing the credentials of a
# requirement taken from a git repository.
_AUTH_FAILURE = re.compile(
    r"\b(401|403)\b.*(Unauthori[sz]ed|Forbidden)|User for \S+:|fatal: Authentication failed"
    r"|could not read Username",
    re.I,
)
# Of the install step's log, what a failure shows by default: the installer's own last lines.
_INSTALLER_TAIL = 25
# A wheel's shared library that the image lacks, and the Debian packages of the usual ones (the
# install step's own failures are explained inside it: base-images/build-tools/racetrack_install.py).
_MISSING_LIBRARY = re.compile(r"(lib[\w+.-]+\.so(?:\.\d+)*): cannot open shared object file")
# A compiled package built against NumPy 1.x, imported beside NumPy 2 (pandas 1.x, old scikit-learn):
# its own words, and NumPy's.
_NUMPY_ABI = re.compile(
    r"numpy\.dtype size changed, may indicate binary incompatibility"
    r"|compiled using NumPy 1\.x cannot be run in\s+NumPy 2"
    r"|numpy\.core\.multiarray failed to import")
# The wrapper's check command: "Error: importing the entrypoint ... failed: ..." (or what else is
# wrong with the job) and "To fix: ...".
_CHECK_SAID = re.compile(r"^\s*Error: (.*)$", re.M)
_CHECK_FIX = re.compile(r"^\s*To fix: (.*)$", re.M)
_NO_NETWORK = re.compile(r"\bnetwork (\S+) not found")
_LIBRARY_PACKAGES = {
    "libgomp.so.1": "libgomp1", "libGL.so.1": "libgl1", "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0", "libSM.so.6": "libsm6", "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1", "libsndfile.so.1": "libsndfile1", "libpq.so.5": "libpq5",
    "libgfortran.so.5": "libgfortran5", "libxml2.so.2": "libxml2", "libmagic.so.1": "libmagic1",
    "libzbar.so.0": "libzbar0", "libgeos_c.so.1": "libgeos-c1v5", "libgdal.so.32": "libgdal32",
    "libaio.so.1": "libaio1", "libodbc.so.2": "libodbc2", "libfreetype.so.6": "libfreetype6",
}


def unknown_network(said: str) -> UsageError | None:
    """The error for an engine's "network X not found": a --network the user mistyped (exit 2)."""
    network = _NO_NETWORK.search(said)
    if network is None:
        return None
    return UsageError(
        f"--network {network.group(1)}: the Docker engine has no such network",
        hint="give host, bridge or none, or a network `docker network ls` lists",
    )


def explain(failure: StepFailure) -> RacetrackError:
    """The error to raise for ``failure``."""
    mistyped = unknown_network(failure.message)
    if mistyped is not None:
        return mistyped
    if INSTALL_SCRIPT_NAME in failure.instruction:
        # The install step as a BuildKit RUN (a job without secrets): the script's own diagnosis,
        # and its lines without the engine's (which says only that the step exited non-zero).
        engine_said = set(output_lines(failure.message))
        return install_failure([line for line in failure.tail if line not in engine_said])
    if failure.instruction.startswith("FROM "):
        return EnvironmentFailure(
            f"the image for '{failure.instruction}' is not on the engine and could not be pulled: "
            f"{failure.message}",
            hint="build or load it first; for the Python root image use --python-image "
            "or RACETRACK_PYTHON_IMAGE",
        )
    if _AUTH_FAILURE.search("\n".join(failure.tail)):
        return AuthenticationRefused(
            f"a package index or git server refused the build's credentials ({failure.where})",
            hint="check the values in secret_build_env_file and how requirements use them",
        )
    headline, hint = _headline(failure.instruction, failure.tail)
    return BuildFailed(
        f"{headline} ({failure.where})", hint=hint, step=failure.instruction, log_tail=failure.tail
    )


def _headline(instruction: str, tail: list[str]) -> tuple[str, str | None]:
    """A headline and a fix for a failed step, recognised from the step and its output."""
    text = "\n".join(tail)
    wrapper = "fatman_wrapper" in instruction or "fatman-wrapper" in instruction
    if wrapper and '"check"' in instruction:
        if _NUMPY_ABI.search(text):
            return (
                "the job cannot be imported inside the image: a package of the job was built "
                "against NumPy 1.x, and the install chose NumPy 2",
                "pin numpy<2 in the job's requirements, or a release of that package built for NumPy 2",
            )
        library = _MISSING_LIBRARY.search(text)
        if library:
            name = library.group(1)
            package = _LIBRARY_PACKAGES.get(name)
            return (
                f"the job cannot be imported inside the image: a package needs the system library {name}",
                f"add {package} to system_dependencies" if package else
                f"add the Debian package that provides {name} to system_dependencies "
                f"(`apt-file search {name}` names it)",
            )
        # The wrapper's check says what failed and its fix, each on a line of its own: an import
        # that fails, or a job of the wrong shape (several entrypoint classes, perform(*args)).
        # The last of each: the job's own output, before them, may have such lines too.
        said = (_CHECK_SAID.findall(text) or [None])[-1]
        fix = (_CHECK_FIX.findall(text) or [None])[-1]
        imported = said is None or said.startswith("importing the entrypoint")
        return (
            ("the job cannot be imported inside the image" if imported else
             "the job's entrypoint fails the build's check") + (f": {said}" if said else ""),
            fix or "fix the error the step's output shows; the build runs the import the service runs "
            "at start",
        )
    if _TLS_FAILURE.search(text):
        return (
            "a build step could not verify a TLS certificate",
            "on a network that intercepts TLS, pass its CA bundle with --ca-cert FILE",
        )
    if _NETWORK_FAILURE.search(text):
        return (
            "a build step could not reach the network",
            "check the index or mirror address; a server on this machine needs --network host",
        )
    if "apt-get" in instruction:
        if "Unable to locate package" in text or "has no installation candidate" in text:
            return (
                "a system dependency could not be found by apt",
                "check the names in system_dependencies against Debian's packages for the base image",
            )
        return "installing system_dependencies with apt failed", None
    return "a build step failed", None


def install_failure(lines: list[str]) -> RacetrackError:
    """The error for a failed install step (its container's output, or its BuildKit step's): the
    diagnosis the script ends with first, then the installer's own lines."""
    diagnosis: dict[str, object] = {}
    log = []
    for line in lines:
        if line.startswith(DIAGNOSIS_MARKER):
            try:
                diagnosis = json.loads(line[len(DIAGNOSIS_MARKER):])
            except ValueError:
                diagnosis = {}
        else:
            log.append(line)
    tail = _installer_lines(log)
    requirement = diagnosis.get("requirement")
    where = diagnosis.get("where")
    cause = diagnosis.get("cause") or "the installer failed"
    subject = f"{requirement}" + (f" ({where})" if where else "") if requirement else None
    headline = diagnosis.get("headline") or "the job's requirements could not be installed"
    message = f"{headline}: " + (f"{subject}: {cause}" if subject else str(cause))
    hint = str(diagnosis.get("fix") or "the installer's lines say why; --verbose shows its whole output")
    details = {k: v for k, v in diagnosis.items() if v is not None}
    title = "The installer's last lines:"
    if diagnosis.get("kind") == "auth":
        return AuthenticationRefused(message, hint=hint, details=details, log_tail=tail, log_title=title)
    if diagnosis.get("kind") in ("network", "tls"):
        return EnvironmentFailure(message, hint=hint, details=details, log_tail=tail, log_title=title)
    return BuildFailed(message, hint=hint, step="install requirements", log_tail=tail, details=details,
                       log_title=title)


def _installer_lines(log: list[str]) -> list[str]:
    """The installer's error lines, without the tracebacks of its subprocesses (pip's
    ``subprocess-exited-with-error`` blocks keep their last lines, which say why)."""
    kept = [
        line for line in log
        if line.strip()
        and not line.startswith(("  File \"", "Traceback (most recent call last)"))
        # uv's hints name uv's own settings (tool.uv...), which a job does not have.
        and not (line.lstrip().startswith("hint:") and "uv" in line)
    ]
    return kept[-_INSTALLER_TAIL:]
