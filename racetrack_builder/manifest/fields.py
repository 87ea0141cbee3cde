"""The rules of each fatman.yaml field, with messages that name the fix.

Each ``check_*`` function is a pydantic ``AfterValidator``: it returns the value or raises a
"racetrack" error whose text is the final message (:func:`~racetrack_builder.manifest.rules.fail`).
Where the JSON Schema has a pattern for a field, it comes from the same definition the check uses:
either a :class:`~racetrack_builder.manifest.rules.Rule` (its clauses give both the pattern and the
messages) or a ``*_PATTERN`` the check matches as is, its code only wording why a value failed.

Patterns are written for both Python's ``re`` (used with fullmatch) and ECMA-262, because they also
go into the JSON Schema for editors. ``[0-9]`` rather than ``\\d``: Python's ``\\d`` matches any digit.
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic_core import PydanticCustomError

from ..contract import PYTHON_VERSIONS
from .rules import Clause, Message, Rule, about_value, blank, control, fail, reject_control, show

# Names the image itself sets at run time; runtime_env may not use them. The first two are the
# spec's reserved names; the others are set by the python3 base image (docs/architecture.md):
# overriding them would break the wrapper (PATH, PYTHONPATH, VIRTUAL_ENV point at its venv) or
# lie about the job (FATMAN_VERSION, FATMAN_PUBLIC_ENDPOINTS come from this manifest).
RESERVED_RUNTIME_ENV: frozenset[str] = frozenset(
    {
        "PUB_URL",
        "FATMAN_NAME",
        "FATMAN_VERSION",
        "FATMAN_PUBLIC_ENDPOINTS",
        # Racetrack 2.x's names of the job's identity, which the image sets beside the FATMAN_ ones.
        "JOB_NAME",
        "JOB_VERSION",
        "PATH",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "HOME",
    }
)

SUPPORTED_LANGS = ("python3",)

# Examples the messages suggest; problems.py shows the first two for a missing git: or python:.
REMOTE_EXAMPLE = "https://github.com/you/your-job"
ENTRYPOINT_EXAMPLE = "fatman_entrypoint.py"


def _fullmatch(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern, re.ASCII)
    return lambda value: compiled.fullmatch(value) is not None


# --- who and what: name, owner_email, lang, version -----------------------------------------------

# A DNS label: it becomes an image name and a host name.
NAME_MAX_LENGTH = 63
NAME_PATTERN = rf"^[a-z0-9]([a-z0-9-]{{0,{NAME_MAX_LENGTH - 2}}}[a-z0-9])?$"
EMAIL_MAX_LENGTH = 254
EMAIL_PATTERN = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
DOCKER_TAG_MAX_LENGTH = 128
DOCKER_TAG_PATTERN = rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{DOCKER_TAG_MAX_LENGTH - 1}}}"
LANG_PATTERN = rf"^python3(:{DOCKER_TAG_PATTERN})?$"
# Semantic Versioning 2.0.0: MAJOR.MINOR.PATCH, optional -prerelease and +build.
VERSION_MAX_LENGTH = 128
_SEMVER_ID = r"(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
VERSION_PATTERN = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    rf"(-{_SEMVER_ID}(\.{_SEMVER_ID})*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)

_is_name = _fullmatch(NAME_PATTERN)
_is_email = _fullmatch(EMAIL_PATTERN)
_is_lang = _fullmatch(LANG_PATTERN)
_is_version = _fullmatch(VERSION_PATTERN)
_NAME_BLANK = blank("'my-job'")
_EMAIL_BLANK = blank("'you@example.com'")
_VERSION_BLANK = blank("'1.0.0'")


def _slug(value: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:NAME_MAX_LENGTH].strip("-")
    return slug or "my-job"


def check_name(value: str) -> str:
    """A job name: it becomes an image name and a DNS label."""
    _NAME_BLANK.check(value)
    if not _is_name(value):
        if len(value) > NAME_MAX_LENGTH:
            raise fail(f"{show(value)} is {len(value)} characters long (use at most {NAME_MAX_LENGTH})")
        raise fail(f"{show(value)} is not a valid job name (use lowercase letters, digits and dashes, "
                   f"e.g. {_slug(value)!r})")
    return value


def check_email(value: str) -> str:
    """A plain well-formedness check of an email address; no DNS lookups."""
    _EMAIL_BLANK.check(value)
    if len(value) > EMAIL_MAX_LENGTH or not _is_email(value):
        raise fail(f"{show(value)} is not an email address (write it as name@example.com)")
    return value


def check_lang(value: str) -> str:
    """``python3`` or ``python3:<docker tag>``."""
    supported = "python3, python3:latest or python3:<tag>"
    if _is_lang(value):
        return value
    if value.startswith("python3:"):
        hint = (f"the tag after 'python3:' is letters, digits, '_', '.' and '-', at most "
                f"{DOCKER_TAG_MAX_LENGTH} characters; supported job types: {supported}")
    else:
        hint = f"supported job types: {supported}"
        near = difflib.get_close_matches(value.lower(), ["python3", "python3:latest"], n=1, cutoff=0.8)
        if near:
            hint = f"did you mean {near[0]!r}? " + hint
    raise fail(f"{show(value)} is not a supported job type ({hint})")


def coerce_version(value: Any) -> Any:
    """Refuse a YAML number or date as a version, with its own error type ("version_number").

    1.0 is a float, and 1.0.0 would have been read as a string: problems.py tells the user to
    quote it, rather than pydantic's "should be a valid string".
    """
    if isinstance(value, bool | int | float | date):
        raise PydanticCustomError("version_number", "{text}", {"text": str(value).lower()})
    return value


def check_version(value: str) -> str:
    """A semantic version: MAJOR.MINOR.PATCH with optional -prerelease and +build."""
    _VERSION_BLANK.check(value)
    reject_control(value, "the version")
    if len(value) > VERSION_MAX_LENGTH:
        raise fail(f"is {len(value)} characters long (use at most {VERSION_MAX_LENGTH})")
    if not _is_version(value):
        if value[:1] in ("v", "V") and _is_version(value[1:]):
            raise fail(f"{show(value)} is not a semantic version (drop the leading 'v': {value[1:]!r})")
        raise fail(f"{show(value)} is not a semantic version (use MAJOR.MINOR.PATCH, e.g. "
                   f"{version_suggestion(value)!r})")
    return value


def version_suggestion(value: str) -> str:
    """A semantic version close to what the user wrote (``1.2`` -> ``1.2.0``), else ``1.0.0``."""
    parts = value.split(".")
    # Short digit runs only: int() of thousands of digits raises (and is no useful suggestion).
    if 1 <= len(parts) <= 3 and all(p.isdigit() and p.isascii() and len(p) <= 9 for p in parts):
        return ".".join(str(int(p)) for p in parts + ["0"] * (3 - len(parts)))
    return "1.0.0"


# --- git: remote, branch, directory ---------------------------------------------------------------


# What the schema can check of a remote; check_remote adds the scheme rules below.
REMOTE_RULE = Rule((
    blank(repr(REMOTE_EXAMPLE)),
    control("the remote"),
    Clause(r"\s", about_value("contains whitespace (remove it; percent-encode a space as %20)"),
           chars=True),
    Clause("-", about_value(f"starts with '-', which git would read as an option (give a URL or a "
                                f"path, e.g. {REMOTE_EXAMPLE!r})")),
))

# git's own transports. git:// (the git daemon's read-only protocol) was not among the schemes the
# task that introduced this check listed (https, http, ssh, file), but it is a plain git transport
# that self-hosted daemons serve. What must never pass is a remote helper ("ext::", "fd::",
# "<helper>::", which run programs) or a scheme git does not speak.
_REMOTE_SCHEMES = ("https", "http", "ssh", "git", "file")


def check_remote(value: str) -> str:
    """https://, http://, ssh://, git://, file:// URLs, scp-like ``user@host:path`` or a local path.

    Messages show the remote with any credentials in it masked: they are printed and sent to CI logs.
    """
    from ..git_urls import mask_credentials  # here: git_urls imports secrets, which imports this package

    masked = mask_credentials(value)
    problem = REMOTE_RULE.problem(value)
    if problem is not None:
        # A URL too malformed to mask (a space in its password) is not shown at all.
        shown = show(masked) if masked != value or "@" not in value else "the remote"
        raise fail(problem.replace(show(value), shown))
    # The scheme rules are validate's alone: the schema stops at REMOTE_RULE (as it always has).
    example = repr(REMOTE_EXAMPLE)
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", value)
    if scheme:
        name = scheme.group(1).lower()
        rest = value[scheme.end():]
        if name not in _REMOTE_SCHEMES:
            raise fail(f"{show(masked)} uses the unsupported scheme {name}:// "
                       f"(use https://, http://, ssh://, git://, file://, user@host:path or a local path)")
        if name != "file" and (not rest or rest.startswith("/")):
            raise fail(f"{show(masked)} has no host (write it like {example})")
        if name == "file" and not rest:
            raise fail(f"{show(masked)} has no path (write it like 'file:///srv/git/my-job.git')")
        return value
    if "::" in value:
        # git's "<transport>::<address>" form runs a remote helper program (ext:: runs commands).
        raise fail(f"{show(masked)} uses a git remote helper ('...::'), which is not allowed "
                   f"(use https://, ssh://, git://, file://, user@host:path or a local path)")
    return value


def _branch(form: str, reason: str | Callable[[str], str], *, chars: bool = False) -> Clause:
    def message(value: str, found: str) -> str:
        why = reason if isinstance(reason, str) else reason(found)
        return (f"{show(value)} is not a valid git branch name: {why} "
                f"(use a name such as 'main' or 'feature/my-change')")
    return Clause(form, message, chars=chars)


def _bad_branch_char(char: str) -> str:
    if char == " ":
        return "spaces are not allowed in branch names"
    return f"{char!r} is not allowed in branch names"


# git check-ref-format, for one branch name.
BRANCH_RULE = Rule((
    # Left out of the schema, as they always were: git's character rule below already rejects the
    # empty name, spaces, C0 controls and DEL; C1 controls and names of only non-ASCII whitespace
    # (U+00A0...) are refused by validate alone. Dropping .validate_only() makes the schema agree.
    blank("'master'").validate_only(),
    control("the branch name").validate_only(),
    # No ASCII control character, space, ~ ^ : ? * [ or \ anywhere (controls are named above).
    _branch(r"\x00-\x20\x7f~^:?*\[\\", _bad_branch_char, chars=True),
    _branch("-", "it starts with '-'"),
    _branch(r".*\.\.", "'..' is not allowed"),
    _branch(r".*@\{|@$", "'@{' and a lone '@' are not allowed"),
    _branch(r"/|.*/$|.*//", "it has an empty part between slashes"),
    _branch(r".*\.$", "it ends with '.'"),
    _branch(r"\.|.*/\.|.*\.lock(/|$)", "a part starts with '.' or ends with '.lock'"),
))
BRANCH_PATTERN = BRANCH_RULE.pattern


def check_branch(value: str) -> str:
    """A branch name git accepts (git check-ref-format)."""
    return BRANCH_RULE.check(value)


def relative_path_clauses(example: str, empty_hint: str | None = None) -> tuple[Clause, ...]:
    """A path inside the repository: not blank, no control character or backslash, not absolute, no '..'.

    ``example`` is a path the messages suggest; ``empty_hint`` (default: the example quoted)
    is what the message for an empty value suggests.
    """
    return (
        blank(empty_hint or repr(example)),
        control("the path"),
        Clause(r"\\", about_value(f"contains a backslash (use forward slashes, e.g. {example!r})"),
               chars=True),
        Clause("/", about_value(f"is an absolute path (give a path relative to the repository, "
                                  f"e.g. {example!r})")),
        Clause(r"(.*/)?\.\.(/|$)", about_value(f"leaves the repository with '..' (give a path inside "
                                                 f"it, e.g. {example!r})")),
    )


DIRECTORY_RULE = Rule(relative_path_clauses("services/my-job", "'.' for the repository root"))


def check_directory(value: str) -> str:
    """A directory inside the repository (``.`` is its root)."""
    return DIRECTORY_RULE.check(value)


# --- python: entrypoint_path, entrypoint_class, requirements_path ---------------------------------

_not_a_py_file = about_value(f"is not a .py file (point it at the Python file holding your entrypoint "
                               f"class, e.g. {ENTRYPOINT_EXAMPLE!r})")
ENTRYPOINT_PATH_RULE = Rule(relative_path_clauses(ENTRYPOINT_EXAMPLE) + (
    Clause(r"(?![\s\S]*\.py$)|\.py$", _not_a_py_file),  # not ending in ".py", or only ".py"
    # A file named only ".py" inside a folder ("src/.py"): left out of the schema, as it always
    # was; validate refuses it. Dropping .validate_only() makes the schema agree.
    Clause(r"[\s\S]*/\.py$", _not_a_py_file).validate_only(),
))
REQUIREMENTS_PATH_RULE = Rule(relative_path_clauses("requirements.txt") + (
    Clause(r"[\s\S]*/$", about_value("is a directory (point it at the requirements file, "
                                       "e.g. 'requirements.txt')")),
))
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
is_identifier = _fullmatch(IDENTIFIER_PATTERN)


def check_entrypoint_path(value: str) -> str:
    """A ``.py`` file inside the job's directory."""
    return ENTRYPOINT_PATH_RULE.check(value)


