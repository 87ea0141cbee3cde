"""The files a manifest names, checked against the fetched tree without running the job's code.

The entrypoint file exists and goes into the image, the named entrypoint class is defined in it
(read with :mod:`ast`; the job's code is never imported on the host), and the requirements file
exists. Each failure names the path searched and, where it can, the file meant.
"""

from __future__ import annotations

import ast
import difflib
import os
import posixpath
import sys
from pathlib import Path, PurePosixPath

from . import reporting
from .errors import SourceError
from .manifest import Manifest
from .source import JobSource
from .source_files import credential_warnings, inside, resolve


def check_job_files(manifest: Manifest, source: JobSource) -> None:
    """Raise :class:`SourceError` for a named file that is missing or unusable; warn about the rest.

    An entrypoint this Python cannot parse is a warning, not an error: the job runs on the image's
    Python, which may be newer (``type X = ...`` needs 3.12); the build's import check decides.
    Job files holding the credentials written in ``git.remote`` are warned about too.
    """
    field = manifest.python_field
    entrypoint = _check_file(field("entrypoint_path"), manifest.python.entrypoint_path, source)
    tree = _parse_entrypoint(entrypoint, manifest.python.entrypoint_path, source, field("entrypoint_path"))
    if isinstance(tree, str):
        reporting.warn(tree)
    elif manifest.python.entrypoint_class:
        _check_class(tree, manifest.python.entrypoint_class, manifest.python.entrypoint_path, source,
                     field("entrypoint_class"))
    if manifest.python.requirements_path:
        _check_file(field("requirements_path"), manifest.python.requirements_path, source)
    for warning in credential_warnings(source.job_root, source.files, manifest.git.remote):
        reporting.warn(warning)


def _check_file(field_name: str, value: str, source: JobSource) -> Path:
    rel = PurePosixPath(value)
    if rel.is_absolute() or ".." in rel.parts:
        raise SourceError(f"{field_name}: {value!r} must be a path inside git.directory",
                          hint="write it relative to git.directory, without '..'")
    normalized = posixpath.normpath(rel.as_posix())
    searched = source.repo_path(normalized)
    where = f"{source.where}:{source.directory}"
    path = source.job_root / normalized
    if not os.path.lexists(path):
        raise SourceError(f"{field_name}: {value!r} not found in {where} (searched {searched})",
                          hint=_file_hint(source, normalized))
    resolved = resolve(path)
    if resolved is None or not inside(resolved, source.repo_root.resolve()):
        raise SourceError(f"{field_name}: {value!r} in {where} is a symlink that leaves the repository "
                          f"(searched {searched})",
                          hint="commit the file itself instead of a link to it")
    if not inside(resolved, source.job_root):
        raise SourceError(f"{field_name}: {value!r} in {where} is a symlink to a file outside git.directory, "
                          f"which the image does not hold (searched {searched})",
                          hint="move or copy the file into git.directory")
    if resolved.is_dir():
        raise SourceError(f"{field_name}: {value!r} in {where} is a directory, not a file "
                          f"(searched {searched})")
    if not resolved.exists():
        raise SourceError(f"{field_name}: {value!r} in {where} is a broken symlink (searched {searched})")
    if normalized not in source.files:
        how = ("git ignores it (it would not be in the image: commit it or change .gitignore)" if source.local
               else "it is not part of the job's files")
        raise SourceError(f"{field_name}: {value!r} exists in {where} but {how} (searched {searched})")
    return resolved


def _file_hint(source: JobSource, missing: str) -> str:
    hint = "paths are relative to git.directory"
    close = difflib.get_close_matches(missing, source.files, n=1)
    if close:
        return f"did you mean {close[0]!r}? ({hint})"
    basename = PurePosixPath(missing).name
    elsewhere = [f for f in source.files if PurePosixPath(f).name == basename]
    if elsewhere:
        return f"found {elsewhere[0]!r} ({hint})"
    return hint


def _parse_entrypoint(path: Path, value: str, source: JobSource, field_name: str) -> ast.Module | str:
    """The entrypoint's syntax tree, or a warning when this Python cannot parse it."""
    searched = source.repo_path(posixpath.normpath(value))
    try:
        return ast.parse(path.read_bytes(), filename=searched)
    except SyntaxError as exc:
        return (f"{searched} does not parse with Python {sys.version_info.major}.{sys.version_info.minor} "
                f"(line {exc.lineno}: {exc.msg}); the build's import check, on the image's Python, decides")
    except (ValueError, OSError) as exc:  # null bytes, unreadable
        raise SourceError(f"{field_name}: {searched} cannot be read as Python: {exc}") from exc


def _top_level_names(body: list[ast.stmt]) -> tuple[set[str], set[str], bool]:
    """(classes defined, other names bound, has a star import) at module level, through if/try/with."""
    classes: set[str] = set()
    others: set[str] = set()
    star = False
    for node in body:
        if isinstance(node, ast.ClassDef):
            classes.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    star = True
                else:
                    others.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            others.update(t.id for t in targets if isinstance(t, ast.Name))
        nested: list[list[ast.stmt]] = []
        if isinstance(node, ast.If | ast.For | ast.While):
            nested = [node.body, node.orelse]
        elif isinstance(node, ast.With):
            nested = [node.body]
        elif isinstance(node, ast.Try):
            nested = [node.body, node.orelse, node.finalbody, *[h.body for h in node.handlers]]
        for block in nested:
            c, o, s = _top_level_names(block)
            classes |= c
            others |= o
            star = star or s
    return classes, others, star


def _check_class(tree: ast.Module, name: str, value: str, source: JobSource, field_name: str) -> None:
    classes, others, star = _top_level_names(tree.body)
    # A class imported or assigned at module level is a valid entrypoint too; we cannot follow it
    # without importing user code, so accept the name being bound.
    if name in classes or name in others or star:
        return
    searched = source.repo_path(posixpath.normpath(value))
    close = difflib.get_close_matches(name, sorted(classes), n=1)
    found = f"classes defined there: {', '.join(sorted(classes))}" if classes else "it defines no class"
    hint = (f"did you mean {close[0]!r}? " if close else "") + found
    raise SourceError(f"{field_name}: {name!r} is not defined in {searched} "
                      f"({source.where}:{source.directory})", hint=hint)
