"""The job's files: a shallow single-branch clone of ``git.remote``, or (``local=True``) the git working
tree that holds the manifest.

Either way the result is a :class:`JobSource`: the repository root, the job root (``git.directory``
inside it) and the exact list of files that go into the image. Both ways apply the same rules, so a
job builds the same from a clone and from a clean working tree:

* only files git knows about: tracked ones (plus, in a working tree, untracked ones git does not
  ignore), nothing under ``.git``, never the secret env files the manifest names;
* git submodules and nested repositories are left out in both modes (a shallow clone does not
  fetch them; a working tree leaves them out too so the two agree), with a warning naming them;
* no path may leave the repository: ``git.directory``, the entrypoint, the requirements file and
  every symlink among the files must resolve inside it, or the build stops naming them; symlinks
  among the files must even stay inside ``git.directory``, since the image holds nothing else and
  the link would dangle there.

Git never prompts here (``GIT_TERMINAL_PROMPT=0``, ssh ``BatchMode=yes``) and slow or silent remotes
time out, so a CI job fails instead of hanging. Credentials written into a URL
(``https://user:token@host/...``) never appear in messages.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import logging
import os
import posixpath
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from git import GitCommandError, Repo
from git.cmd import Git

from .errors import (
    AuthenticationRefused,
    EnvironmentFailure,
    NoSpaceLeft,
    RemoteUnreachable,
    SourceError,
    disk_error,
)
from .manifest import Manifest
from .secrets import TEMPLATE_SUFFIXES, manifest_folder, secret_env_path

__all__ = [
    "JobSource",
    "check_job_files",
    "git_environment",
    "mask_credentials",
    "open_source",
    "resolve_remote",
]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

# Abort an HTTP(S) transfer slower than LOW_SPEED_LIMIT bytes/s for LOW_SPEED_TIME seconds, and an
# ssh connection that is not up after SSH_CONNECT_TIMEOUT seconds: a remote that stops answering
# must fail the build, not hang it.
LOW_SPEED_LIMIT = 1000
LOW_SPEED_TIME = 60
SSH_CONNECT_TIMEOUT = 20
# Bound on listing a remote's branches for a "no such branch" hint.
LS_REMOTE_TIMEOUT = 30
MAX_LISTED = 20

WORKSPACE_PREFIX = "racetrack-build-"


@dataclass(frozen=True)
class JobSource:
    """Where the job's files are and which of them go into the image."""

    repo_root: Path
    """Root of the checkout: the clone workspace, or the working tree with ``local=True``."""
    job_root: Path
    """``repo_root / git.directory``, resolved, guaranteed inside ``repo_root``."""
    files: tuple[str, ...]
    """Sorted POSIX paths relative to ``job_root`` of what goes into the image (see the module doc)."""
    commit: str | None
    """HEAD's SHA (``None`` only for a working tree without any commit yet)."""
    remote: str
    """What was cloned, as written in the manifest but with credentials masked; with ``local=True``
    the working tree's path."""
    branch: str | None
    """The branch cloned, or the working tree's current branch (``None`` when HEAD is detached)."""
    dirty: bool
    """``local=True`` only: the job's folder has uncommitted changes (tracked files modified or staged,
    untracked files git does not ignore)."""
    local: bool = False
    """Whether this is a working tree (``--local``) rather than a clone."""
    warnings: tuple[str, ...] = field(default=())
    """What the user should know about these files (also sent to ``progress`` as ``warning: ...``)."""

    @property
    def directory(self) -> str:
        """``job_root`` relative to ``repo_root`` as a POSIX path (``"."`` for the root)."""
        rel = self.job_root.relative_to(self.repo_root.resolve()).as_posix()
        return rel or "."

    @property
    def where(self) -> str:
        """``<remote>@<branch>`` for messages."""
        return f"{self.remote}@{self.branch or 'HEAD'}"

    def repo_path(self, rel: str) -> str:
        """A path relative to ``job_root`` as a path relative to ``repo_root``, for messages."""
        return posixpath.normpath(posixpath.join(self.directory, rel))


