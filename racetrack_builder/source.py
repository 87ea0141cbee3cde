"""The job's files: a shallow single-branch clone of ``git.remote``, or (``local=True``) the git working
tree that holds the manifest.

Either way the result is a :class:`JobSource`: the repository root, the job root (``git.directory``
inside it) and the exact list of files that go into the image. Both ways apply the same rules
(``source_files.py``), so a job builds the same from a clone and from a clean working tree. How git
is driven and its failures explained is ``git_transport.py``; the working tree's own checks
(uncommitted changes, another remote) are ``working_tree.py``; the files the manifest names are
checked by ``job_files.py``.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import reporting
from .errors import disk_error
from .git_transport import git_text, require_git, shallow_clone
from .git_urls import mask_credentials, resolve_remote
from .lfs import fetch_lfs_files
from .manifest import Manifest
from .secrets import SecretKind, manifest_folder, secret_env_path
from .source_files import job_root as resolve_job_root
from .source_files import ls_files, relative_dir, select_files

__all__ = ["JobSource", "open_source", "secret_paths"]

WORKSPACE_PREFIX = "racetrack-build-"
# What messages call the branch cloned when git.branch is not given (a job.yaml may leave it out).
DEFAULT_BRANCH = "the remote's default branch"


@dataclass(frozen=True)
class JobSource:
    """Where the job's files are and which of them go into the image."""

    repo_root: Path
    """Root of the checkout: the clone workspace, or the working tree with ``local=True``."""
    job_root: Path
    """``repo_root / git.directory``, resolved, guaranteed inside ``repo_root``."""
    files: tuple[str, ...]
    """Sorted POSIX paths relative to ``job_root`` of what goes into the image (see source_files.py)."""
    commit: str | None
    """HEAD's SHA (``None`` only for a working tree without any commit yet)."""
    remote: str
    """What was cloned, as written in the manifest but with credentials masked; with ``local=True``
    the working tree's path."""
    branch: str | None
    """The branch cloned (without git.branch, the remote's default one, as the clone named it), or the
    working tree's current branch (``None`` when HEAD is detached)."""
    dirty: bool
    """``local=True`` only: the job's folder has uncommitted changes (tracked files modified or staged,
    untracked files git does not ignore)."""
    local: bool = False
    """Whether this is a working tree (``--local``) rather than a clone."""

    @property
    def directory(self) -> str:
        """``job_root`` relative to ``repo_root`` as a POSIX path (``"."`` for the root)."""
        return relative_dir(self.job_root, self.repo_root)

    @property
    def where(self) -> str:
        """``<remote>@<branch>`` for messages."""
        return f"{self.remote}@{self.branch or 'HEAD'}"

    def repo_path(self, rel: str) -> str:
        """A path relative to ``job_root`` as a path relative to ``repo_root``, for messages."""
        return posixpath.normpath(posixpath.join(self.directory, rel))


def secret_paths(manifest: Manifest, manifest_path: Path) -> list[Path]:
    """The secret env files the manifest names, as absolute paths on this machine."""
    kinds: tuple[SecretKind, ...] = ("build", "runtime")
    paths = [secret_env_path(manifest, manifest_path, kind) for kind in kinds]
    return [p for p in paths if p is not None]


@contextlib.contextmanager
def open_source(manifest: Manifest, manifest_path: Path, *, local: bool = False) -> Iterator[JobSource]:
    """Clone ``git.remote`` at ``git.branch`` (or take the working tree with ``local=True``) and yield
    the :class:`JobSource`; the temporary workspace of a clone is removed on every exit path,
    ``KeyboardInterrupt`` included. Progress and warnings go to the reporter.

    Git LFS files of ``git.directory`` are fetched (only those: see ``lfs.py``).

    Raises :class:`SourceError` (missing branch or directory, paths leaving the repository, not a
    git working tree), :class:`RemoteUnreachable`, :class:`AuthenticationRefused` and
    :class:`EnvironmentFailure` (git is not installed, or the job has Git LFS files and git-lfs
    is not installed).
    """
    require_git("reading the job's working tree (git ls-files)" if local else "cloning git.remote")
    if local:
        from .working_tree import working_tree_source

        yield working_tree_source(manifest, manifest_path)
        return
    try:
        workspace = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX))
    except OSError as exc:
        raise disk_error(exc, "creating the clone workspace", tempfile.gettempdir()) from exc
    try:
        yield _clone(manifest, manifest_path, workspace)
    finally:
        _remove_tree(workspace)


