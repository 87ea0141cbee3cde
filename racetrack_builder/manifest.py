"""The ``fatman.yaml`` model (pydantic v2) and its loading.

Three steps, kept apart (house style: parse, then validate, then format):

1. :func:`racetrack_builder.yaml_lines.load_yaml` reads the text, keeping the line and column of
   every key and value, and reports YAML-level problems (syntax, duplicate keys, bad tags).
2. :class:`Manifest` validates the plain data; ``extra="forbid"`` and ``strict=True`` so that
   unknown keys and wrong types are errors, and pydantic collects every error at once.
3. :func:`_to_problem` turns each pydantic error into a :class:`Problem` with a human message
   that names the fix, located with the positions from step 1.

Every string that ends up in the image (names, paths, env values, labels, endpoints...) is
checked for control characters here, so a newline can never start a new Dockerfile instruction;
quoting and ``$`` escaping of the accepted values is the renderer's job.
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from racetrack_builder.errors import ManifestError, Problem
from racetrack_builder.yaml_lines import LoadedDocument, Position, YamlSyntaxError, load_yaml

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
        "PATH",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "HOME",
    }
)

SUPPORTED_LANGS = ("python3",)

# A manifest is a few dozen lines; a bigger file is a mistake (wrong file, generated junk).
MAX_MANIFEST_BYTES = 1024 * 1024
# Past this many problems the rest is noise; the last Problem says how many were left out.
MAX_PROBLEMS = 100

# --- patterns -------------------------------------------------------------------------------------
# Written for both Python's re (always used with fullmatch and re.ASCII) and ECMA-262, because they
# also go into the JSON Schema for editors. [0-9] rather than \d: Python's \d matches any digit.

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
EMAIL_PATTERN = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
DOCKER_TAG_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
LANG_PATTERN = rf"^python3(:{DOCKER_TAG_PATTERN})?$"
# Semantic Versioning 2.0.0: MAJOR.MINOR.PATCH, optional -prerelease and +build.
_SEMVER_ID = r"(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
VERSION_PATTERN = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    rf"(-{_SEMVER_ID}(\.{_SEMVER_ID})*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
# git check-ref-format, for one branch name.
BRANCH_PATTERN = (
    r"^(?!-)(?!/)(?!\.)(?!@$)(?!.*(\.\.|@\{|//|/\.|\.lock/))(?!.*(/|\.|\.lock)$)"
    r"[^\x00-\x20\x7f~^:?*\[\\]+$"
)
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME_PATTERN = IDENTIFIER_PATTERN
# Debian package names (policy 5.6.1), optionally :arch and =version, one package per item.
PACKAGE_PATTERN = r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?(=[A-Za-z0-9.+~:-]+)?$"
# Paths of URL-safe characters: unreserved, "/", ":", "@", "+", "=" and %XX escapes. No comma (the
# image passes the list comma-separated), no ? or # (only paths are matched), no . or .. segments.
ENDPOINT_PATTERN = r"^(?!.*/\.{1,2}(/|$))/([A-Za-z0-9._~:@+=/-]|%[0-9A-Fa-f]{2})*$"
LABEL_KEY_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$"
# Anything but control characters (C0, DEL, C1): used for free text that goes into the image.
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL byte"}


def _fullmatch(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern, re.ASCII)
    return lambda value: compiled.fullmatch(value) is not None


_is_name = _fullmatch(NAME_PATTERN)
_is_email = _fullmatch(EMAIL_PATTERN)
_is_lang = _fullmatch(LANG_PATTERN)
_is_version = _fullmatch(VERSION_PATTERN)
_is_identifier = _fullmatch(IDENTIFIER_PATTERN)
_is_package = _fullmatch(PACKAGE_PATTERN)
_is_endpoint = _fullmatch(ENDPOINT_PATTERN)
_is_label_key = _fullmatch(LABEL_KEY_PATTERN)


# --- validators -----------------------------------------------------------------------------------
# Each raises a "racetrack" error whose message is already the final, human text (what is wrong,
# then in parentheses how to fix it); _to_problems uses it as is. The text goes in through the
# context so that braces in user values are not read as placeholders.


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("racetrack", "{text}", {"text": message})


def _show(value: str, limit: int = 60) -> str:
    """A user value quoted for a message, control characters escaped, long values shortened."""
    text = value if len(value) <= limit else value[: limit - 3] + "..."
    return repr(text)


def _reject_control(value: str, what: str) -> None:
    found = _CONTROL.search(value)
    if found:
        char = found.group()
        name = _CONTROL_NAMES.get(char, f"the control character U+{ord(char):04X}")
        raise _fail(f"{what} contains {name} (keep it on one line, without control characters)")


def _not_empty(value: str, example: str) -> None:
    if not value.strip():
        raise _fail(f"is empty (give a value, e.g. {example})")


def _slug(value: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:63].strip("-")
    return slug or "my-job"


def check_name(value: str) -> str:
    """A job name: it becomes an image name and a DNS label."""
    _not_empty(value, "'my-job'")
    if not _is_name(value):
        if len(value) > 63:
            raise _fail(f"{_show(value)} is {len(value)} characters long (use at most 63)")
        raise _fail(f"{_show(value)} is not a valid job name (use lowercase letters, digits and dashes, "
                    f"e.g. {_slug(value)!r})")
    return value


def check_email(value: str) -> str:
    """A plain well-formedness check of an email address; no DNS lookups."""
    _not_empty(value, "'you@example.com'")
    if len(value) > 254 or not _is_email(value):
        raise _fail(f"{_show(value)} is not an email address (write it as name@example.com)")
    return value


def check_lang(value: str) -> str:
    """``python3`` or ``python3:<docker tag>``."""
    supported = "python3, python3:latest or python3:<tag>"
    if _is_lang(value):
        return value
    if value.startswith("python3:"):
        hint = (f"the tag after 'python3:' is letters, digits, '_', '.' and '-', at most 128 characters; "
                f"supported job types: {supported}")
    else:
        hint = f"supported job types: {supported}"
        near = difflib.get_close_matches(value.lower(), ["python3", "python3:latest"], n=1, cutoff=0.8)
        if near:
            hint = f"did you mean {near[0]!r}? " + hint
    raise _fail(f"{_show(value)} is not a supported job type ({hint})")


def _coerce_version(value: Any) -> Any:
    # A YAML number or date is never a semantic version: 1.0 is a float and 1.0.0 would have been
    # read as a string. Say so, rather than "should be a valid string".
    if isinstance(value, bool | int | float | date):
        raise PydanticCustomError("version_number", "{text}", {"text": str(value).lower()})
    return value


def check_version(value: str) -> str:
    """A semantic version: MAJOR.MINOR.PATCH with optional -prerelease and +build."""
    _not_empty(value, "'1.0.0'")
    _reject_control(value, "the version")
    if len(value) > 128:
        raise _fail(f"is {len(value)} characters long (use at most 128)")
    if not _is_version(value):
        if value[:1] in ("v", "V") and _is_version(value[1:]):
            raise _fail(f"{_show(value)} is not a semantic version (drop the leading 'v': {value[1:]!r})")
        raise _fail(f"{_show(value)} is not a semantic version (use MAJOR.MINOR.PATCH, e.g. "
                    f"{_version_suggestion(value)!r})")
    return value


def _version_suggestion(value: str) -> str:
    parts = value.split(".")
    # Short digit runs only: int() of thousands of digits raises (and is no useful suggestion).
    if 1 <= len(parts) <= 3 and all(p.isdigit() and p.isascii() and len(p) <= 9 for p in parts):
        return ".".join(str(int(p)) for p in parts + ["0"] * (3 - len(parts)))
    return "1.0.0"


# git's own transports. git:// (git daemon, read-only) is not in the list but is a plain git
# protocol that users of self-hosted daemons have; what must never pass is a remote helper
# ("ext::", "fd::", "<helper>::") or a scheme git does not speak.
_REMOTE_SCHEMES = ("https", "http", "ssh", "git", "file")


def check_remote(value: str) -> str:
    """https://, http://, ssh://, git://, file:// URLs, scp-like ``user@host:path`` or a local path."""
    example = "'https://github.com/you/your-job'"
    _not_empty(value, example)
    _reject_control(value, "the remote")
    if re.search(r"\s", value):
        raise _fail(f"{_show(value)} contains whitespace (remove it; percent-encode a space as %20)")
    if value.startswith("-"):
        raise _fail(f"{_show(value)} starts with '-', which git would read as an option "
                    f"(give a URL or a path, e.g. {example})")
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", value)
    if scheme:
        name = scheme.group(1).lower()
        rest = value[scheme.end():]
        if name not in _REMOTE_SCHEMES:
            raise _fail(f"{_show(value)} uses the unsupported scheme {name}:// "
                        f"(use https://, http://, ssh://, git://, file://, user@host:path or a local path)")
        if name != "file" and (not rest or rest.startswith("/")):
            raise _fail(f"{_show(value)} has no host (write it like {example})")
        if name == "file" and not rest:
            raise _fail(f"{_show(value)} has no path (write it like 'file:///srv/git/my-job.git')")
        return value
    if "::" in value:
        # git's "<transport>::<address>" form runs a remote helper program (ext:: runs commands).
        raise _fail(f"{_show(value)} uses a git remote helper ('...::'), which is not allowed "
                    f"(use https://, ssh://, git://, file://, user@host:path or a local path)")
    return value