def check_requirements_path(value: str) -> str:
    """A pip requirements file inside the job's directory."""
    return REQUIREMENTS_PATH_RULE.check(value)


def check_python_version(value: str) -> str:
    """One of the Pythons the wrapper supports, as ``MAJOR.MINOR`` text."""
    if value not in PYTHON_VERSIONS:
        near = f"did you mean {value.rsplit('.', 1)[0]!r}? " if value.count(".") > 1 and \
            value.rsplit(".", 1)[0] in PYTHON_VERSIONS else ""
        raise fail(f"{show(value)} is not a supported Python version ({near}supported: "
                   f"{', '.join(PYTHON_VERSIONS)}, written in quotes, e.g. '3.11')")
    return value


def check_entrypoint_class(value: str) -> str:
    """The name of a Python class (ASCII identifier, not a keyword; the schema cannot say the latter)."""
    if not is_identifier(value) or keyword.iskeyword(value):
        raise fail(f"{show(value)} is not a Python class name (give the class name as written in "
                   f"the entrypoint file, e.g. 'FatmanEntrypoint')")
    return value


# --- what goes into the image: packages, env, labels, endpoints, free text ------------------------

# Debian package names (policy 5.6.1), optionally :arch and =version, one package per item.
PACKAGE_PATTERN = r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?(=[A-Za-z0-9.+~:-]+)?$"
ENV_NAME_PATTERN = IDENTIFIER_PATTERN
LABEL_KEY_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$"
_is_package = _fullmatch(PACKAGE_PATTERN)
_is_label_key = _fullmatch(LABEL_KEY_PATTERN)


