"""Secret ``.env`` files named by the manifest, and how their values merge over the plain ones.

``secret_build_env_file`` and ``secret_runtime_env_file`` live on the machine that runs the build,
next to the manifest (relative paths are relative to the manifest's folder), never in git. They use
the ".env" format read by python-dotenv::

    # Git username or email
    GITLAB_USERNAME = 'username@example.com'
    GITLAB_TOKEN = "Pa55w0rD"

Values are never put into error messages: a message names the file, the line and the key only.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from .errors import SecretsError
from .manifest import ENV_NAME_PATTERN, RESERVED_RUNTIME_ENV, Manifest

__all__ = ["TEMPLATE_SUFFIXES", "SecretNeed", "manifest_folder", "merge_env", "read_secret_env",
           "repository_root", "secret_env_path"]

SecretKind = Literal["build", "runtime"]
# Whether a command needs a secret file: a missing one is an error, is read only when it exists,
# or is not read at all.
SecretNeed = Literal["required", "if-present", "no"]

# Suffixes of a committed template of a secret file (`.env.build.dist` for `.env.build`), most
# usual first. The spec recommends `.dist`; the others are common enough to find as well.
TEMPLATE_SUFFIXES: tuple[str, ...] = (".dist", ".example", ".sample", ".template")

# The same names the manifest accepts in build_env/runtime_env.
_ENV_NAME = re.compile(ENV_NAME_PATTERN)

# How far up from the manifest's folder to look for the repository root holding a template.
_MAX_PARENT_DEPTH = 32


def manifest_folder(manifest_path: Path) -> Path:
    """The absolute folder of the manifest, which relative client-side paths start from.

    Symlinks are not followed: a ``fatman.yaml`` linked into a folder reads its neighbours there,
    as the user sees them (the same as ``docker compose`` and shells do).
    """
    return Path(os.path.abspath(manifest_path)).parent


def _field(kind: SecretKind) -> str:
    return f"secret_{kind}_env_file"


def secret_env_path(manifest: Manifest, manifest_path: Path, kind: SecretKind) -> Path | None:
    """The absolute path of the secret env file of ``kind``, or ``None`` when the manifest names none.

    Relative paths are relative to the manifest's folder; ``~`` is expanded because the file lives
    on the user's machine, not in the repository.
    """
    value = manifest.secret_build_env_file if kind == "build" else manifest.secret_runtime_env_file
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = manifest_folder(manifest_path) / path
    return Path(os.path.normpath(path))


def read_secret_env(manifest: Manifest, manifest_path: Path, kind: SecretKind,
                    need: SecretNeed = "required") -> dict[str, str]:
    """Read the secret env file of ``kind`` (``"build"`` or ``"runtime"``) named by the manifest.

    Returns ``{}`` when the manifest names no file, when ``need`` is ``"no"``, and when it is
    ``"if-present"`` and the file does not exist. Raises :class:`SecretsError` when the file is
    missing (pointing to a ``.dist``-style template next to it, next to the manifest or at the root
    of the repository when one exists), unreadable, or not valid: a line that cannot be parsed, a
    key without a value (``FOO`` alone), a key that is not a valid environment variable name, or (for
    runtime secrets) a name the image reserves, as for ``runtime_env``.
    """
    path = secret_env_path(manifest, manifest_path, kind)
    if path is None or need == "no" or (need == "if-present" and not path.exists()):
        return {}
    field = _field(kind)
    shown = _display(path, manifest_path)
    if not path.exists():
        raise SecretsError(
            f"{field}: {shown!r} not found (searched {path})",
            hint=_missing_hint(path, manifest_path, kind),
        )
    if path.is_dir():
        raise SecretsError(f"{field}: {shown!r} is a directory, not a .env file ({path})",
                           hint="point it to a file of NAME=value lines")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SecretsError(f"{field}: {shown!r} is not UTF-8 text ({path})",
                           hint="save it as UTF-8") from exc
    except OSError as exc:
        raise SecretsError(f"{field}: {shown!r} cannot be read: {exc.strerror} ({path})",
                           hint="check the file's permissions") from exc
    return _parse(text, field=field, shown=shown, kind=kind)


def _parse(text: str, *, field: str, shown: str, kind: SecretKind) -> dict[str, str]:
    """Validate every line with python-dotenv's parser, then read the values with ``dotenv_values``."""
    problems: list[str] = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            # Not quoting the line: it may hold a secret.
            problems.append(f"line {line}: cannot be parsed (expected NAME=value, with quotes around "
                            "values holding spaces or '#')")
        elif binding.key is None:
            continue  # a comment or a blank line
        elif not _ENV_NAME.fullmatch(binding.key):
            # Not quoting the name either: what dotenv takes for one may be a pasted token, or the
            # second line of a value that spans lines without quotes (the rest of a key).
            problems.append(f"line {line}: the name is not a valid environment variable name (letters, "
                            "digits and '_', not starting with a digit; put quotes around a value that "
                            "spans several lines)")
        elif kind == "runtime" and binding.key in RESERVED_RUNTIME_ENV:
            # The same rule as runtime_env: the image sets these, and overriding them breaks it. The
            # name is one of ours, so it may be shown.
            problems.append(f"line {line}: {binding.key!r} is set by the image and cannot be overridden "
                            f"(reserved: {', '.join(sorted(RESERVED_RUNTIME_ENV))})")
        elif binding.value is None:
            # A line without '=' is as often a pasted value as a name: never shown.
            problems.append(f"line {line}: has no '=' and no value (write NAME=value, or NAME= for an "
                            "empty one)")
    if problems:
        raise SecretsError(f"{field}: {shown!r} is not a valid .env file:\n  " + "\n  ".join(problems))
    # interpolate=False: python-dotenv would otherwise expand ${VAR} from this machine's environment,
    # so the same secret file would mean different things on a laptop and in CI, and a value that
    # happens to contain "${...}" (a password) would be silently altered. The file means what it says.
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {key: value for key, value in values.items() if value is not None}