def check_branch(value: str) -> str:
    """A branch name git accepts (git check-ref-format)."""
    _not_empty(value, "'master'")
    _reject_control(value, "the branch name")
    reason = None
    bad = re.search(r"[ ~^:?*\[\\]", value)
    if bad:
        reason = f"{bad.group()!r} is not allowed in branch names" if bad.group() != " " else \
            "spaces are not allowed in branch names"
    elif value.startswith("-"):
        reason = "it starts with '-'"
    elif ".." in value:
        reason = "'..' is not allowed"
    elif "@{" in value or value == "@":
        reason = "'@{' and a lone '@' are not allowed"
    elif value.startswith("/") or value.endswith("/") or "//" in value:
        reason = "it has an empty part between slashes"
    elif value.endswith("."):
        reason = "it ends with '.'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in value.split("/")):
        reason = "a part starts with '.' or ends with '.lock'"
    if reason:
        raise _fail(f"{_show(value)} is not a valid git branch name: {reason} "
                    f"(use a name such as 'main' or 'feature/my-change')")
    return value


def _check_relative_path(value: str, example: str) -> None:
    _not_empty(value, repr(example))
    _reject_control(value, "the path")
    if "\\" in value:
        raise _fail(f"{_show(value)} contains a backslash (use forward slashes, e.g. {example!r})")
    if value.startswith("/"):
        raise _fail(f"{_show(value)} is an absolute path (give a path relative to the repository, "
                    f"e.g. {example!r})")
    if ".." in value.split("/"):
        raise _fail(f"{_show(value)} leaves the repository with '..' (give a path inside it, "
                    f"e.g. {example!r})")


