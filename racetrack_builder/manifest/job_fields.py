"""The rules of the job.yaml (Racetrack 2.x) fields that fatman.yaml does not share.

Fields both formats have (name, version, env, labels, paths, packages...) keep their rules in
:mod:`.fields`; this module holds only what 2.x says differently (owner_email, git.remote) or what
fatman.yaml lacks (jobtype, the jobtype_extra settings, replicas, resources...). Written as in
:mod:`.fields`: ``check_*`` functions are pydantic validators raising final messages, and where a
JSON Schema pattern exists it comes from the same definition.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic_core import PydanticCustomError

from .fields import DOCKER_TAG_PATTERN, check_remote
from .rules import Clause, Rule, about_value, blank, control, fail, show

JOBTYPE_EXAMPLE = "python3:latest"
JOBTYPE_NAME = "python3"  # the only job type racetrack-build builds
JOB_ENTRYPOINT_EXAMPLE = "job_entrypoint.py"
# The names of the deprecated fields and the field each is replaced by.
DEPRECATED_FIELDS: dict[str, str] = {
    "lang": "jobtype",
    "python": "jobtype_extra",
    "golang": "jobtype_extra",
    "docker": "jobtype_extra",
    "wrapper_properties": "jobtype_extra",
}
# The blocks that hold the job type's settings: jobtype_extra and its deprecated names.
EXTRA_BLOCKS = ("jobtype_extra", "python", "golang", "docker", "wrapper_properties")
MAX_REPLICAS = 50


def _kind(value: Any) -> str:
    from .problems import kind_of  # problems imports fields, which this module imports

    return kind_of(value)


# --- jobtype --------------------------------------------------------------------------------------

# name:version. The version is exact (2.15.1), "latest", or a pattern whose parts may be "*"
# (2.15.*, 2.*.*, 1.3.*-3.9-bullseye): the highest installed version that matches.
_PART = r"(0|[1-9][0-9]*|\*)"
JOBTYPE_VERSION_PATTERN = rf"latest|{_PART}\.{_PART}\.{_PART}(-[0-9A-Za-z][0-9A-Za-z.-]*)?"
JOBTYPE_PATTERN = rf"^[a-z0-9][a-z0-9_-]*:({JOBTYPE_VERSION_PATTERN})$"
_VERSION_RULE = Rule((), body=JOBTYPE_VERSION_PATTERN, otherwise=lambda value, found: value)


def check_jobtype(value: str) -> str:
    """``python3:<version>``: exactly one ':', an exact version, ``latest`` or ``*`` wildcards."""
    blank(repr(JOBTYPE_EXAMPLE)).check(value)
    control("the job type").check(value)
    name, colons, version = value.partition(":")
    if not colons:
        if value == JOBTYPE_NAME:
            raise fail(f"{show(value)} has no version, which Racetrack 2.x cannot look up "
                       f"(write {JOBTYPE_NAME}:latest or {JOBTYPE_NAME}:<version>, e.g. "
                       f"{JOBTYPE_NAME}:2.15.1)")
        raise fail(f"{show(value)} is not name:version (write e.g. {JOBTYPE_EXAMPLE!r})")
    if ":" in version:
        raise fail(f"{show(value)} has more than one ':' (write name:version, e.g. {JOBTYPE_EXAMPLE!r})")
    if name != JOBTYPE_NAME:
        near = difflib.get_close_matches(name, [JOBTYPE_NAME], n=1, cutoff=0.6)
        hint = f"did you mean '{JOBTYPE_NAME}:{version}'? " if near else ""
        raise fail(f"{show(value)} is not a job type racetrack-build builds ({hint}it builds "
                   f"{JOBTYPE_NAME} jobs: {JOBTYPE_NAME}:<version>)")
    if _VERSION_RULE.problem(version) is not None:
        if "x" in version.lower().split("-")[0].split("."):
            fixed = ".".join("*" if p.lower() == "x" else p for p in version.split("."))
            raise fail(f"{show(value)} uses 'x' as a wildcard (write '*': '{name}:{fixed}')")
        raise fail(f"{show(value)} has no valid version (use an exact version such as 2.15.1, "
                   f"'latest', or '*' for a part: 2.15.*)")
    return value


def jobtype_version(jobtype: str) -> str:
    """The version part of ``name:version``."""
    return jobtype.partition(":")[2]


# --- who: owner_email; where: git.remote ----------------------------------------------------------

# Racetrack 2.x only checks ".+@.+" (fatman.yaml's rule is stricter).
JOB_EMAIL_RULE = Rule(
    (blank("'you@example.com'"), control("the email address")),
    body=r"[\s\S]+@[\s\S]+",
    otherwise=about_value("is not an email address (write it as name@example.com)"),
)


def check_job_email(value: str) -> str:
    return JOB_EMAIL_RULE.check(value)


HTTPS_REMOTE_PATTERN = r"^https://"


def check_https_remote(value: str) -> str:
    """Racetrack 2.x clones only ``https://`` remotes; the rest of fatman.yaml's remote rule holds."""
    check_remote(value)
    if not value.lower().startswith("https://"):
        from ..git_urls import mask_credentials

        raise fail(f"{show(mask_credentials(value))} is not an https:// URL (Racetrack 2.x clones "
                   f"only https:// remotes, e.g. 'https://github.com/you/your-job')")
    return value


# --- jobtype_extra: flags, counts, home_page, debian_version ---------------------------------------