# --- credentials and remotes ----------------------------------------------------------------------

_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")
_SECRET_SCHEMES = ("http://", "https://", "ftp://", "ftps://")


def mask_credentials(text: str) -> str:
    """Hide credentials embedded in URLs inside ``text``.

    For http(s) and ftp(s) the whole user part goes (a token is often given as the user name:
    ``https://TOKEN@host``); for other schemes (``ssh://git@host``) only a password after ``:``.
    """

    def _mask(match: re.Match[str]) -> str:
        scheme, userinfo = match.group("scheme"), match.group("userinfo")
        if scheme.lower() in _SECRET_SCHEMES:
            return f"{scheme}***@"
        user, sep, _ = userinfo.partition(":")
        return f"{scheme}{user}{':***' if sep else ''}@"

    return _URL_USERINFO.sub(_mask, text)


def _is_local_path(remote: str) -> bool:
    """Git's own rule: a URL has ``://``; ``host:path`` (a ':' before any '/') is scp-like ssh."""
    if "://" in remote:
        return False
    colon, slash = remote.find(":"), remote.find("/")
    return colon == -1 or (slash != -1 and slash < colon)


def resolve_remote(remote: str, manifest_path: Path) -> str:
    """The URL to clone for ``git.remote``.

    https, ssh (``ssh://`` and ``user@host:path``) and ``file://`` URLs are used as they are. A local
    path (relative ones are relative to the manifest's folder) becomes a ``file://`` URL: git ignores
    ``--depth`` for a plain path (it copies or hard-links the whole object store instead), and only
    through ``file://`` does it run the real transport, so the clone is shallow as everywhere else.
    Raises :class:`RemoteUnreachable` when that local path does not exist.
    """
    if not _is_local_path(remote):
        return remote
    path = Path(remote).expanduser()
    if not path.is_absolute():
        path = manifest_folder(manifest_path) / path
    path = Path(os.path.normpath(path))
    if not path.exists():
        raise RemoteUnreachable(
            f"git.remote: local repository {remote!r} does not exist (searched {path})",
            hint="relative paths are relative to the manifest's folder; use a URL for a remote repository",
        )
    return path.as_uri()


