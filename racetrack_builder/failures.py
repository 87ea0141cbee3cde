"""Why a build step failed, in the user's terms: a headline, the fix, and the exit code's class.

``explain`` reads a :class:`~racetrack_builder.build_stream.StepFailure` (the instruction and the
last lines of its output) and recognises what went wrong: a root image that is not there, a package
index refusing credentials, TLS interception, no network, apt or pip failures, a requirement
conflicting with the wrapper, a job or server that cannot be imported. Anything else is reported
as a failed step with its log.
"""

from __future__ import annotations

import re

from .build_stream import StepFailure
from .errors import AuthenticationRefused, BuildFailed, EnvironmentFailure, RacetrackError

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
# A wheel's shared library that the image lacks, and the Debian packages of the usual ones (the
# install step's own failures are explained inside it: base-images/build-tools/racetrack_install.py).
_MISSING_LIBRARY = re.compile(r"(lib[\w+.-]+\.so(?:\.\d+)*): cannot open shared object file")
_LIBRARY_PACKAGES = {
    "libgomp.so.1": "libgomp1", "libGL.so.1": "libgl1", "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0", "libSM.so.6": "libsm6", "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1", "libsndfile.so.1": "libsndfile1", "libpq.so.5": "libpq5",
    "libgfortran.so.5": "libgfortran5", "libxml2.so.2": "libxml2", "libmagic.so.1": "libmagic1",
    "libzbar.so.0": "libzbar0", "libgeos_c.so.1": "libgeos-c1v5", "libgdal.so.32": "libgdal32",
    "libaio.so.1": "libaio1", "libodbc.so.2": "libodbc2", "libfreetype.so.6": "libfreetype6",
}


def explain(failure: StepFailure) -> RacetrackError:
    """The error to raise for ``failure``."""
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
        return (
            "the job cannot be imported inside the image",
            "fix the error the step's output shows; the build runs the import the service runs at start",
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