def check_directory(value: str) -> str:
    """A directory inside the repository (``.`` is its root)."""
    _not_empty(value, "'.' for the repository root")
    _check_relative_path(value, "services/my-job")
    return value


def check_entrypoint_path(value: str) -> str:
    """A ``.py`` file inside the job's directory."""
    _check_relative_path(value, "fatman_entrypoint.py")
    if not value.endswith(".py") or value.rstrip("/").split("/")[-1] == ".py":
        raise _fail(f"{_show(value)} is not a .py file (point it at the Python file holding your "
                    f"entrypoint class, e.g. 'fatman_entrypoint.py')")
    return value


def check_requirements_path(value: str) -> str:
    """A pip requirements file inside the job's directory."""
    _check_relative_path(value, "requirements.txt")
    if value.endswith("/"):
        raise _fail(f"{_show(value)} is a directory (point it at the requirements file, "
                    f"e.g. 'requirements.txt')")
    return value


def check_entrypoint_class(value: str) -> str:
    """The name of a Python class (ASCII identifier, not a keyword)."""
    if not _is_identifier(value) or keyword.iskeyword(value):
        raise _fail(f"{_show(value)} is not a Python class name (give the class name as written in "
                    f"the entrypoint file, e.g. 'FatmanEntrypoint')")
    return value


def check_package(value: str) -> str:
    """One Debian package: ``name``, ``name:arch``, ``name=version``."""
    if not _is_package(value):
        _reject_control(value, "the package name")
        hint = "give one package per list item" if re.search(r"\s|[;&|]", value) else \
            "lowercase letters, digits, '+', '-' and '.'"
        raise _fail(f"{_show(value)} is not a Debian package name ({hint}, e.g. 'libgomp1', "
                    f"'curl=7.88.1-10')")
    return value


def check_endpoint(value: str) -> str:
    """A path such as ``/api/v1/perform``: see ENDPOINT_PATTERN."""
    _reject_control(value, "the endpoint")
    if not value.startswith("/"):
        raise _fail(f"{_show(value)} does not start with '/' (write it as {'/' + value.lstrip()!r})")
    if value.startswith("/pub/fatman/"):
        raise _fail(f"{_show(value)} includes the '/pub/fatman/...' prefix (give the short path, "
                    f"e.g. '/api/v1/perform')")
    if not _is_endpoint(value):
        if re.search(r"(^|/)\.{1,2}(/|$)", value):
            reason = "it has a '.' or '..' segment"
        elif re.search(r"[?#]", value):
            reason = "a query or fragment ('?', '#') is not part of a path"
        elif "," in value:
            reason = "commas are not allowed"
        else:
            reason = "use letters, digits, '/', '-', '.', '_', '~', ':', '@', '+', '=' and %XX escapes"
        raise _fail(f"{_show(value)} is not a valid endpoint path ({reason}; e.g. '/api/v1/perform')")
    return value


