"""Resolving a requested static path to a file, never anything outside what the job named.

Every check works on real paths (symlinks resolved): a request may only end at a regular file that
is the named file itself or lies inside the named directory. ``..`` segments, absolute paths,
backslashes, NUL bytes and symlinks leading out all resolve to ``None`` (answered 404).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: loader imports this module
    from .loader import StaticEntry


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _safe_relative(sub: str) -> bool:
    if not sub:
        return True
    if "\\" in sub or "\x00" in sub or sub.startswith("/"):
        return False
    return all(seg not in ("", ".", "..") for seg in sub.split("/"))


def resolve_under(directory: str, sub: str, *, index: str | None = None) -> str | None:
    """The real path of ``directory/sub`` if it is a regular file inside ``directory``, else None.

    ``directory`` must already be a real path. ``index`` is served when ``sub`` names a directory.
    """
    if not _safe_relative(sub):
        return None
    candidate = os.path.realpath(os.path.join(directory, *sub.split("/")) if sub else directory)
    if not _inside(candidate, directory):
        return None  # a symlink led out
    if os.path.isdir(candidate) and index:
        candidate = os.path.realpath(os.path.join(candidate, index))
        if not _inside(candidate, directory):
            return None
    return candidate if os.path.isfile(candidate) else None


def target_problem(root: str, target: str) -> str | None:
    """Why a static endpoint's ``target`` cannot be served from the job ``root`` now, or None.

    ``root`` must be a real path. A target outside the root is never served; a missing one is
    served once it exists (the job may make it later), so the caller only warns.
    """
    full = os.path.realpath(os.path.join(root, target))
    if not _inside(full, root):
        return "which is outside the job root and is never served"
    if not os.path.exists(full):
        return "which does not exist in the job root (it answers 404 until it does)"
    return None


class StaticFiles:
    """The job's static endpoints, resolved against its root at request time.

    Files may be produced by the job's ``__init__`` (a downloaded model card), so existence is
    checked per request; the configured targets themselves must lie inside the job root.
    """

    def __init__(self, root: str, entries: dict[str, StaticEntry]) -> None:
        self.root = os.path.realpath(root)
        # Longest paths first so "/docs/api" wins over "/docs" for "docs/api/x".
        self.entries = sorted(entries.values(), key=lambda e: len(e.path), reverse=True)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def resolve(self, path: str) -> tuple[str, str | None] | None:
        """``(real file path, mimetype or None)`` for ``GET /api/v1/<path>``, or None for 404."""
        for entry in self.entries:
            if path == entry.path:
                sub = ""
            elif path.startswith(entry.path + "/"):
                sub = path[len(entry.path) + 1 :]
            else:
                continue
            target = os.path.realpath(os.path.join(self.root, entry.target))
            if not _inside(target, self.root):
                return None  # the job named something outside its own root
            if os.path.isdir(target):
                found = resolve_under(target, sub, index="index.html")
                return (found, None) if found else None
            if sub == "" and os.path.isfile(target):
                return target, entry.mimetype
            return None
        return None