def git_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables for git talking to a remote: never prompt, time out instead of hanging.

    ``GIT_TERMINAL_PROMPT=0`` stops https credential prompts (credential helpers still work);
    ssh runs with ``BatchMode=yes`` (keys and agents work, passphrase/password prompts and unknown
    host keys fail) and a connect timeout, appended to the user's own ``GIT_SSH_COMMAND`` or
    ``core.sshCommand`` so their keys and options still apply. When only ``GIT_SSH`` (a program) is
    set it is left alone: overriding it would drop the user's setup.
    """
    environ = dict(os.environ if base is None else base)
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_HTTP_LOW_SPEED_LIMIT": str(LOW_SPEED_LIMIT),
        "GIT_HTTP_LOW_SPEED_TIME": str(LOW_SPEED_TIME),
    }
    ssh = environ.get("GIT_SSH_COMMAND") or _configured_ssh_command(environ)
    if ssh or not environ.get("GIT_SSH"):
        # ssh takes the first value given for an option, so the user's own -o settings still win.
        env["GIT_SSH_COMMAND"] = (f"{ssh or 'ssh'} -o BatchMode=yes "
                                  f"-o ConnectTimeout={SSH_CONNECT_TIMEOUT}")
    return env


def _configured_ssh_command(environ: Mapping[str, str]) -> str | None:
    # GIT_SSH_COMMAND outranks core.sshCommand, so setting ours must carry the configured one over.
    try:
        value = Git().config("--get", "core.sshCommand", env=dict(environ))
    except GitCommandError:
        return None
    return str(value).strip() or None


# --- errors from git ------------------------------------------------------------------------------

_AUTH_PATTERNS = (
    "could not read username",
    "could not read password",
    "authentication failed",
    "permission denied (publickey",
    "permission denied, please try again",
    "terminal prompts disabled",
    "invalid username or password",
    "http basic: access denied",
    "returned error: 401",
    "returned error: 403",
)
_HOST_KEY_PATTERNS = ("host key verification failed",)
_UNREACHABLE_PATTERNS = (
    "could not resolve host",
    "could not resolve hostname",
    "name or service not known",
    "connection refused",
    "couldn't connect to server",
    "failed to connect",
    "timed out",
    "operation too slow",
    "network is unreachable",
    "no route to host",
    "unable to connect",
    "unable to access",
    "does not appear to be a git repository",
    "repository not found",
    "not found",
    "could not read from remote repository",
    "the remote end hung up",
)
_MISSING_BRANCH = re.compile(r"Remote branch (?P<branch>\S+) not found in upstream", re.IGNORECASE)


def _git_stderr(exc: GitCommandError) -> str:
    stderr = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode("utf-8", "replace")
    # GitPython wraps stderr as "\n  stderr: '...'"; keep git's own words.
    stderr = stderr.strip()
    if stderr.startswith("stderr: "):
        stderr = stderr[len("stderr: "):].strip("'")
    return mask_credentials(stderr.strip())


def _sanitized(exc: GitCommandError) -> GitCommandError:
    """A copy of ``exc`` with credentials masked, to chain as ``__cause__`` (shown by ``--verbose``)."""
    command = [mask_credentials(str(part)) for part in exc.command] if isinstance(exc.command, list | tuple) \
        else mask_credentials(str(exc.command))
    return GitCommandError(command, exc.status, _git_stderr(exc))


def _summary(stderr: str) -> str:
    """git's message without the progress chatter, on one line."""
    lines = [line.strip() for line in stderr.splitlines()]
    kept = [line for line in lines if line and not line.lower().startswith(("cloning into", "warning:"))]
    text = " ".join(kept) or stderr.strip() or "no output from git"
    return text[:500]


def _clone_error(exc: GitCommandError, *, shown: str, url: str, branch: str,
                 env: Mapping[str, str], workspace: Path) -> Exception:
    stderr = _git_stderr(exc)
    low = stderr.lower()
    # Checked first: a full disk makes git also say "the remote end hung up" / "invalid index-pack".
    if "no space left on device" in low or "disk quota exceeded" in low:
        return NoSpaceLeft(f"no space left on device at {workspace} while cloning {shown}",
                           hint="free space there, or point TMPDIR at a bigger disk")
    if _MISSING_BRANCH.search(stderr):
        return SourceError(f"git.branch: branch {branch!r} does not exist in {shown}",
                           hint=_branch_hint(url, branch, env))
    if any(p in low for p in _HOST_KEY_PATTERNS):
        return AuthenticationRefused(
            f"git.remote: the ssh host key of {shown} is not trusted yet: {_summary(stderr)}",
            hint="connect once with ssh to accept it, or add it with ssh-keyscan to ~/.ssh/known_hosts",
        )
    if any(p in low for p in _AUTH_PATTERNS):
        asked = any(p in low for p in ("could not read username", "could not read password",
                                       "terminal prompts disabled"))
        what = ("needs credentials and git may not prompt for them here" if asked
                else "refused our credentials")
        return AuthenticationRefused(
            f"git.remote: {shown} {what}: {_summary(stderr)}",
            hint="for https set up a git credential helper or put a read-only token in the URL; "
                 "for ssh load a key that has access into ssh-agent",
        )
    if any(p in low for p in _UNREACHABLE_PATTERNS):
        return RemoteUnreachable(
            f"git.remote: cannot reach {shown}: {_summary(stderr)}",
            hint="check the URL in git.remote, your network or VPN, and that the repository exists",
        )
    return EnvironmentFailure(f"git clone of {shown} failed: {_summary(stderr)}")