def missing_secret_files(manifest: Manifest, manifest_path: Path,
                         kinds: tuple[SecretKind, ...] = ("build", "runtime")) -> list[str]:
    """A warning for each secret env file (of ``kinds``) the manifest names that this machine does
    not have: ``validate`` and ``render`` pass without it, but a build (build secrets) or a start
    (runtime secrets) fails."""
    warnings = []
    needs: tuple[tuple[SecretKind, str], ...] = (
        ("build", "a build"),
        ("runtime", "run, test and --smoke-test"),
    )
    for kind, needed_by in needs:
        if kind not in kinds:
            continue
        path = secret_env_path(manifest, manifest_path, kind)
        if path is not None and not path.exists():
            warnings.append(f"{_field(kind)}: {_display(path, manifest_path)!r} does not exist here; "
                            f"{needed_by} will need it ({_missing_hint(path, manifest_path, kind)})")
    return warnings


def merge_env(plain: Mapping[str, str], secret: Mapping[str, str]) -> dict[str, str]:
    """``plain`` (``build_env``/``runtime_env``) overlaid with ``secret``: secret values win.

    This is the spec's precedence: "secret values take precedence before the former ones".
    """
    merged = dict(plain)
    merged.update(secret)
    return merged


def _display(path: Path, manifest_path: Path) -> str:
    """The path as the user would write it: relative to the manifest's folder when under it."""
    base = manifest_folder(manifest_path)
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _missing_hint(path: Path, manifest_path: Path, kind: SecretKind) -> str:
    template = find_template(path, manifest_path)
    name = _display(path, manifest_path)
    if template is not None:
        return (f"copy {_display(template, manifest_path)} to {name} and fill it in; "
                f"keep {path.name} out of git")
    return (f"create {name} with one NAME=value line per secret {kind} variable; it is read from this "
            f"machine, never from git (commit a {path.name}.dist template so others know what to fill in)")


def find_template(path: Path, manifest_path: Path) -> Path | None:
    """A committed template of the secret file ``path`` (``<name>.dist`` and the like), if one exists.

    Looks next to the file, in the manifest's folder, then at the root of the git repository holding
    the manifest (the nearest parent with a ``.git``).
    """
    folders: list[Path] = [path.parent, manifest_folder(manifest_path)]
    repo_root = repository_root(manifest_folder(manifest_path))
    if repo_root is not None:
        folders.append(repo_root)
    seen: set[Path] = set()
    for folder in folders:
        if folder in seen:
            continue
        seen.add(folder)
        for suffix in TEMPLATE_SUFFIXES:
            candidate = folder / f"{path.name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def repository_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding a ``.git`` (a checkout's root), if any."""
    current = start
    for _ in range(_MAX_PARENT_DEPTH):
        if (current / ".git").exists():
            return current
        if current.parent == current:
            return None
        current = current.parent
    return None
