"""Git LFS files of the job: fetched for the job's folder only, or named when they stay pointers.

A clone leaves every LFS file a pointer (``git_transport.shallow_clone``); a working tree may hold
pointers too, when it was cloned with ``GIT_LFS_SKIP_SMUDGE`` or without git-lfs. Either way
:func:`fetch_lfs_files` runs ``git lfs pull --include <git.directory>``, so a repository with huge
LFS files elsewhere does not download them. A job whose files need LFS (pointer files, or
``filter=lfs`` attributes) on a machine without git-lfs is an environment error saying what to
install; a repository without LFS never needs git-lfs.

Files that stay pointers (the LFS server lacks the objects, refuses our credentials, cannot be
reached) are a warning, not an error: the job may fetch them itself at start. The warning names
them and quotes git-lfs's own words (credentials masked) with the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import reporting
from .git_transport import LfsFailure, git_lfs_installed, git_lfs_missing, git_text, lfs_pull
from .listing import shortlist
from .source_files import relative_dir

__all__ = ["fetch_lfs_files", "is_lfs_pointer"]

_LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
# The spec caps a pointer at 1024 bytes.
_MAX_POINTER_SIZE = 1024
# Paths per `git check-attr` call, well inside any command line limit.
_CHECK_ATTR_BATCH = 500


def is_lfs_pointer(path: Path) -> bool:
    """A Git LFS pointer: a small text file that stands for a large one kept elsewhere."""
    try:
        if path.is_symlink() or path.stat().st_size > _MAX_POINTER_SIZE:
            return False
        with path.open("rb") as handle:
            return handle.read(len(_LFS_POINTER)) == _LFS_POINTER
    except OSError:
        return False


def fetch_lfs_files(repo_root: Path, job_root: Path, files: Sequence[str], *, shown: str,
                    local: bool) -> bool:
    """Fetch and check out the LFS files among ``files`` (relative to ``job_root``); return whether
    the job uses LFS at all (git then needs ``LFS_FILTER_CONFIG`` to see those files unchanged).

    ``shown`` names where the objects come from in messages (the remote, credentials masked).
    Raises :class:`EnvironmentFailure` (exit code 3) when the job needs git-lfs and it is missing.
    """
    pointers = [rel for rel in files if is_lfs_pointer(job_root / rel)]
    attributed = [] if pointers else _lfs_attributed(job_root, files)
    if not pointers and not attributed:
        return False
    directory = relative_dir(job_root, repo_root)
    if not git_lfs_installed(repo_root):
        raise git_lfs_missing(f"git.directory {directory!r} holds Git LFS files "
                              f"({shortlist(pointers or attributed)}), and git-lfs is not installed")
    if not pointers:
        return True  # their content is there already
    count = _files(len(pointers))
    if local:
        reporting.progress(f"fetching {count} of {directory} into the working tree "
                           f"(git lfs pull --include {directory})")
    else:
        reporting.progress(f"fetching {count} of {directory} from {shown}")
    failure = lfs_pull(repo_root, directory)
    remaining = [rel for rel in pointers if is_lfs_pointer(job_root / rel)]
    fetched = [rel for rel in pointers if rel not in remaining]
    if fetched:
        size = sum((job_root / rel).stat().st_size for rel in fetched)
        reporting.progress(f"fetched {_files(len(fetched))} ({_size(size)})")
        if local and not git_text(repo_root, "config", "--get", "filter.lfs.process"):
            reporting.warn(f"Git LFS is not set up in {repo_root}, so git shows the fetched files as "
                           "modified: run `git lfs install` once")
    if remaining:
        reporting.warn(_pointer_warning(remaining, failure, shown=shown, local=local))
    return True


def _pointer_warning(remaining: list[str], failure: LfsFailure | None, *, shown: str, local: bool) -> str:
    text = (f"{shortlist(remaining)}: Git LFS pointer file(s), not their content; the image holds the "
            "pointers (commit the files themselves, or fetch them in the job at start)")
    if failure is not None:
        where = "in the working tree" if local else f"from {shown}"
        text += f"; git lfs pull {where} failed: {failure.words} ({failure.fix})"
    return text


def _lfs_attributed(job_root: Path, files: Sequence[str]) -> list[str]:
    """Those of ``files`` that ``.gitattributes`` gives ``filter=lfs``."""
    # check-attr, not `ls-files ':(attr:filter=lfs)'`: run from a subfolder, git 2.39 misses the
    # attributes of a .gitattributes file inside it.
    attributed: list[str] = []
    for start in range(0, len(files), _CHECK_ATTR_BATCH):
        batch = files[start:start + _CHECK_ATTR_BATCH]
        output = git_text(job_root, "check-attr", "-z", "filter", "--", *batch) or ""
        fields = output.split("\0")
        attributed += [fields[i] for i in range(0, len(fields) - 2, 3) if fields[i + 2] == "lfs"]
    return sorted(attributed)


def _files(count: int) -> str:
    return f"{count} Git LFS file{'s' if count != 1 else ''}"


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    value, unit = size / 1000, "KB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"
