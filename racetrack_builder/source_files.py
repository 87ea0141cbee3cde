"""Which files of a checkout go into the image, and which do not, with a warning for each kind.

The same rules for a clone and for a working tree (see ``source.py``):

* only files git knows about: tracked ones (plus, in a working tree, untracked ones git does not
  ignore), nothing under ``.git``, never the secret env files the manifest names;
* Git LFS files are fetched for the job's folder, and named when they stay pointers (``lfs.py``);
* git submodules and nested repositories are left out in both modes (a shallow clone does not
  fetch them; a working tree leaves them out too so the two agree), with a warning naming them;
* no path may leave the repository: ``git.directory`` and every symlink among the files must
  resolve inside it, or the build stops naming them; symlinks among the files must even stay inside
  ``git.directory``, since the image holds nothing else and the link would dangle there.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import SourceError
from .git_transport import git_stderr, git_summary
from .git_urls import url_secret
from .gitpython import Git, GitCommandError
from .listing import shortlist
from .secrets import TEMPLATE_SUFFIXES


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or lies under it (both resolved)."""
    return path == root or path.is_relative_to(root)


def resolve(path: Path) -> Path | None:
    """``path`` with every symlink resolved, or None for a loop of links."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None


def relative_dir(job_root: Path, repo_root: Path) -> str:
    """``job_root`` relative to ``repo_root`` as a POSIX path, ``"."`` for the root itself."""
    return job_root.relative_to(repo_root.resolve()).as_posix() or "."


# --- git.directory --------------------------------------------------------------------------------


def job_root(repo_root: Path, directory: str, where: str) -> Path:
    """``repo_root / directory`` resolved; SourceError unless it is a real folder of this repository."""
    root = repo_root.resolve()
    rel = PurePosixPath(directory)
    if rel.is_absolute() or ".." in rel.parts:
        raise SourceError(f"git.directory: {directory!r} must be a path inside the repository",
                          hint="write it relative to the repository's root, without '..'")
    submodule = _submodule_holding(root, rel)
    if submodule is not None:
        # A clone does not fetch submodules, and a working tree may have one checked out: refuse
        # both alike, so --local and a CI build of the same manifest agree.
        raise SourceError(
            f"git.directory: {directory!r} in {where} is inside the git submodule {submodule!r}, whose "
            "files are not part of this repository",
            hint="make the submodule's own repository git.remote (with git.directory inside it), or "
            "move the job into this repository",
        )
    candidate = root / rel
    if not os.path.lexists(candidate):
        raise SourceError(f"git.directory: {directory!r} does not exist in {where}",
                          hint=_directory_hint(root, rel))
    resolved = resolve(candidate)
    if resolved is None or not inside(resolved, root):
        raise SourceError(f"git.directory: {directory!r} in {where} is a symlink that leaves the repository",
                          hint="point git.directory at a real folder inside the repository")
    if not resolved.is_dir():
        raise SourceError(f"git.directory: {directory!r} in {where} is not a directory",
                          hint="git.directory names the folder holding the job, not a file")
    return resolved


def _submodule_holding(root: Path, rel: PurePosixPath) -> str | None:
    """The submodule (a gitlink in the index) that ``rel`` is, or lies inside, if any."""
    prefixes = ["/".join(rel.parts[: i + 1]) for i in range(len(rel.parts)) if rel.parts[i] != "."]
    if not prefixes:
        return None
    try:
        listed = Git(str(root)).ls_files("--stage", "--", *(f":(literal){p}" for p in prefixes))
    except GitCommandError:
        return None
    for line in listed.splitlines():
        mode, _, rest = line.partition(" ")
        path = rest.partition("\t")[2]
        if mode == "160000" and path in prefixes:
            return path
    return None


def _directory_hint(root: Path, rel: PurePosixPath) -> str:
    parent = root
    consumed: list[str] = []
    for part in rel.parts[:-1]:
        if not (parent / part).is_dir():
            break
        parent = parent / part
        consumed.append(part)
    missing = rel.parts[len(consumed)] if len(consumed) < len(rel.parts) else rel.name
    dirs = sorted(p.name for p in parent.iterdir() if p.is_dir() and p.name != ".git")
    where = "at the top" if not consumed else f"in {'/'.join(consumed)}"
    if not dirs:
        return f"there are no directories {where}"
    close = difflib.get_close_matches(missing, dirs, n=1)
    return (f"did you mean {'/'.join([*consumed, close[0]])!r}? " if close else "") + \
        f"directories {where}: {shortlist(dirs)}"


# --- the files ------------------------------------------------------------------------------------


def ls_files(root: Path, *, local: bool) -> list[str]:
    """What git knows under ``root``: tracked files, plus untracked not-ignored ones with ``local``."""
    args = ["-z", "--cached"]
    if local:
        args += ["--others", "--exclude-standard"]
    try:
        output = Git(str(root)).ls_files(*args, strip_newline_in_stdout=False)
    except GitCommandError as exc:
        raise SourceError(f"cannot list the files of {root}: {git_summary(git_stderr(exc))}") from exc
    # A path both staged and modified can be listed twice by --cached/--others combinations.
    return sorted({entry for entry in str(output).split("\0") if entry})


def _is_env_file(name: str) -> bool:
    return name.startswith(".env") and not name.endswith(TEMPLATE_SUFFIXES)


@dataclass(frozen=True)
class Selection:
    """The files that go into the image and what the user should know about the others."""

    files: tuple[str, ...]
    warnings: tuple[str, ...]


def select_files(listed: list[str], *, repo_root: Path, job_root: Path, excluded: set[Path],
                 excluded_rel: set[str], where: str) -> Selection:
    """Apply the module's rules to ``git ls-files`` output (paths relative to ``job_root``).

    ``excluded`` (absolute paths) and ``excluded_rel`` (paths relative to ``job_root``) are the
    secret env files, left out with a warning.
    """
    root = repo_root.resolve()
    files: list[str] = []
    skipped_repos: list[str] = []
    left_out_secrets: list[str] = []
    escaping: list[str] = []
    outside_job: list[str] = []
    env_files: list[str] = []
    for entry in listed:
        rel = entry.rstrip("/")
        if ".git" in PurePosixPath(rel).parts:
            continue
        path = job_root / rel
        if not os.path.lexists(path):
            continue  # tracked but deleted in the working tree: not part of what gets built
        if path.is_dir() and not path.is_symlink():
            skipped_repos.append(rel)  # a submodule (gitlink) or an untracked nested repository
            continue
        if rel in excluded_rel or Path(os.path.abspath(path)) in excluded or resolve(path) in excluded:
            left_out_secrets.append(rel)
            continue
        if path.is_symlink():
            target = resolve(path)
            if target is None:
                escaping.append(f"{rel} -> {os.readlink(path)} (a loop of links)")
                continue
            if not inside(target, root):
                escaping.append(f"{rel} -> {os.readlink(path)}")
                continue
            if not inside(target, job_root):
                outside_job.append(f"{rel} -> {os.readlink(path)}")
                continue
        if _is_env_file(PurePosixPath(rel).name):
            env_files.append(rel)
        files.append(rel)
    if escaping or outside_job:
        # Either way the image would differ from the tree: a link out of the repository depends on
        # this machine, and the image holds only git.directory, so a link out of it would dangle there.
        problems = []
        if escaping:
            problems.append(f"point outside the repository: {', '.join(escaping)}")
        if outside_job:
            problems.append(f"point outside git.directory {relative_dir(job_root, root)!r}, which is all "
                            f"the image holds: {', '.join(outside_job)}")
        raise SourceError(
            f"symlinks in {where} " + "; others ".join(problems),
            hint="commit the files themselves inside git.directory instead of links to them; a folder "
            "that is not part of the job (a virtualenv) belongs in .gitignore",
        )
    warnings: list[str] = []
    if skipped_repos:
        warnings.append(f"left out git submodules / nested repositories (their files are not part of "
                        f"this repository): {', '.join(skipped_repos)}")
    if left_out_secrets:
        warnings.append(f"left out the secret env file(s) {', '.join(left_out_secrets)}: secrets are "
                        f"passed to the build and the container, never copied into the image")
    if env_files:
        warnings.append(f"{', '.join(env_files)} will be copied into the image; if it holds secrets, name it "
                        f"in secret_build_env_file/secret_runtime_env_file or add it to .gitignore")
    # Git LFS pointers are lfs.py's: it fetches their content first and names those that stay pointers.
    return Selection(tuple(sorted(files)), tuple(warnings))


def credential_warnings(job_root: Path, files: tuple[str, ...], remote: str) -> list[str]:
    """Job files (YAML: the manifest, CI settings) holding the credentials written in ``remote``,
    which the image will then hold too."""
    secret = url_secret(remote)
    if not secret:
        return []
    holding = []
    for rel in files:
        path = job_root / rel
        if PurePosixPath(rel).suffix not in (".yaml", ".yml") or path.is_symlink():
            continue
        with contextlib.suppress(OSError):
            small = path.stat().st_size <= 1 << 20
            if small and secret in path.read_text(encoding="utf-8", errors="replace"):
                holding.append(rel)
    if not holding:
        return []
    return [f"{', '.join(holding)} hold(s) the credentials written in git.remote, and the image will hold "
            "them too: give git its credentials another way (a credential helper, ssh keys) and remove "
            "them from the URL"]
