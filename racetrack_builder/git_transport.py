"""Talking to git: the shallow clone, the environment it runs in, and its failures in our terms.

Git never prompts here (``GIT_TERMINAL_PROMPT=0``, ssh ``BatchMode=yes``) and slow or silent remotes
time out, so a CI job fails instead of hanging. Git's errors become ours at this boundary: a
missing branch is the user's input (with the remote's branches listed), refused credentials and
unreachable remotes are environment failures, a full disk says where. Credentials in URLs never
reach a message or a chained exception.

Git LFS is driven here too: the clone leaves LFS files as pointers (``GIT_LFS_SKIP_SMUDGE=1``), and
:func:`lfs_pull` then fetches the objects of the job's folder only, under the same rules (no
prompts, timeouts, credentials masked); what to fetch, and what to say about it, is ``lfs.py``.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import AuthenticationRefused, EnvironmentFailure, NoSpaceLeft, RemoteUnreachable, SourceError
from .git_urls import mask_credentials
from .gitpython import Git, GitCommandError, GitCommandNotFound, Repo
from .listing import shortlist

# Abort an HTTP(S) transfer slower than LOW_SPEED_LIMIT bytes/s for LOW_SPEED_TIME seconds, and an
# ssh connection that is not up after SSH_CONNECT_TIMEOUT seconds: a remote that stops answering
# must fail the build, not hang it.
LOW_SPEED_LIMIT = 1000
LOW_SPEED_TIME = 60
SSH_CONNECT_TIMEOUT = 20
# Bound on listing a remote's branches for a "no such branch" hint.
LS_REMOTE_TIMEOUT = 30


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


def git_text(cwd: Path, *args: str) -> str | None:
    """The output of ``git ARGS`` run in ``cwd``, or None when git fails or is not installed (the
    callers ask optional questions: which repository, which user; what needs git checks
    :func:`require_git` first)."""
    try:
        return str(Git(str(cwd)).execute(["git", *args], strip_newline_in_stdout=True))
    except (GitCommandError, GitCommandNotFound):
        return None


def require_git(what: str) -> None:
    """Raise an :class:`EnvironmentFailure` (exit 3) naming what to install when git is not on
    PATH; ``what`` says what needs it ("cloning git.remote")."""
    if shutil.which(os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git") is None:
        raise EnvironmentFailure(
            f"{what} needs git, which is not installed here",
            hint="install git (`apt-get install git` on Debian/Ubuntu, `apk add git` on Alpine) or use a "
                 "CI image that has it; validate, schema and running a built image work without it",
        )


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
_PROMPT_PATTERNS = ("could not read username", "could not read password", "terminal prompts disabled")
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


def git_stderr(exc: GitCommandError) -> str:
    """git's own words from a failed command, credentials masked."""
    stderr = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode("utf-8", "replace")
    # GitPython wraps stderr as "\n  stderr: '...'"; keep git's own words.
    stderr = stderr.strip()
    if stderr.startswith("stderr: "):
        stderr = stderr[len("stderr: "):]
        # Only GitPython's own pair of quotes: git-lfs's last line ends in a quote of its own.
        if len(stderr) >= 2 and stderr[0] == stderr[-1] == "'":
            stderr = stderr[1:-1]
    return mask_credentials(stderr.strip())


def sanitized(exc: GitCommandError) -> GitCommandError:
    """A copy of ``exc`` with credentials masked, to chain as ``__cause__`` (shown by ``--verbose``)."""
    command = [mask_credentials(str(part)) for part in exc.command] if isinstance(exc.command, list | tuple) \
        else mask_credentials(str(exc.command))
    return GitCommandError(command, exc.status, git_stderr(exc))


def git_summary(stderr: str) -> str:
    """git's message without the progress chatter, on one line."""
    lines = [line.strip() for line in stderr.splitlines()]
    kept = [line for line in lines if line and not line.lower().startswith(("cloning into", "warning:"))]
    text = " ".join(kept) or stderr.strip() or "no output from git"
    return text[:500]