def check_env_name(value: str) -> str:
    """An environment variable name: letters, digits and '_', not starting with a digit."""
    if not _is_identifier(value):
        raise _fail(f"{_show(value)} is not a valid environment variable name (use letters, digits "
                    f"and '_', not starting with a digit, e.g. 'MY_SETTING')")
    return value


def check_runtime_env_name(value: str) -> str:
    """An env name that the image does not set itself."""
    check_env_name(value)
    if value in RESERVED_RUNTIME_ENV:
        raise _fail(f"{value!r} is set by the image and cannot be overridden (choose another name; "
                    f"reserved: {', '.join(sorted(RESERVED_RUNTIME_ENV))})")
    return value


def check_text(value: str) -> str:
    """Free text that goes into the image: anything but control characters."""
    _reject_control(value, "the value")
    return value


def check_label_key(value: str) -> str:
    """A label key: letters, digits, '.', '-', '_', '/'; starting and ending alphanumeric."""
    if not _is_label_key(value):
        raise _fail(f"{_show(value)} is not a valid label key (use letters, digits, '.', '-', '_' "
                    f"and '/', e.g. 'team' or 'com.example.team')")
    return value


def check_client_path(value: str) -> str:
    """A path on the client machine: any non-empty path without control characters."""
    _not_empty(value, "'.env.build'")
    _reject_control(value, "the path")
    return value


def _scalars_to_text(value: Any) -> Any:
    """Env and label values: YAML numbers and booleans become the strings the user meant.

    load_manifest replaces them with their source text first (``1.10`` stays "1.10", ``yes``
    stays "yes"); this covers data built in code. A missing value (None) stays an error.
    """
    if value is None:
        return {}  # an empty section, e.g. all its entries commented out
    if not isinstance(value, Mapping):
        return value
    coerced: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, int | float):
            item = str(item)
        elif isinstance(item, datetime | date):
            item = item.isoformat()
        coerced[key] = item
    return coerced


def _none_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


# --- types ----------------------------------------------------------------------------------------

Text = Annotated[str, AfterValidator(check_text)]
EnvName = Annotated[str, AfterValidator(check_env_name)]
RuntimeEnvName = Annotated[str, AfterValidator(check_runtime_env_name)]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
Package = Annotated[str, AfterValidator(check_package)]
Endpoint = Annotated[str, AfterValidator(check_endpoint)]

_ENV_VALUE_SCHEMA = {
    "type": ["string", "number", "boolean"],
    "pattern": NO_CONTROL_PATTERN,
    "description": "A string; numbers and booleans are taken as the text written.",
}


def _env_schema(name_schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": ["object", "null"], "propertyNames": name_schema,
            "additionalProperties": _ENV_VALUE_SCHEMA}


# Relative, not blank, no '..' segment, no backslash or control character (the schema's view of
# _check_relative_path).
_RELATIVE_PATH = r"^(?!\s*$)(?!/)(?!(.*/)?\.\.(/|$))[^\\\x00-\x1f\x7f-\x9f]+"
_CLIENT_PATH = r"^(?!\s*$)[^\x00-\x1f\x7f-\x9f]+$"


class _Strict(BaseModel):
    # strict: no silent coercion (a YAML number is not a name); env values are coerced on purpose.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class GitConfig(_Strict):
    """Where the job's source lives."""

    remote: Annotated[str, AfterValidator(check_remote)] = Field(
        description="URL of the job's git repository: https://, http://, ssh://, git://, file://, "
                    "user@host:path, or a local path",
        examples=["https://github.com/racetrack/supersmart-model"],
        json_schema_extra={"minLength": 1, "pattern": r"^(?!-)[^\s\x00-\x1f\x7f-\x9f]+$"},
    )
    branch: Annotated[str, AfterValidator(check_branch)] = Field(
        "master", description="Branch to build (a name git accepts)", examples=["master", "main"],
        json_schema_extra={"pattern": BRANCH_PATTERN},
    )
    directory: Annotated[str, AfterValidator(check_directory)] = Field(
        ".", description="Subdirectory of the repository holding the job, relative to its root; "
                         "'..' and absolute paths are not allowed",
        examples=[".", "services/supersmart"],
        json_schema_extra={"pattern": _RELATIVE_PATH + "$"},
    )