def coerce_flag(value: Any) -> Any:
    """A boolean: ``true``/``false``, or the text 'true'/'false' (the plugin reads both)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise PydanticCustomError("racetrack", "{text}", {
        "text": f"must be true or false, not {_kind(value)} (write true or false)"})


def coerce_count(value: Any) -> Any:
    """A whole number of at least 0, or its digits as text ('4'); 0 turns the limit off."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise fail(f"is {value} (use a whole number of at least 0; 0 turns the limit off)")
        return value
    raise fail(f"must be a whole number, not {_kind(value)} (write digits, e.g. 4; 0 turns the limit off)")


def coerce_replicas(value: Any) -> Any:
    """An integer, at most 50 (Racetrack 2.x sets no minimum)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(f"must be a whole number, not {_kind(value)} (e.g. replicas: 1)")
    if value > MAX_REPLICAS:
        raise fail(f"is {value} (Racetrack 2.x allows at most {MAX_REPLICAS} replicas)")
    return value


HOME_PAGE_EXAMPLE = "/docs"
_PAGE_CHARS = r"A-Za-z0-9._~!$&'()*+,;=:@/-"
# The paths the wrapper takes (FATMAN_HOME_PAGE in base-images/python3/fatman_wrapper/config.py): a
# path of the job and an optional query; no URL, '//', dot segment or %-escape.
HOME_PAGE_RULE = Rule(
    (
        blank(repr(HOME_PAGE_EXAMPLE)),
        control("the home page"),
        Clause(r"[A-Za-z][A-Za-z0-9+.-]*://", about_value(
            "is a URL, not a path of the job (the home page is under the job's own prefix: give a path, "
            "e.g. '/docs')")),
        Clause(r"[^/]", lambda value, found: (
            f"{show(value)} does not start with '/' (give a path of the job, e.g. "
            f"{'/' + value.lstrip('/ ')!r})")),
        Clause(r"/?$|/\?", about_value("would redirect / to itself (give another path of the job, "
                                        "e.g. '/docs')")),
        Clause(r"[^?]*//", about_value("has an empty segment ('//'), which a browser may read as another "
                                       "site (give a path of the job, e.g. '/docs')")),
        Clause(r"[^?]*/\.\.?(/|\?|$)", about_value("has a '.' or '..' segment (give the path itself, "
                                                   "e.g. '/docs')")),
        Clause("%", about_value("has a %-escape, which the wrapper refuses (write the characters "
                                "themselves; a path holds letters, digits and -._~!$&'()*+,;=:@)"),
               chars=True),
    ),
    body=rf"/[{_PAGE_CHARS}]*(\?[{_PAGE_CHARS}?]*)?",
    otherwise=about_value("is not a path of the job (use letters, digits and -._~!$&'()*+,;=:@/, "
                          "e.g. '/api/v1/webview/')"),
)
HOME_PAGE_PATTERN = HOME_PAGE_RULE.pattern


def check_home_page(value: str) -> str:
    """Where ``/`` redirects to, after the job's base path: a path of the job such as ``/docs``."""
    return HOME_PAGE_RULE.check(value)


DEBIAN_VERSION_PATTERN = f"^{DOCKER_TAG_PATTERN}$"
_DEBIAN_RULE = Rule((blank("'slim-bullseye'"),), body=DOCKER_TAG_PATTERN,
                    otherwise=about_value("is not a Docker tag suffix (e.g. 'slim-bullseye')"))


def check_debian_version(value: str) -> str:
    return _DEBIAN_RULE.check(value)


# --- resources, infrastructure_target, image_type, extends ----------------------------------------

QUANTITY_SUFFIXES = ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki", "E", "P", "T", "G", "M", "k", "m", "u", "n", "p")
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(" + "|".join(QUANTITY_SUFFIXES) + ")?$"
_QUANTITY_RULE = Rule((blank("'512Mi'"),), body=QUANTITY_PATTERN[1:-1], otherwise=about_value(
    "is not a Kubernetes quantity (a number and an optional suffix: "
    + " ".join(QUANTITY_SUFFIXES) + ", e.g. '512Mi' or '500m')"))


def check_quantity(value: str) -> str:
    """A Kubernetes quantity such as ``512Mi``, ``1Gi``, ``500m``, ``0.5``."""
    return _QUANTITY_RULE.check(value)


def quantity_value(value: str) -> float:
    """The number a valid quantity stands for (``1Gi`` -> 1073741824.0)."""
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    decimal = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
               "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12}
    for suffix, factor in [*binary.items(), *decimal.items()]:
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


INFRASTRUCTURE_RULE = Rule((blank("'kubernetes'"), control("the infrastructure target")))


def check_infrastructure_target(value: str) -> str:
    return INFRASTRUCTURE_RULE.check(value)


IMAGE_TYPES = ("docker",)


def check_image_type(value: str) -> str:
    if value not in IMAGE_TYPES:
        raise fail(f"{show(value)} is not supported (the only image type is 'docker')")
    return value


EXTENDS_EXAMPLE = "../base/job.yaml"
EXTENDS_RULE = Rule((
    blank(repr(EXTENDS_EXAMPLE)),
    control("the path"),
    Clause("/", about_value(f"is an absolute path (give the base manifest's path relative to this "
                              f"file's folder, e.g. {EXTENDS_EXAMPLE!r})")),
))


def check_extends(value: str) -> str:
    """The base manifest of an overlay: a path relative to the overlay's folder."""
    return EXTENDS_RULE.check(value)