def _clone_error(exc: GitCommandError, *, shown: str, url: str, branch: str,
                 env: Mapping[str, str], workspace: Path) -> Exception:
    stderr = git_stderr(exc)
    low = stderr.lower()
    # Checked first: a full disk makes git also say "the remote end hung up" / "invalid index-pack".
    if "no space left on device" in low or "disk quota exceeded" in low:
        return NoSpaceLeft(f"no space left on device at {workspace} while cloning {shown}",
                           hint="free space there, or point TMPDIR at a bigger disk")
    if _lfs_not_installed(low):
        # A user's `git lfs install` (filter.lfs.required) makes git run git-lfs on checkout even
        # with GIT_LFS_SKIP_SMUDGE; without git-lfs the clone fails, and "not found" is no network issue.
        return git_lfs_missing(f"cloning {shown} runs git-lfs (filter.lfs in your git configuration), "
                               "and git-lfs is not installed")
    if _MISSING_BRANCH.search(stderr):
        return SourceError(f"git.branch: branch {branch!r} does not exist in {shown}",
                           hint=_branch_hint(url, branch, env))
    if any(p in low for p in _HOST_KEY_PATTERNS):
        return AuthenticationRefused(
            f"git.remote: the ssh host key of {shown} is not trusted yet: {git_summary(stderr)}",
            hint="connect once with ssh to accept it, or add it with ssh-keyscan to ~/.ssh/known_hosts",
        )
    if any(p in low for p in _AUTH_PATTERNS):
        what = ("needs credentials and git may not prompt for them here"
                if any(p in low for p in _PROMPT_PATTERNS) else "refused our credentials")
        return AuthenticationRefused(
            f"git.remote: {shown} {what}: {git_summary(stderr)}",
            hint="for https set up a git credential helper or put a read-only token in the URL; "
                 "for ssh load a key that has access into ssh-agent",
        )
    if any(p in low for p in _UNREACHABLE_PATTERNS):
        return RemoteUnreachable(
            f"git.remote: cannot reach {shown}: {git_summary(stderr)}",
            hint="check the URL in git.remote, your network or VPN, and that the repository exists",
        )
    return EnvironmentFailure(f"git clone of {shown} failed: {git_summary(stderr)}")


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
    did_you_mean = f"did you mean {close[0]!r}? " if close else ""
    return f"{did_you_mean}set git.branch to one of: {shortlist(names)}"


def shallow_clone(url: str, checkout: Path, *, branch: str, shown: str, workspace: Path) -> str:
    """Clone ``branch`` of ``url`` into ``checkout`` at depth 1; return the commit's SHA.

    ``shown`` is the remote as messages name it (credentials masked); ``workspace`` the folder a
    full disk is reported for.
    """
    env = git_environment()
    # LFS files stay pointers: lfs_pull fetches those of git.directory only, not every one in the
    # repository (an unrelated folder of huge models would otherwise be downloaded here).
    env["GIT_LFS_SKIP_SMUDGE"] = "1"
    try:
        with Repo.clone_from(url, checkout, depth=1, single_branch=True, branch=branch, env=env) as repo:
            return str(repo.head.commit.hexsha)
    except GitCommandError as exc:
        raise _clone_error(exc, shown=shown, url=url, branch=branch, env=env,
                           workspace=workspace) from sanitized(exc)


# --- Git LFS --------------------------------------------------------------------------------------

# `git -c` options that make git-lfs usable in a repository nobody ran `git lfs install` for (our
# clone, or a working tree cloned without git-lfs): the filter `git lfs install` would configure.
LFS_FILTER_CONFIG: tuple[str, ...] = (
    "-c", "filter.lfs.clean=git-lfs clean -- %f",
    "-c", "filter.lfs.smudge=git-lfs smudge -- %f",
    "-c", "filter.lfs.process=git-lfs filter-process",
    "-c", "filter.lfs.required=true",
)
# git-lfs ignores git's low-speed settings; its own timeouts, set so a user's 0 (never) cannot hang us.
_LFS_TIMEOUTS = ("-c", f"lfs.dialtimeout={SSH_CONNECT_TIMEOUT}",
                 "-c", f"lfs.activitytimeout={LOW_SPEED_TIME}")
# Characters git-lfs's include patterns give a meaning to (',' separates patterns): each becomes '?',
# which matches it too.
_LFS_PATTERN_SPECIAL = re.compile(r"[,*?\[\]\\!{}\s]")