def _branch_hint(url: str, branch: str, env: Mapping[str, str]) -> str:
    try:
        output = Git().ls_remote("--heads", "--", url, env=dict(env), kill_after_timeout=LS_REMOTE_TIMEOUT)
    except GitCommandError:
        return "check git.branch (the remote's branches could not be listed)"
    prefix = "refs/heads/"
    names = sorted(
        line.split("\t", 1)[1][len(prefix):]
        for line in str(output).splitlines()
        if "\t" in line and line.split("\t", 1)[1].startswith(prefix)
    )
    if not names:
        return "the repository has no branches yet: push a commit first"
    close = difflib.get_close_matches(branch, names, n=1)
    more = len(names) - MAX_LISTED
    listed = ", ".join(names[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")
    did_you_mean = f"did you mean {close[0]!r}? " if close else ""
    return f"{did_you_mean}set git.branch to one of: {listed}"


# --- the workspace --------------------------------------------------------------------------------


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
        log.warning("could not remove the temporary workspace %s: %s", path, exc)


# --- files ----------------------------------------------------------------------------------------


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _resolve(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None


def _job_root(repo_root: Path, directory: str, where: str) -> Path:
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
    resolved = _resolve(candidate)
    if resolved is None or not _inside(resolved, root):
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
    listed = ", ".join(dirs[:MAX_LISTED]) + (" ..." if len(dirs) > MAX_LISTED else "")
    return (f"did you mean {'/'.join([*consumed, close[0]])!r}? " if close else "") + \
        f"directories {where}: {listed}"


def _ls_files(job_root: Path, *, local: bool) -> list[str]:
    args = ["-z", "--cached"]
    if local:
        args += ["--others", "--exclude-standard"]
    try:
        output = Git(str(job_root)).ls_files(*args, strip_newline_in_stdout=False)
    except GitCommandError as exc:
        raise SourceError(f"cannot list the files of {job_root}: {_summary(_git_stderr(exc))}") from exc
    # A path both staged and modified can be listed twice by --cached/--others combinations.
    return sorted({entry for entry in str(output).split("\0") if entry})


def _is_env_file(name: str) -> bool:
    return name.startswith(".env") and not name.endswith(TEMPLATE_SUFFIXES)


@dataclass
class _Selection:
    files: list[str]
    warnings: list[str]


def _select_files(listed: list[str], *, repo_root: Path, job_root: Path, excluded: set[Path],
                  excluded_rel: set[str], where: str) -> _Selection:
    """Apply the module's rules to ``git ls-files`` output (paths relative to ``job_root``)."""
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
        if rel in excluded_rel or Path(os.path.abspath(path)) in excluded or _resolve(path) in excluded:
            left_out_secrets.append(rel)
            continue
        if path.is_symlink():
            target = _resolve(path)
            if target is None:
                escaping.append(f"{rel} -> {os.readlink(path)} (a loop of links)")
                continue
            if not _inside(target, root):
                escaping.append(f"{rel} -> {os.readlink(path)}")
                continue
            if not _inside(target, job_root):
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
            problems.append(f"point outside git.directory {_rel_dir(job_root, root)!r}, which is all the "
                            f"image holds: {', '.join(outside_job)}")
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
    pointers = [rel for rel in files if _is_lfs_pointer(job_root / rel)]
    if pointers:
        listed = ", ".join(pointers[:MAX_LISTED]) + (" ..." if len(pointers) > MAX_LISTED else "")
        warnings.append(f"{listed}: Git LFS pointer file(s), not their content; the image holds the pointers "
                        "(commit the files themselves, or fetch them in the job at start)")
    return _Selection(sorted(files), warnings)


_LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


def _is_lfs_pointer(path: Path) -> bool:
    """A Git LFS pointer: a small text file that stands for a large one kept elsewhere."""
    try:
        if path.is_symlink() or path.stat().st_size > 1024:
            return False
        with path.open("rb") as handle:
            return handle.read(len(_LFS_POINTER)) == _LFS_POINTER
    except OSError:
        return False


def credential_warnings(source: JobSource, remote: str) -> list[str]:
    """Job files (YAML: the manifest, CI settings) holding the credentials written in ``remote``,
    which the image will then hold too."""
    secret = _url_secret(remote)
    if not secret:
        return []
    holding = []
    for rel in source.files:
        path = source.job_root / rel
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


def _url_secret(remote: str) -> str | None:
    """The password, or else the user part (often a token), of a URL with credentials."""
    match = _URL_USERINFO.search(remote)
    if not match:
        return None
    user, _, password = match.group("userinfo").partition(":")
    secret = password or (user if match.group("scheme").lower() in _SECRET_SCHEMES else "")
    return secret if len(secret) >= 4 else None


def _rel_dir(job_root: Path, repo_root: Path) -> str:
    return job_root.relative_to(repo_root).as_posix() or "."


def _secret_paths(manifest: Manifest, manifest_path: Path) -> list[Path]:
    paths = [secret_env_path(manifest, manifest_path, kind) for kind in ("build", "runtime")]
    return [p for p in paths if p is not None]


# --- clone ----------------------------------------------------------------------------------------


def _clone(manifest: Manifest, manifest_path: Path, workspace: Path, progress: Progress) -> JobSource:
    remote, branch = manifest.git.remote, manifest.git.branch
    shown = mask_credentials(remote)
    url = resolve_remote(remote, manifest_path)
    env = git_environment()
    checkout = workspace / "repo"
    progress(f"cloning {shown} (branch {branch})")
    try:
        with Repo.clone_from(url, checkout, depth=1, single_branch=True, branch=branch, env=env) as repo:
            commit = repo.head.commit.hexsha
    except GitCommandError as exc:
        raise _clone_error(exc, shown=shown, url=url, branch=branch, env=env,
                           workspace=workspace) from _sanitized(exc)
    where = f"{shown}@{branch}"
    progress(f"cloned {where} at {commit[:12]}")
    job_root = _job_root(checkout, manifest.git.directory, where)
    # The secret files live next to the manifest on this machine; a repository that also commits a
    # file by that name (relative to the job root, where the manifest conventionally sits) must not
    # get it baked into the image either.
    manifest_dir = manifest_folder(manifest_path)
    excluded_rel = set()
    for secret in _secret_paths(manifest, manifest_path):
        if secret.is_relative_to(manifest_dir):
            excluded_rel.add(secret.relative_to(manifest_dir).as_posix())
    selection = _select_files(_ls_files(job_root, local=False), repo_root=checkout, job_root=job_root,
                              excluded=set(), excluded_rel=excluded_rel, where=where)
    for warning in selection.warnings:
        progress(f"warning: {warning}")
    return JobSource(repo_root=checkout, job_root=job_root, files=tuple(selection.files), commit=commit,
                     remote=shown, branch=branch, dirty=False, local=False,
                     warnings=tuple(selection.warnings))


# --- local working tree ---------------------------------------------------------------------------


def _git_text(cwd: Path, *args: str) -> str | None:
    try:
        return str(Git(str(cwd)).execute(["git", *args], strip_newline_in_stdout=True))
    except GitCommandError:
        return None


def _working_tree(manifest: Manifest, manifest_path: Path, progress: Progress) -> JobSource:
    manifest_dir = manifest_folder(manifest_path)
    toplevel = _git_text(manifest_dir, "rev-parse", "--show-toplevel")
    if not toplevel:
        raise SourceError(
            f"--local: {manifest_dir} is not inside a git working tree",
            hint="run `git init` and `git add` your job there, or build without --local to clone git.remote",
        )
    repo_root = Path(toplevel).resolve()
    commit = _git_text(repo_root, "rev-parse", "--verify", "--quiet", "HEAD") or None
    # Not --short: with a tag of the same name it answers "heads/NAME".
    head_ref = _git_text(repo_root, "symbolic-ref", "--quiet", "HEAD") or ""
    branch = head_ref.removeprefix("refs/heads/") or None
    where = f"{repo_root}@{branch or 'HEAD'}"
    progress(f"using the working tree {repo_root} (branch {branch or 'detached HEAD'}"
             f"{', commit ' + commit[:12] if commit else ', no commit yet'})")
    job_root = _job_root(repo_root, manifest.git.directory, where)
    secrets = _secret_paths(manifest, manifest_path)
    excluded = {Path(os.path.abspath(p)) for p in secrets} | {r for p in secrets if (r := _resolve(p))}
    selection = _select_files(_ls_files(job_root, local=True), repo_root=repo_root, job_root=job_root,
                              excluded=excluded, excluded_rel=set(), where=where)
    changes = _uncommitted_changes(job_root, repo_root, excluded)
    warnings = list(selection.warnings)
    if branch and branch != manifest.git.branch:
        warnings.append(f"the working tree is on branch {branch!r} but git.branch is "
                        f"{manifest.git.branch!r}; building the working tree as it is")
    mismatch = _foreign_remote(repo_root, manifest.git.remote, manifest_dir)
    if mismatch:
        warnings.append(mismatch)
    if changes:
        listed = ", ".join(changes[:MAX_LISTED]) + (" ..." if len(changes) > MAX_LISTED else "")
        paths = f"{len(changes)} path{'s' if len(changes) != 1 else ''}"
        warnings.append(f"building uncommitted changes ({paths}: {listed}); commit them so a build from "
                        "git.remote gives the same image")
    for warning in warnings:
        progress(f"warning: {warning}")
    return JobSource(repo_root=repo_root, job_root=job_root, files=tuple(selection.files), commit=commit,
                     remote=str(repo_root), branch=branch, dirty=bool(changes), local=True,
                     warnings=tuple(warnings))


def _foreign_remote(repo_root: Path, remote: str, manifest_dir: Path) -> str | None:
    """A warning when the working tree is not a clone of ``git.remote``: the image's labels name
    git.remote and the working tree's commit, which would then not be found there."""
    listed = _git_text(repo_root, "remote", "-v") or ""
    urls = {line.split()[1] for line in listed.splitlines() if len(line.split()) >= 2}
    wanted = _repository_key(remote, manifest_dir)
    if wanted.startswith("/") and Path(wanted).is_relative_to(repo_root.resolve()):
        return None  # the working tree itself (remote: . beside the manifest)
    if any(_repository_key(url, repo_root) == wanted for url in urls):
        return None
    theirs = ", ".join(sorted(mask_credentials(u) for u in urls)) or "none"
    return (f"git.remote {mask_credentials(remote)} is not a remote of the working tree (its remotes: "
            f"{theirs}); the image's labels name git.remote with a commit of this working tree")


def _repository_key(location: str, base: Path) -> str:
    """One spelling of a repository location, to compare https, ssh, scp-like and local forms:
    ``host/path`` without credentials, port or ``.git``, or an absolute local path."""
    if _is_local_path(location) or location.startswith("file://"):
        path = location.removeprefix("file://").removeprefix("localhost")
        resolved = (base / path).resolve() if not os.path.isabs(path) else Path(path).resolve()
        return str(resolved).removesuffix("/.git").removesuffix(".git")
    if "://" in location:
        rest = location.split("://", 1)[1]
    else:  # scp-like: [user@]host:path
        rest = location.replace(":", "/", 1)
    hostport, _, path = rest.partition("/")
    host = hostport.rpartition("@")[2].partition(":")[0].lower()
    return f"{host}/{path.strip('/').removesuffix('.git')}"


def _uncommitted_changes(job_root: Path, repo_root: Path, excluded: set[Path]) -> list[str]:
    """Repo-relative paths under ``job_root`` that differ from HEAD, secret files left aside."""
    output = _git_text(job_root, "status", "--porcelain=v1", "-z", "--untracked-files=all",
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


# --- entry point ----------------------------------------------------------------------------------


@contextlib.contextmanager
def open_source(manifest: Manifest, manifest_path: Path, *, local: bool = False,
                progress: Progress | None = None) -> Iterator[JobSource]:
    """Clone ``git.remote`` at ``git.branch`` (or take the working tree with ``local=True``) and yield
    the :class:`JobSource`; the temporary workspace of a clone is removed on every exit path,
    ``KeyboardInterrupt`` included.

    Raises :class:`SourceError` (missing branch or directory, paths leaving the repository, not a
    git working tree), :class:`RemoteUnreachable` and :class:`AuthenticationRefused`.
    """
    report: Progress = progress or (lambda _message: None)
    if local:
        yield _working_tree(manifest, manifest_path, report)
        return
    try:
        workspace = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX))
    except OSError as exc:
        raise disk_error(exc, "creating the clone workspace", tempfile.gettempdir()) from exc
    try:
        yield _clone(manifest, manifest_path, workspace, report)
    finally:
        _remove_tree(workspace)


def check_job_files(manifest: Manifest, source: JobSource) -> list[str]:
    """Check the files the manifest names against the fetched tree, without running user code.

    The entrypoint file exists and is one of ``source.files``, the named entrypoint class is defined
    in it (read with :mod:`ast`; the job's code is never imported on the host), and the requirements
    file exists. Raises :class:`SourceError` naming the path searched. Returns warnings: an
    entrypoint this Python cannot parse is not an error here, because the job runs on the image's
    Python, which may be newer (``type X = ...`` needs 3.12); the build's import check decides.
    """
    warnings = []
    entrypoint = _check_file("python.entrypoint_path", manifest.python.entrypoint_path, source)
    tree = _parse_entrypoint(entrypoint, manifest.python.entrypoint_path, source)
    if isinstance(tree, str):
        warnings.append(tree)
    elif manifest.python.entrypoint_class:
        _check_class(tree, manifest.python.entrypoint_class, manifest.python.entrypoint_path, source)
    if manifest.python.requirements_path:
        _check_file("python.requirements_path", manifest.python.requirements_path, source)
    return warnings + credential_warnings(source, manifest.git.remote)


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
    resolved = _resolve(path)
    if resolved is None or not _inside(resolved, source.repo_root.resolve()):
        raise SourceError(f"{field_name}: {value!r} in {where} is a symlink that leaves the repository "
                          f"(searched {searched})",
                          hint="commit the file itself instead of a link to it")
    if not _inside(resolved, source.job_root):
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


def _parse_entrypoint(path: Path, value: str, source: JobSource) -> ast.Module | str:
    """The entrypoint's syntax tree, or a warning when this Python cannot parse it."""
    searched = source.repo_path(posixpath.normpath(value))
    try:
        return ast.parse(path.read_bytes(), filename=searched)
    except SyntaxError as exc:
        return (f"{searched} does not parse with Python {sys.version_info.major}.{sys.version_info.minor} "
                f"(line {exc.lineno}: {exc.msg}); the build's import check, on the image's Python, decides")
    except (ValueError, OSError) as exc:  # null bytes, unreadable
        raise SourceError(f"python.entrypoint_path: {searched} cannot be read as Python: {exc}") from exc


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


def _check_class(tree: ast.Module, name: str, value: str, source: JobSource) -> None:
    classes, others, star = _top_level_names(tree.body)
    # A class imported or assigned at module level is a valid entrypoint too; we cannot follow it
    # without importing user code, so accept the name being bound.
    if name in classes or name in others or star:
        return
    searched = source.repo_path(posixpath.normpath(value))
    close = difflib.get_close_matches(name, sorted(classes), n=1)
    found = f"classes defined there: {', '.join(sorted(classes))}" if classes else "it defines no class"
    hint = (f"did you mean {close[0]!r}? " if close else "") + found
    raise SourceError(f"python.entrypoint_class: {name!r} is not defined in {searched} "
                      f"({source.where}:{source.directory})", hint=hint)