class PythonConfig(_Strict):
    """How to find and install the job's Python code."""

    entrypoint_path: Annotated[str, AfterValidator(check_entrypoint_path)] = Field(
        description="Path (relative to git.directory) of the .py file with the entrypoint class",
        examples=["fatman_entrypoint.py"],
        json_schema_extra={"pattern": _RELATIVE_PATH + r"\.py$"},
    )
    entrypoint_class: Annotated[str, AfterValidator(check_entrypoint_class)] | None = Field(
        None, description="Name of the entrypoint class (discovered when omitted)",
        examples=["FatmanEntrypoint"],
        json_schema_extra={"pattern": IDENTIFIER_PATTERN},
    )
    requirements_path: Annotated[str, AfterValidator(check_requirements_path)] | None = Field(
        None, description="Path (relative to git.directory) of a pip requirements file",
        examples=["requirements.txt"],
        json_schema_extra={"pattern": _RELATIVE_PATH + "(?<!/)$"},
    )


class Manifest(_Strict):
    """A validated ``fatman.yaml``."""

    name: Annotated[str, AfterValidator(check_name)] = Field(
        description="Name of the job, unique in the cluster; it becomes an image name and a DNS "
                    "label: lowercase letters, digits and dashes, at most 63 characters",
        examples=["supersmart"], json_schema_extra={"pattern": NAME_PATTERN},
    )
    owner_email: Annotated[str, AfterValidator(check_email)] = Field(
        description="Email address of the job's owner", examples=["nobody@example.com"],
        json_schema_extra={"pattern": EMAIL_PATTERN, "maxLength": 254},
    )
    lang: Annotated[str, AfterValidator(check_lang)] = Field(
        description="Job type: python3 (the latest base image) or python3:<tag>",
        examples=["python3:latest", "python3"], json_schema_extra={"pattern": LANG_PATTERN},
    )
    version: Annotated[str, BeforeValidator(_coerce_version), AfterValidator(check_version)] = Field(
        "0.0.1", description="Semantic version of the job (MAJOR.MINOR.PATCH); public endpoints are "
                             "approved once per version. Quote it: 1.0 would be a number",
        examples=["1.0.0", "2.1.0-rc.1"], json_schema_extra={"pattern": VERSION_PATTERN, "maxLength": 128},
    )
    git: GitConfig = Field(description="Where the job's source lives")
    python: PythonConfig = Field(description="How to find and install the job's Python code")
    system_dependencies: Annotated[list[Package], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list, description="Debian packages installed with apt (name, name:arch or "
                                          "name=version; one package per item)",
        examples=[["libgomp1"]],
        json_schema_extra={"type": ["array", "null"],
                           "items": {"type": "string", "pattern": PACKAGE_PATTERN}},
    )
    build_env: Annotated[dict[EnvName, Text], BeforeValidator(_scalars_to_text)] = Field(
        default_factory=dict, description="Environment variables set while building the image",
        examples=[{"DEBIAN_FRONTEND": "noninteractive"}],
        json_schema_extra=_env_schema({"pattern": ENV_NAME_PATTERN}),
    )
    runtime_env: Annotated[dict[RuntimeEnvName, Text], BeforeValidator(_scalars_to_text)] = Field(
        default_factory=dict,
        description="Environment variables set when the job runs; these names are reserved (set by "
                    "the image): " + ", ".join(sorted(RESERVED_RUNTIME_ENV)),
        examples=[{"DJANGO_DEBUG": "true", "TORCH_MODEL_ZOO": "zoo"}],
        json_schema_extra=_env_schema({"pattern": ENV_NAME_PATTERN,
                                       "not": {"enum": sorted(RESERVED_RUNTIME_ENV)}}),
    )
    public_endpoints: Annotated[list[Endpoint], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list,
        description="Endpoints reachable without authentication (each with all its subpaths), "
                    "without the /pub/fatman/... prefix",
        examples=[["/api/v1/perform", "/api/v1/webview"]],
        json_schema_extra={"type": ["array", "null"], "items": {"type": "string", "pattern": ENDPOINT_PATTERN,
                                                                  "not": {"pattern": "^/pub/fatman/"}}},
    )
    secret_build_env_file: Annotated[str, AfterValidator(check_client_path)] | None = Field(
        None, description="Env file on the client machine (relative to this manifest's folder) "
                          "with secret build variables; keep it out of git",
        examples=[".env.build"], json_schema_extra={"minLength": 1, "pattern": _CLIENT_PATH},
    )
    secret_runtime_env_file: Annotated[str, AfterValidator(check_client_path)] | None = Field(
        None, description="Env file on the client machine (relative to this manifest's folder) "
                          "with secret runtime variables; keep it out of git",
        examples=[".env.runtime"], json_schema_extra={"minLength": 1, "pattern": _CLIENT_PATH},
    )
    labels: Annotated[dict[LabelKey, Text], BeforeValidator(_scalars_to_text)] = Field(
        default_factory=dict, description="Metadata describing the job for humans",
        examples=[{"team": "data-science"}],
        json_schema_extra=_env_schema({"pattern": LABEL_KEY_PATTERN}),
    )

    @property
    def base_image_tag(self) -> str:
        """The tag of the python3 base image selected by ``lang`` (``python3`` means ``latest``)."""
        _, _, tag = self.lang.partition(":")
        return tag or "latest"