# git-lfs's words (its messages quote object ids, so no bare status codes: "401" is in many a sha256).
_LFS_MISSING_PATTERNS = ("missing object", "object does not exist", "repository or object not found")
_LFS_AUTH_PATTERNS = (*_AUTH_PATTERNS, "authentication required", "authorization error",
                      "credentials for", "access denied", "forbidden")
_LFS_UNREACHABLE_PATTERNS = ("dial tcp", "connection refused", "no such host", "i/o timeout", "timeout",
                             "missing protocol", "network is unreachable", "no route to host",
                             "tls handshake", "could not resolve")
_LFS_NOT_INSTALLED = re.compile(r"'lfs' is not a git command|git-lfs: (command )?not found")


def git_lfs_missing(what: str) -> EnvironmentFailure:
    """The error for a job that needs Git LFS on a machine without it; ``what`` says what needs it."""
    return EnvironmentFailure(
        f"{what} (`git lfs` is not a git command here)",
        hint="install Git LFS: `apt-get install git-lfs` (Debian/Ubuntu), `brew install git-lfs` (macOS) "
             "or see https://git-lfs.com, then run `git lfs install` once",
    )


def _lfs_not_installed(low: str) -> bool:
    # git's own words, or a shell's for the filter command `git lfs install` configured.
    return bool(_LFS_NOT_INSTALLED.search(low))


def git_lfs_installed(cwd: Path) -> bool:
    """Whether ``git lfs`` works here (git-lfs on PATH or in git's exec path)."""
    try:
        Git(str(cwd)).execute(["git", "lfs", "version"], env=git_environment())
    except GitCommandError as exc:
        if _lfs_not_installed(git_stderr(exc).lower()):
            return False
        raise EnvironmentFailure(
            f"`git lfs version` failed: {git_summary(git_stderr(exc))}") from sanitized(exc)
    return True


@dataclass(frozen=True)
class LfsFailure:
    """Why ``git lfs pull`` failed: git-lfs's own words (credentials masked) and what to do."""

    words: str
    fix: str


def lfs_pull(repo_root: Path, directory: str) -> LfsFailure | None:
    """``git lfs pull`` in ``repo_root`` of the LFS files under ``directory`` (repository-relative
    POSIX path, ``"."`` for all): fetch their objects from the remote and check them out. None when
    it succeeded.

    git-lfs finds its server and credentials as for the clone (the remote's URL, a credential helper,
    ``lfs.url`` in ``.lfsconfig``) and, like the clone, never prompts and times out.
    """
    include = [] if directory == "." else ["--include", _LFS_PATTERN_SPECIAL.sub("?", directory)]
    env = git_environment()
    env["GIT_LFS_SKIP_SMUDGE"] = "0"  # a user's own setting would leave the files pointers
    try:
        Git(str(repo_root)).execute(["git", *LFS_FILTER_CONFIG, *_LFS_TIMEOUTS, "lfs", "pull", *include],
                                    env=env)
    except GitCommandError as exc:
        return _lfs_failure(git_stderr(exc))
    return None


def _lfs_failure(stderr: str) -> LfsFailure:
    words = git_summary(stderr)
    low = stderr.lower()
    if "no space left on device" in low or "disk quota exceeded" in low:
        fix = "free space there, or point TMPDIR at a bigger disk"
    elif any(p in low for p in _LFS_MISSING_PATTERNS):
        fix = ("the LFS server lacks these objects: push them from a clone that has them, with "
               "`git lfs push --all <remote>`")
    elif any(p in low for p in _LFS_AUTH_PATTERNS):
        fix = ("give git-lfs credentials for its server: a git credential helper, or a read-only token in "
               "the URL (git.remote's, or lfs.url's in .lfsconfig when the LFS server is elsewhere)")
    elif any(p in low for p in _LFS_UNREACHABLE_PATTERNS):
        fix = ("check your network or VPN and the LFS server's address: lfs.url in .lfsconfig, else "
               "git.remote's URL + /info/lfs")
    else:
        fix = "run `git lfs pull` there to see more"
    return LfsFailure(words=words, fix=fix)
