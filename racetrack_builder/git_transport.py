"""Talking to git: the shallow clone, the environment it runs in, and its failures in our terms.

Git never prompts here (``GIT_TERMINAL_PROMPT=0``, ssh ``BatchMode=yes``) and slow or silent remotes
time out, so a CI job fails instead of hanging. Git's errors become ours at this boundary: a
missing branch is the user's input (with the remote's branches listed), refused credentials and
unreachable remotes are environment failures, a full disk says where. Credentials in URLs never
reach a message or a chained exception.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from git import GitCommandError, Repo
from git.cmd import Git

from .errors import AuthenticationRefused, EnvironmentFailure, NoSpaceLeft, RemoteUnreachable, SourceError
from .git_urls import mask_credentials
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
    """The output of ``git ARGS`` run in ``cwd``, or None when git fails."""
    try:
        return str(Git(str(cwd)).execute(["git", *args], strip_newline_in_stdout=True))
    except GitCommandError:
        return None


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
        stderr = stderr[len("stderr: "):].strip("'")
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
    try:
        with Repo.clone_from(url, checkout, depth=1, single_branch=True, branch=branch, env=env) as repo:
            return str(repo.head.commit.hexsha)
    except GitCommandError as exc:
        raise _clone_error(exc, shown=shown, url=url, branch=branch, env=env,
                           workspace=workspace) from sanitized(exc)