# --- loading --------------------------------------------------------------------------------------

_ENV_SECTIONS = ("build_env", "runtime_env", "labels")
# Top-level keys starting with this are the user's own and ignored, as docker-compose does: a place
# for YAML anchors (x-defaults: &env ...) and for other tools' settings. Any other unknown key is
# an error, so that a typo is never silently ignored.
EXTENSION_PREFIX = "x-"


def _is_extension(key: Any) -> bool:
    return isinstance(key, str) and key.startswith(EXTENSION_PREFIX)
_REQUIRED_HINT = "add the required fields name, owner_email, lang, git.remote and python.entrypoint_path"


def load_manifest(path: Path | str) -> Manifest:
    """Read and validate a manifest file; raise ManifestError listing every problem.

    Problems carry the 1-based line and column in the file. A missing, unreadable, oversized or
    non-UTF-8 file is a ManifestError too (with one Problem), never an OSError.
    """
    path = Path(path)
    filename = str(path)
    try:
        # Bounded read: a device or pipe given by mistake (/dev/zero) must not be read forever,
        # while /dev/stdin still works.
        with path.open("rb") as stream:
            raw = stream.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(filename, [Problem("", "no such file (create fatman.yaml at the root of "
                                                   "your job's repository, or give its path)")]) from None
    except IsADirectoryError:
        raise ManifestError(filename, [Problem("", "is a directory (give the path of the fatman.yaml "
                                                   "file inside it)")]) from None
    except OSError as err:
        raise ManifestError(filename, [Problem("", f"cannot be read: {err.strerror or err} "
                                                   f"(check the path and its permissions)")]) from err
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(filename, [Problem("", f"is larger than a manifest can be ({MAX_MANIFEST_BYTES} "
                                                   f"bytes; is it the right file?)")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise ManifestError(filename, [Problem("", f"is not valid UTF-8: byte 0x{raw[err.start]:02x} "
                                                   f"cannot be decoded (save the file as UTF-8)",
                                               line, column)]) from None
    return parse_manifest(text, filename)


def parse_manifest(text: str, filename: str = "fatman.yaml") -> Manifest:
    """Validate manifest text (the content of a fatman.yaml); raise ManifestError on any problem.

    ``filename`` is only used to name the file in the error.
    """
    try:
        doc = load_yaml(text)
    except YamlSyntaxError as err:
        position, message = _syntax_problem(err, text)
        raise ManifestError(filename, [Problem("", message, position.line if position else None,
                                               position.column if position else None)]) from None
    if doc.data is None:
        raise ManifestError(filename, [Problem("", f"the manifest is empty ({_REQUIRED_HINT})", 1, 1)])
    if not isinstance(doc.data, dict):
        kind = _kind(doc.data)
        raise ManifestError(filename, [Problem(
            "", f"the manifest must be a mapping of fields, not {kind} (write 'name: my-job' and "
                f"the other fields one per line)", doc.root.line, doc.root.column)])

    problems = [Problem(_format_path(p.path), p.message, p.position.line, p.position.column)
                for p in doc.problems]
    # Values the YAML layer could not give (recursive alias, too deep) would only echo its problem.
    blocked = [p.path for p in doc.problems if p.kind in ("alias", "depth")]
    manifest = None
    try:
        manifest = Manifest.model_validate(_with_source_text(doc))
    except ValidationError as err:
        for error in err.errors(include_url=False, include_context=True, include_input=True):
            loc = tuple(error["loc"])
            path = tuple(step for step in loc if step != "[key]")
            if any(path[: len(b)] == b for b in blocked):
                continue
            problems.append(_to_problem(error, loc, doc))
    if problems or manifest is None:
        raise ManifestError(filename, _sorted_and_capped(problems))
    return manifest


def _syntax_problem(err: YamlSyntaxError, text: str) -> tuple[Position | None, str]:
    """Where a YAML syntax error is and what to do about it, in the user's terms."""
    position, problem = err.position, err.problem
    if "expected a single document" in err.context or "expected a single document" in problem:
        return position, "holds more than one YAML document (keep one; remove the extra '---' line)"
    hint = "fix the syntax at this line"
    if "cannot start any token" in problem and position is not None:
        lines = text.splitlines()
        line = lines[position.line - 1] if position.line <= len(lines) else ""
        char = line[position.column - 1: position.column] or "?"
        problem = f"found {char!r}, which cannot start a value"
        hint = "indent with spaces, not tabs" if char == "\t" else "put the value in quotes"
    elif "quoted scalar" in err.context and "end of stream" in problem and err.context_position:
        position, problem, hint = err.context_position, "a quoted value is never closed", "close the quote"
    elif "mapping values are not allowed" in problem:
        hint = "check this line's indentation, or quote a value that contains ': '"
    elif "could not find expected ':'" in problem:
        hint = "write each field as 'key: value'; check this line and the one above"
    elif "did not find expected key" in problem or "did not find expected '-'" in problem:
        hint = "check this line's indentation against the lines above"
    elif "undefined alias" in problem:
        hint = "define the anchor '&name' before using '*name'"
    elif "unacceptable character" in problem:
        hint = "remove the character; YAML files hold printable text only"
    return position, f"is not valid YAML: {problem} ({hint})"


def _with_source_text(doc: LoadedDocument) -> dict[str, Any]:
    """The document's data with env/label values that YAML typed turned back into what was written.

    ``PORT: 8080`` -> "8080", ``RATIO: 1.10`` -> "1.10" (not "1.1"), ``DEBUG: yes`` -> "yes".
    """
    data = {key: value for key, value in doc.data.items() if not _is_extension(key)}
    for section in _ENV_SECTIONS:
        values = data.get(section)
        if not isinstance(values, dict):
            continue
        coerced = {}
        for key, value in values.items():
            entry = doc.entry((section, key))
            typed = isinstance(value, bool | int | float | date)
            coerced[key] = entry.raw if typed and entry is not None and entry.raw is not None else value
        data[section] = coerced
    return data


def _sorted_and_capped(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    unique.sort(key=lambda p: (p.line or 0, p.column or 0, p.field))
    if len(unique) > MAX_PROBLEMS:
        left = len(unique) - MAX_PROBLEMS + 1
        unique = unique[: MAX_PROBLEMS - 1] + [Problem("", f"... and {left} more problems (fix the ones "
                                                           f"above first)")]
    return unique


# --- turning pydantic errors into problems --------------------------------------------------------

_SECTION_FIELDS: dict[str, type[BaseModel]] = {"": Manifest, "git": GitConfig, "python": PythonConfig}


def _format_path(path: Iterable[Any]) -> str:
    """``('git', 'branch')`` -> ``git.branch``; ``('system_dependencies', 2)`` -> ``...[2]``."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", step):
            text += f".{step}" if text else step
        else:
            text += f"[{_show(step, 40)}]"
    return text


def _kind(value: Any) -> str:
    """What a YAML value is, in words, without dumping it (it may be huge)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}" if len(str(value)) < 40 else "a number"
    if isinstance(value, str):
        return f"the text {_show(value)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime | date):
        return f"the date {value.isoformat()}"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def _example_value(value: Any) -> str:
    """An example value in YAML flow style, short enough for a hint."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_example_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_example_value(v) for v in value) + "]"
    return str(value)


def _field_info(path: tuple[Any, ...]) -> tuple[str, Any] | None:
    """(field name, example) for a known field path such as ('git', 'remote')."""
    if not path or not isinstance(path[-1], str):
        return None
    section = ".".join(path[:-1])
    model = _SECTION_FIELDS.get(section)
    if model is None or path[-1] not in model.model_fields:
        return None
    info = model.model_fields[path[-1]]
    if info.examples:
        return path[-1], info.examples[0]
    if path[-1] in _SECTION_EXAMPLES:
        return path[-1], _SECTION_EXAMPLES[path[-1]]
    return path[-1], None


_SECTION_EXAMPLES = {
    "git": {"remote": "https://github.com/you/your-job"},
    "python": {"entrypoint_path": "fatman_entrypoint.py"},
}


def _hint_line(path: tuple[Any, ...]) -> str:
    info = _field_info(path)
    if info is None or info[1] is None:
        return ""
    name, example = info
    under = f" under '{path[0]}:'" if len(path) > 1 else ""
    return f"{name}: {_example_value(example)}{under}"


def _to_problem(error: Mapping[str, Any], loc: tuple[Any, ...], doc: LoadedDocument) -> Problem:
    is_key = bool(loc) and loc[-1] == "[key]"
    path = tuple(step for step in loc if step != "[key]")
    field = _format_path(path)
    kind = error["type"]
    value = error.get("input")
    position = doc.locate(path, key=is_key or kind == "extra_forbidden")

    if kind == "racetrack":
        message = error["msg"]
    elif kind == "version_number":
        entry = doc.entry(path)
        written = entry.raw if entry is not None and entry.raw else error["ctx"]["text"]
        shown = written if len(written) <= 40 else written[:37] + "..."
        message = (f"{shown} is not a semantic version: YAML reads it as {_yaml_type(value)} "
                   f"(use MAJOR.MINOR.PATCH in quotes, e.g. '{_version_suggestion(written)}')")
    elif kind == "missing":
        position = doc.start_of(path[:-1])
        hint = _hint_line(path)
        message = f"is missing (add {hint})" if hint else "is missing (add it)"
    elif kind == "extra_forbidden":
        message = _unknown_field_message(path)
    else:
        message = _type_message(kind, path, value, doc)
    return Problem(field, message, position.line, position.column)


def _unknown_field_message(path: tuple[Any, ...]) -> str:
    name = str(path[-1])
    section = ".".join(str(p) for p in path[:-1])
    model = _SECTION_FIELDS.get(section)
    allowed = list(model.model_fields) if model else []
    near = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if near:
        return f"is not a known field (did you mean {near[0]!r}?)"
    # A field of another section written in the wrong place, e.g. 'branch' at the top level.
    for other, other_model in _SECTION_FIELDS.items():
        if other != section and name in other_model.model_fields:
            where = f"under '{other}:'" if other else "at the top level, not indented"
            return f"is not a known field here (it belongs {where})"
    for other, other_model in _SECTION_FIELDS.items():
        if other and other != section:
            close = difflib.get_close_matches(name, list(other_model.model_fields), n=1, cutoff=0.75)
            if close:
                return f"is not a known field here (did you mean {other}.{close[0]}?)"
    where = f"under '{section}:'" if section else "at the top level"
    # The key is echoed only when plain: an odd one (a newline, a control character) is not.
    plain = re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name)
    keep = (f", or name it '{EXTENSION_PREFIX}{name if plain else '...'}' to keep it as your own"
            if not section else "")
    return f"is not a known field (remove it{keep}; fields allowed {where}: {', '.join(allowed)})"


def _type_message(kind: str, path: tuple[Any, ...], value: Any, doc: LoadedDocument) -> str:
    hint = _hint_line(path)
    in_env = len(path) == 2 and path[0] in _ENV_SECTIONS
    if value is None:
        if in_env:
            key = path[1] if isinstance(path[1], str) and _is_identifier(path[1]) else "KEY"
            return f"has no value (write {key}: '' for an empty value)"
        return f"is empty (give a value, e.g. {hint})" if hint else "is empty (give a value)"
    if kind in ("model_type", "dict_type"):
        example = f"e.g. {hint}" if hint else "write 'key: value' entries indented below it"
        return f"must be a mapping, not {_kind(value)} ({example})"
    if kind == "list_type":
        example = f"e.g. {hint}" if hint else "write one '- item' per line"
        return f"must be a list, not {_kind(value)} ({example})"
    if kind == "string_type":
        entry = doc.entry(path)
        if isinstance(value, bool | int | float | date) and entry is not None and entry.raw:
            raw = entry.raw if len(entry.raw) <= 40 else entry.raw[:37] + "..."
            return f"YAML reads {raw} as {_yaml_type(value)}, not text (quote it: '{raw}')"
        if in_env:
            return f"must be text, not {_kind(value)} (write the value as one quoted string)"
        if hint:
            return f"must be text, not {_kind(value)} (e.g. {hint})"
        if path and isinstance(path[-1], int):
            info = _field_info(path[:-1])
            example = info[1][0] if info and isinstance(info[1], list) and info[1] else "value"
            return f"must be text, not {_kind(value)} (write each item as text, e.g. '- {example}')"
        return f"must be text, not {_kind(value)} (write it as text in quotes)"
    # Every error type our model can produce is handled above; keep a readable fallback anyway.
    return f"is not valid ({kind.replace('_', ' ')})"


def _yaml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime | date):
        return "a date"
    return "a value"
