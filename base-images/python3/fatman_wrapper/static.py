"""Resolving a requested static path to a file, never anything outside what the job named.

Every check works on real paths (symlinks resolved): a request may only end at a regular file that
is the named file itself or lies inside the named directory. ``..`` segments, absolute paths,
backslashes, NUL bytes and symlinks leading out all resolve to ``None`` (answered 404).
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class StaticEntry:
    """A file or directory a job exposes at ``GET /api/v1/<path>``."""

    path: str  # URL path without the leading slash
    target: str  # as the user wrote it, relative to the job root
    mimetype: str | None
    problem: str | None = None  # why it could not be served at load (missing, outside the root)
    is_dir: bool = False  # a folder at load: its files are served under "<path>/"
    has_index: bool = False  # a folder with index.html at load, served at "<path>/"


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _safe_relative(sub: str) -> bool:
    if not sub:
        return True
    if "\\" in sub or "\x00" in sub or sub.startswith("/"):
        return False
    return all(seg not in ("", ".", "..") for seg in sub.split("/"))


def resolve_under(directory: str, sub: str, *, folder: bool = False) -> str | None:
    """The real path of ``directory/sub`` if it is a regular file (with ``folder``: a folder)
    inside ``directory``, else None.

    ``directory`` must already be a real path.
    """
    if not _safe_relative(sub):
        return None
    candidate = os.path.realpath(os.path.join(directory, *sub.split("/")) if sub else directory)
    if not _inside(candidate, directory):
        return None  # a symlink led out
    found = os.path.isdir(candidate) if folder else os.path.isfile(candidate)
    return candidate if found else None


INDEX = "index.html"


@dataclasses.dataclass(frozen=True)
class TargetInfo:
    """What a static endpoint's target is when the job loads."""

    problem: str | None  # why it cannot be served now (missing, outside the root), else None
    is_dir: bool = False
    has_index: bool = False  # a folder with an index.html, served at "<endpoint>/"


def inspect_target(root: str, target: str) -> TargetInfo:
    """Check a static endpoint's ``target`` against the job ``root`` (a real path).

    A target outside the root is never served; a missing one is served once it exists (the job may
    make it later), so the caller only warns.
    """
    full = os.path.realpath(os.path.join(root, target))
    if not _inside(full, root):
        return TargetInfo("which is outside the job root and is never served")
    if not os.path.exists(full):
        return TargetInfo("which does not exist in the job root (it answers 404 until it does)")
    if os.path.isdir(full):
        return TargetInfo(None, is_dir=True, has_index=resolve_under(full, INDEX) is not None)
    return TargetInfo(None)


@dataclasses.dataclass(frozen=True)
class Found:
    """The answer to a static GET: a file to send, or a redirect to the folder's slash form."""

    file: str | None = None  # real path of the file to send
    mimetype: str | None = None
    redirect: bool = False  # a folder asked for without its trailing slash: add it


class StaticFiles:
    """The job's static endpoints, resolved against its root at request time.

    Files may be produced by the job's ``__init__`` (a downloaded model card), so existence is
    checked per request; the configured targets themselves must lie inside the job root.

    Folders behave as on a web server: ``<folder>/`` serves its ``index.html``, the path without
    the slash redirects there (so the page's relative links resolve inside the folder), and a
    folder without ``index.html`` is 404 either way: there are no listings.
    """

    def __init__(self, root: str, entries: dict[str, StaticEntry]) -> None:
        self.root = os.path.realpath(root)
        # Longest paths first so "/docs/api" wins over "/docs" for "docs/api/x".
        self.entries = sorted(entries.values(), key=lambda e: len(e.path), reverse=True)

    def match(self, path: str) -> tuple[StaticEntry, str] | None:
        """The entry claiming ``/api/v1/<path>`` and the rest of the path under it, or None."""
        for entry in self.entries:
            if path == entry.path:
                return entry, ""
            if path.startswith(entry.path + "/"):
                return entry, path[len(entry.path) + 1 :]
        return None

    def resolve(self, path: str) -> Found | None:
        """What ``GET /api/v1/<path>`` answers, or None for 404."""
        matched = self.match(path)
        if matched is None:
            return None
        entry, sub = matched
        target = os.path.realpath(os.path.join(self.root, entry.target))
        if not _inside(target, self.root):
            return None  # the job named something outside its own root
        if not os.path.isdir(target):
            if path == entry.path and os.path.isfile(target):
                return Found(target, entry.mimetype)
            return None  # a file has nothing under it, not even "<file>/"
        slash = path == entry.path + "/" or sub.endswith("/")
        relative = sub[:-1] if sub.endswith("/") else sub
        if relative:
            found = resolve_under(target, relative)
            if found is not None:
                return None if slash else Found(found)
        folder = resolve_under(target, relative, folder=True)
        index = resolve_under(folder, INDEX) if folder is not None else None
        if index is None:
            return None
        return Found(index) if slash else Found(redirect=True)
