"""What a job's pip requirements file needs from the job's source tree.

The builder stage installs requirements before the job's code is copied, so that a change to the code
alone does not re-run pip. That only works when pip needs nothing but the requirements files
themselves. This module reads a requirements file the way pip does for the parts that matter here:
the files it includes (``-r``/``-c``) and whether it installs local paths (``-e .``, ``./libs/x``,
``file:`` URLs), which need the whole source in the builder stage.

pip has no public API for parsing requirements files (``pip._internal`` is explicitly not one), so
this small reader covers the syntax documented in pip's "Requirements File Format".
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from .errors import RenderError

_INCLUDE_OPTIONS = {
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
}
_EDITABLE_OPTIONS = ("-e", "--editable")
_FIND_LINKS_OPTIONS = ("-f", "--find-links")
# " #" starts a comment in pip's format (a "#" glued to a token is part of a URL fragment).
_COMMENT = re.compile(r"(^|\s+)#.*$")


@dataclass(frozen=True)
class RequirementsPlan:
    """Files (relative to the job root) that pip reads, whether it installs local paths, and whether
    it installs from version control (``git+https://...``), which needs git in the install step."""

    files: tuple[str, ...]
    needs_source: bool
    needs_git: bool = False


# A requirement from a git repository: "git+https://...", "name @ git+ssh://...", "-e git+...".
_GIT_REQUIREMENT = re.compile(r"(^|@\s*)git\+[a-z]+://", re.I)


def _logical_lines(text: str) -> list[str]:
    """Join backslash-continued lines and drop comments, as pip does."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    if pending.strip():
        lines.append(_COMMENT.sub("", pending).strip())
    return lines


def _option_value(line: str, options: tuple[str, ...] | dict[str, str]) -> str | None:
    for opt in options:
        if line == opt:
            return ""
        for sep in (" ", "=", "\t"):
            if line.startswith(opt + sep):
                return line[len(opt) + 1 :].strip()
        # short options may be glued to their value: -rbase.txt
        if len(opt) == 2 and line.startswith(opt) and not line.startswith(opt + "-"):
            return line[2:].strip()
    return None


def _is_local_path(spec: str) -> bool:
    spec = spec.strip()
    if spec.startswith(("./", "../", "/", "file:", "~")) or spec in (".", ".."):
        return True
    # "name @ file:///..." direct references
    return bool(re.search(r"@\s*file:", spec))


def plan_requirements(  # noqa: ANN001 - read_file: a callable, described below
    requirements_path: str, read_file, field_name: str = "python.requirements_path"
) -> RequirementsPlan:
    """Follow ``-r``/``-c`` includes from ``requirements_path`` (relative to the job root);
    ``field_name``: the manifest's name for it, for messages.

    ``read_file(relpath) -> str | None`` returns a file's text, or None when the job has no such
    file. Includes are resolved relative to the including file, like pip does, and must stay inside
    the job root because only the job root goes into the build context.
    """
    seen: list[str] = []
    needs_source = False
    needs_git = False
    queue = [posixpath.normpath(requirements_path)]
    while queue:
        rel = queue.pop(0)
        if rel in seen:
            continue
        text = read_file(rel)
        if text is None:
            raise RenderError(
                f"requirements file '{rel}' is not in the job's source",
                hint=f"commit it, or fix {field_name} / the -r line that names it",
            )
        seen.append(rel)
        base = posixpath.dirname(rel)
        for line in _logical_lines(text):
            included = _option_value(line, _INCLUDE_OPTIONS)
            if included is not None:
                if re.match(r"^[a-z]+://", included):
                    continue  # a remote requirements file: pip fetches it itself
                target = posixpath.normpath(posixpath.join(base, included))
                if target.startswith("../") or target == ".." or PurePosixPath(included).is_absolute():
                    raise RenderError(
                        f"'{rel}' includes '{included}', which is outside the job's directory",
                        hint="keep every requirements file the job uses under git.directory",
                    )
                queue.append(target)
                continue
            editable = _option_value(line, _EDITABLE_OPTIONS)
            if editable is not None:
                if _is_local_path(editable):
                    needs_source = True
                needs_git = needs_git or bool(_GIT_REQUIREMENT.search(editable))
                continue
            links = _option_value(line, _FIND_LINKS_OPTIONS)
            if links is not None:
                if not re.match(r"^[a-z]+://", links):
                    needs_source = True  # a folder of wheels kept in the repository
                continue
            if line.startswith("-"):
                continue  # other options: --index-url, --extra-index-url, --find-links, hashes...
            if _is_local_path(line):
                needs_source = True
            needs_git = needs_git or bool(_GIT_REQUIREMENT.search(line))
    return RequirementsPlan(files=tuple(seen), needs_source=needs_source, needs_git=needs_git)


# pip expands ${NAME} (upper case, digits, '_') in requirements files from its environment.
_ENV_REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)\}")
# Set in the builder stage by the base and root images, so a requirements file may use them.
IMAGE_ENV = frozenset({
    "PATH", "HOME", "HOSTNAME", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
    "FATMAN_PORT", "LANG", "GPG_KEY", "PYTHON_VERSION", "PYTHON_SHA256", "PIP_CERT",
})


def undefined_references(texts: dict[str, str], defined: set[str]) -> dict[str, list[str]]:
    """``${NAME}`` references per file (in order, once each) that nothing defines: pip would then
    use the text as written, and fail on a URL with ``${HOST}`` in it far from the cause."""
    missing: dict[str, list[str]] = {}
    for rel, text in texts.items():
        for line in _logical_lines(text):
            for name in _ENV_REFERENCE.findall(line):
                if name not in defined and name not in IMAGE_ENV and name not in missing.get(rel, []):
                    missing.setdefault(rel, []).append(name)
    return missing