def check_package(value: str) -> str:
    """One Debian package: ``name``, ``name:arch``, ``name=version``."""
    if not _is_package(value):
        reject_control(value, "the package name")
        hint = "give one package per list item" if re.search(r"\s|[;&|]", value) else \
            "lowercase letters, digits, '+', '-' and '.'"
        raise fail(f"{show(value)} is not a Debian package name ({hint}, e.g. 'libgomp1', "
                   f"'curl=7.88.1-10')")
    return value


def check_env_name(value: str) -> str:
    """An environment variable name: letters, digits and '_', not starting with a digit."""
    if not is_identifier(value):
        raise fail(f"{show(value)} is not a valid environment variable name (use letters, digits "
                   f"and '_', not starting with a digit, e.g. 'MY_SETTING')")
    return value


def check_runtime_env_name(value: str) -> str:
    """An env name that the image does not set itself."""
    check_env_name(value)
    if value in RESERVED_RUNTIME_ENV:
        raise fail(f"{value!r} is set by the image and cannot be overridden (choose another name; "
                   f"reserved: {', '.join(sorted(RESERVED_RUNTIME_ENV))})")
    return value


def check_label_key(value: str) -> str:
    """A label key: letters, digits, '.', '-', '_', '/'; starting and ending alphanumeric."""
    if not _is_label_key(value):
        raise fail(f"{show(value)} is not a valid label key (use letters, digits, '.', '-', '_' "
                   f"and '/', e.g. 'team' or 'com.example.team')")
    return value