def _clone(manifest: Manifest, manifest_path: Path, workspace: Path) -> JobSource:
    remote, branch = manifest.git.remote, manifest.git.branch
    shown = mask_credentials(remote)
    checkout = workspace / "repo"
    # A job.yaml may leave git.branch out: the clone takes the remote's default branch (its HEAD).
    reporting.progress(f"cloning {shown} ({f'branch {branch}' if branch else DEFAULT_BRANCH})")
    commit = shallow_clone(resolve_remote(remote, manifest_path), checkout, branch=branch, shown=shown,
                           workspace=workspace)
    cloned: str | None = branch
    if not branch:
        cloned = git_text(checkout, "symbolic-ref", "--quiet", "--short", "HEAD") or None
        where = f"{shown}@{cloned or 'HEAD'}"
        reporting.progress(f"cloned {where} ({DEFAULT_BRANCH}) at {commit[:12]}")
    else:
        where = f"{shown}@{branch}"
        reporting.progress(f"cloned {where} at {commit[:12]}")
    job_root = resolve_job_root(checkout, manifest.git.directory, where)
    # The secret files live on this machine, relative to the manifest's folder; a copy the repository
    # commits must not reach the image either. The manifest's folder stands for the same folder of the
    # clone as it is of the checkout holding the manifest (what --local reads, where the files
    # themselves are left out). A manifest outside any checkout conventionally sits at the repository
    # root or in git.directory: both are taken, since leaving out one file too many costs nothing.
    # Paths below are relative to the repository root, then re-based on the job root (git.directory),
    # which is what select_files compares with.
    from .secrets import repository_root

    manifest_dir = manifest_folder(manifest_path)
    directory = relative_dir(job_root, checkout)
    places = {".", directory}
    if (manifest_repo := repository_root(manifest_dir)) is not None:
        places.add(manifest_dir.relative_to(manifest_repo).as_posix())
    excluded_rel = set()
    for secret in secret_paths(manifest, manifest_path):
        rel = Path(os.path.relpath(secret, manifest_dir)).as_posix()
        for place in places:
            in_job = posixpath.relpath(posixpath.normpath(posixpath.join(place, rel)), directory)
            if in_job != ".." and not in_job.startswith("../"):
                excluded_rel.add(in_job)
    selection = select_files(ls_files(job_root, local=False), repo_root=checkout, job_root=job_root,
                             excluded=set(), excluded_rel=excluded_rel, where=where)
    for warning in selection.warnings:
        reporting.warn(warning)
    fetch_lfs_files(checkout, job_root, selection.files, shown=shown, local=False)
    return JobSource(repo_root=checkout, job_root=job_root, files=selection.files, commit=commit,
                     remote=shown, branch=cloned, dirty=False, local=False)


def _remove_tree(path: Path) -> None:
    """Remove ``path`` entirely, making read-only entries writable when that is what stops us."""

    def _retry(func: Callable[..., Any], target: str, exc: object) -> None:
        # onerror (3.11) passes sys.exc_info(), onexc (3.12+) the exception itself.
        error = exc[1] if isinstance(exc, tuple) else exc
        if isinstance(error, FileNotFoundError):
            return  # already gone, e.g. removed by an interrupted git cleaning up after itself
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), stat.S_IRWXU)
        with contextlib.suppress(OSError):
            os.chmod(target, stat.S_IRWXU)
        func(target)

    try:
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=_retry)
        else:
            shutil.rmtree(path, onerror=_retry)
    except FileNotFoundError:
        pass
    except OSError as exc:
        # Never let a failed cleanup hide the error that brought us here.
        reporting.warn(f"could not remove the temporary workspace {path}: {exc}")
