"""``--local``: the git working tree holding the manifest as the job's source, as it is.

The files are chosen by the same rules as for a clone (``source_files.py``), and Git LFS pointers
of the job's folder are fetched and checked out there (``lfs.py``). What only a working
tree can have is warned about: uncommitted changes (the image is then labelled dirty), another
branch checked out than ``git.branch``, and a working tree that is not a clone of ``git.remote``
(the image's labels would name a commit that remote does not have).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import reporting
from .errors import SourceError
from .git_transport import LFS_FILTER_CONFIG, git_text
from .git_urls import mask_credentials, repository_key
from .lfs import fetch_lfs_files
from .listing import shortlist
from .manifest import Manifest
from .secrets import manifest_folder
from .source import JobSource, secret_paths
from .source_files import job_root as resolve_job_root
from .source_files import ls_files, resolve, select_files


def working_tree_source(manifest: Manifest, manifest_path: Path) -> JobSource:
    """The working tree holding the manifest, as a :class:`JobSource`; warnings go to the reporter."""
    manifest_dir = manifest_folder(manifest_path)
    toplevel = git_text(manifest_dir, "rev-parse", "--show-toplevel")
    if not toplevel:
        raise SourceError(
            f"--local: {manifest_dir} is not inside a git working tree",
            hint="run `git init` and `git add` your job there, or build without --local to clone git.remote",
        )
    repo_root = Path(toplevel).resolve()
    commit = git_text(repo_root, "rev-parse", "--verify", "--quiet", "HEAD") or None
    # Not --short: with a tag of the same name it answers "heads/NAME".
    head_ref = git_text(repo_root, "symbolic-ref", "--quiet", "HEAD") or ""
    branch = head_ref.removeprefix("refs/heads/") or None
    where = f"{repo_root}@{branch or 'HEAD'}"
    reporting.progress(f"using the working tree {repo_root} (branch {branch or 'detached HEAD'}"
                       f"{', commit ' + commit[:12] if commit else ', no commit yet'})")
    job_root = resolve_job_root(repo_root, manifest.git.directory, where)
    secrets = secret_paths(manifest, manifest_path)
    excluded = {Path(os.path.abspath(p)) for p in secrets} | {r for p in secrets if (r := resolve(p))}
    selection = select_files(ls_files(job_root, local=True), repo_root=repo_root, job_root=job_root,
                             excluded=excluded, excluded_rel=set(), where=where)
    # Before the status: pointers the tree was cloned with become content, and only git's LFS filter
    # (configured or not where it was cloned) sees those files as unchanged.
    uses_lfs = fetch_lfs_files(repo_root, job_root, selection.files, shown=str(repo_root), local=True)
    changes = _uncommitted_changes(job_root, repo_root, excluded, lfs=uses_lfs)
    warnings = list(selection.warnings)
    # Without git.branch (a job.yaml may leave it out) any branch is the one meant: the remote's
    # default branch, which this tree cannot tell.
    if branch and manifest.git.branch and branch != manifest.git.branch:
        warnings.append(f"the working tree is on branch {branch!r} but git.branch is "
                        f"{manifest.git.branch!r}; building the working tree as it is")
    mismatch = _foreign_remote(repo_root, manifest.git.remote, manifest_dir)
    if mismatch:
        warnings.append(mismatch)
    if changes:
        paths = f"{len(changes)} path{'s' if len(changes) != 1 else ''}"
        warnings.append(f"building uncommitted changes ({paths}: {shortlist(changes)}); commit them so a "
                        "build from git.remote gives the same image")
    for warning in warnings:
        reporting.warn(warning)
    return JobSource(repo_root=repo_root, job_root=job_root, files=selection.files, commit=commit,
                     remote=str(repo_root), branch=branch, dirty=bool(changes), local=True)


def _foreign_remote(repo_root: Path, remote: str, manifest_dir: Path) -> str | None:
    """A warning when the working tree is not a clone of ``git.remote``: the image's labels name
    git.remote and the working tree's commit, which would then not be found there."""
    listed = git_text(repo_root, "remote", "-v") or ""
    urls = {line.split()[1] for line in listed.splitlines() if len(line.split()) >= 2}
    wanted = repository_key(remote, manifest_dir)
    if wanted.startswith("/") and Path(wanted).is_relative_to(repo_root.resolve()):
        return None  # the working tree itself (remote: . beside the manifest)
    if any(repository_key(url, repo_root) == wanted for url in urls):
        return None
    theirs = ", ".join(sorted(mask_credentials(u) for u in urls)) or "none"
    return (f"git.remote {mask_credentials(remote)} is not a remote of the working tree (its remotes: "
            f"{theirs}); the image's labels name git.remote with a commit of this working tree")


def _uncommitted_changes(job_root: Path, repo_root: Path, excluded: set[Path], *,
                         lfs: bool = False) -> list[str]:
    """Repo-relative paths under ``job_root`` that differ from HEAD, secret files left aside; with
    ``lfs`` git runs with the LFS filter, so a fetched LFS file matches its pointer in HEAD."""
    config = LFS_FILTER_CONFIG if lfs else ()
    output = git_text(job_root, *config, "status", "--porcelain=v1", "-z", "--untracked-files=all",
                      "--ignore-submodules=none", "--", ".")
    if output is None:
        return []
    entries = output.split("\0")
    changes: list[str] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if "R" in code or "C" in code:
            index += 1  # with -z a rename is followed by its source path
        if Path(os.path.abspath(repo_root / path)) in excluded:
            continue
        changes.append(path)
    return changes