ENDPOINT_EXAMPLE = "/api/v1/perform"


def _endpoint_message(reason: str) -> Message:
    def message(value: str, found: str) -> str:
        return f"{show(value)} is not a valid endpoint path ({reason}; e.g. {ENDPOINT_EXAMPLE!r})"
    return message


ENDPOINT_RULE = Rule(
    (
        control("the endpoint"),
        Clause("$|[^/]", lambda value, found: (
            f"{show(value)} does not start with '/' (write it as {'/' + value.lstrip()!r})")),
        Clause("/pub/fatman/", lambda value, found: (
            f"{show(value)} includes the '/pub/fatman/...' prefix (give the short path, "
            f"e.g. {ENDPOINT_EXAMPLE!r})")),
        Clause(r".*/\.{1,2}(/|$)", _endpoint_message("it has a '.' or '..' segment")),
        Clause("?#", _endpoint_message("a query or fragment ('?', '#') is not part of a path"), chars=True),
        # The image passes the list comma-separated.
        Clause(",", _endpoint_message("commas are not allowed"), chars=True),
    ),
    # Paths of URL-safe characters: unreserved, "/", ":", "@", "+", "=" and %XX escapes.
    body=r"/([A-Za-z0-9._~:@+=/-]|%[0-9A-Fa-f]{2})*",
    otherwise=_endpoint_message("use letters, digits, '/', '-', '.', '_', '~', ':', '@', '+', '=' "
                                "and %XX escapes"),
)
ENDPOINT_PATTERN = ENDPOINT_RULE.pattern


def check_endpoint(value: str) -> str:
    """A path such as ``/api/v1/perform``: see ENDPOINT_RULE."""
    return ENDPOINT_RULE.check(value)


# Free text that goes into the image (env and label values): anything but control characters.
TEXT_RULE = Rule((control("the value"),), allow_empty=True)
NO_CONTROL_PATTERN = TEXT_RULE.pattern
# A path on the client machine (secret env files): any path, not blank, without control characters.
CLIENT_PATH_RULE = Rule((blank("'.env.build'"), control("the path")))


def check_text(value: str) -> str:
    """Free text that goes into the image: anything but control characters."""
    return TEXT_RULE.check(value)


def check_client_path(value: str) -> str:
    """A path on the client machine: any non-empty path without control characters."""
    return CLIENT_PATH_RULE.check(value)
