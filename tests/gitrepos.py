"""Real git repositories on disk for tests: working trees, bare remotes and a ``git daemon``.

Everything here drives the ``git`` command line, not gitpython, so the code under test and the
fixtures never share a bug. Commits are made with a fixed identity and fixed dates, so a test that
needs a reproducible SHA gets one, and never with the developer's own git configuration (see
:data:`GIT_ENV`).

Typical use (the fixtures in ``tests/conftest.py`` wrap these)::

    remote = make_bare_repo(tmp_path / "adder.git", {
        "jobs/adder/adder.py": "class Adder: ...",
        "jobs/adder/fatman.yaml": "...",
    }, branches={"dev": {"jobs/adder/adder.py": "class Adder2: ..."}})
    remote.as_uri()                           # file:// URL to put in git.remote
    with GitDaemon(tmp_path) as daemon:       # serves every repository under tmp_path
        daemon.url("adder.git")               # git://127.0.0.1:PORT/adder.git
    with GitHttpServer(tmp_path, username="ci", password="s3cret") as server:   # smart HTTP + basic auth
        server.url("adder.git", credentials=True)   # http://ci:s3cret@127.0.0.1:PORT/adder.git
    make_lfs_bare_repo(tmp_path / "models.git", {"jobs/m/model.bin": b"..."}, lfs=["*.bin"])
                                              # model.bin stored in Git LFS, its object on the remote

File contents are given as ``{relative POSIX path: str | bytes | Symlink}``; a ``Symlink(target)``
value makes a symbolic link whose target is written as is (relative or absolute).

Import it as ``import gitrepos`` (pytest puts ``tests/`` on ``sys.path`` because ``tests/`` is not a
package) or use the fixtures ``git_repo_factory``, ``bare_repo_factory`` and ``git_daemon``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

__all__ = [
    "GIT_ENV",
    "LFS_FILTER",
    "Files",
    "GitDaemon",
    "GitHttpServer",
    "Symlink",
    "closed_port",
    "commit_files",
    "free_port",
    "git",
    "git_daemon",
    "enable_lfs",
    "init_repo",
    "lfs_object",
    "make_bare_repo",
    "make_lfs_bare_repo",
    "push_files",
    "write_files",
]


@dataclass(frozen=True)
class Symlink:
    """A symbolic link to write into a repository; ``target`` is stored verbatim."""

    target: str


FileContent = str | bytes | Symlink
Files = Mapping[str, FileContent]

# A hermetic environment for the fixture's own git calls: a fixed identity and dates (stable SHAs),
# no system or global configuration (a developer's hooks, signing or init.defaultBranch must not
# change what a test builds), and no prompts.
GIT_ENV: dict[str, str] = {
    "GIT_AUTHOR_NAME": "Racetrack Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Racetrack Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}


def git(*args: str, cwd: Path, check: bool = True) -> str:
    """Run ``git ARGS`` in ``cwd`` with :data:`GIT_ENV`; return stdout (stripped).

    Raises ``RuntimeError`` carrying git's stderr when ``check`` and git fails.
    """
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({proc.returncode}) in {cwd}:\n{proc.stderr}")
    return proc.stdout.strip()


def write_files(root: Path, files: Files) -> None:
    """Write ``files`` under ``root``, creating parent folders and replacing what is there."""
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        if isinstance(content, Symlink):
            target.symlink_to(content.target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


def init_repo(path: Path, files: Files | None = None, *, branch: str = "master",
              message: str = "initial commit") -> Path:
    """Create a working repository at ``path`` on ``branch``; commit ``files`` when given.

    With no files the repository has no commit at all (an "unborn" branch). Returns ``path``.
    """
    path.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", f"--initial-branch={branch}", str(path), cwd=path)
    if files:
        commit_files(path, files, message=message)
    return path


def commit_files(repo: Path, files: Files, *, message: str = "update files",
                 remove: tuple[str, ...] = ()) -> str:
    """Write ``files`` into the working tree ``repo``, delete ``remove``, commit all; return the SHA."""
    write_files(repo, files)
    for rel in remove:
        git("rm", "--quiet", "-r", "--", rel, cwd=repo)
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "--allow-empty", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


def make_bare_repo(path: Path, files: Files, *, branch: str = "master",
                   branches: Mapping[str, Files] | None = None) -> Path:
    """Create a bare repository at ``path`` (a remote to clone from) and return ``path``.

    ``files`` is committed on ``branch`` (also the remote's HEAD). Each entry of ``branches`` is
    a further branch forked from ``branch`` with those files written (added or overwritten) on top.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(path), cwd=path.parent)
    work = path.parent / f".{path.name}.work"
    try:
        init_repo(work, files, branch=branch)
        git("remote", "add", "origin", str(path), cwd=work)
        git("push", "--quiet", "origin", branch, cwd=work)
        for name, extra in (branches or {}).items():
            git("checkout", "--quiet", "-b", name, branch, cwd=work)
            commit_files(work, extra, message=f"files of {name}")
            git("push", "--quiet", "origin", name, cwd=work)
    finally:
        _rmtree(work)
    return path


# The filter `git lfs install` writes into a user's global configuration; set here per repository,
# since GIT_ENV hides the global one.
LFS_FILTER: dict[str, str] = {
    "filter.lfs.clean": "git-lfs clean -- %f",
    "filter.lfs.smudge": "git-lfs smudge -- %f",
    "filter.lfs.process": "git-lfs filter-process",
    "filter.lfs.required": "true",
}


def enable_lfs(repo: Path, patterns: Iterable[str]) -> None:
    """Set Git LFS up in the working repository ``repo`` (the filter in its own configuration, no
    hooks) and ``git lfs track`` each pattern, so files matching them are committed as LFS files."""
    for key, value in LFS_FILTER.items():
        git("config", key, value, cwd=repo)
    for pattern in patterns:
        git("lfs", "track", pattern, cwd=repo)


def make_lfs_bare_repo(path: Path, files: Files, *, lfs: Iterable[str], branch: str = "master",
                       push_objects: bool = True) -> Path:
    """A bare repository at ``path`` (a file:// remote) whose files matching the ``lfs`` patterns are
    Git LFS files (``.gitattributes`` committed too); returns ``path``.

    Their objects are pushed to it (``git lfs push --all``) unless ``push_objects`` is false: then
    the remote has the pointers but not the objects, as when someone forgot to push them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(path), cwd=path.parent)
    work = path.parent / f".{path.name}.work"
    try:
        init_repo(work, branch=branch)
        enable_lfs(work, lfs)
        commit_files(work, files)
        git("remote", "add", "origin", path.as_uri(), cwd=work)
        # --no-verify: `git lfs track` installed a pre-push hook that would push the objects too.
        git("push", "--quiet", "--no-verify", "origin", branch, cwd=work)
        if push_objects:
            git("lfs", "push", "--all", path.as_uri(), cwd=work)
    finally:
        _rmtree(work)
    return path


def lfs_object(repo_git_dir: Path, content: str | bytes) -> Path:
    """Where Git LFS keeps the object of ``content`` under a ``.git`` folder or a bare repository
    (``lfs/objects/ab/cd/<sha256>``): whether it exists says whether it was fetched or pushed."""
    data = content.encode() if isinstance(content, str) else content
    oid = hashlib.sha256(data).hexdigest()
    return repo_git_dir / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def push_files(bare: Path, files: Files, *, branch: str = "master", message: str = "new commit",
               remove: tuple[str, ...] = ()) -> str:
    """Commit ``files`` (and delete ``remove``) on top of ``branch`` of the bare repo; return the SHA.

    The branch is created from the remote's HEAD when it does not exist yet.
    """
    work = bare.parent / f".{bare.name}.push"
    try:
        git("clone", "--quiet", str(bare), str(work), cwd=bare.parent)
        exists = git("ls-remote", "--heads", "origin", branch, cwd=work)
        if exists:
            git("checkout", "--quiet", branch, cwd=work)
        else:
            git("checkout", "--quiet", "-b", branch, cwd=work)
        sha = commit_files(work, files, message=message, remove=remove)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return sha
    finally:
        _rmtree(work)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Stop a server a test started: SIGTERM, then SIGKILL if it has not gone within ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connecting to it is refused at once."""
    return free_port()


class GitDaemon:
    """``git daemon`` serving every repository under ``base_path`` on 127.0.0.1 (a git:// remote).

    Use as a context manager: entering starts the daemon on a free port and waits (bounded) until it
    accepts connections; leaving stops it. ``url(name)`` gives the clone URL of
    ``base_path / name``. Repositories need no ``git-daemon-export-ok`` file (``--export-all``).
    """

    def __init__(self, base_path: Path, *, start_timeout: float = 10.0) -> None:
        self.base_path = base_path
        self.start_timeout = start_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        """``git://127.0.0.1:PORT/NAME`` for the repository ``base_path / name``."""
        if not self.port:
            raise RuntimeError("the git daemon is not running; use GitDaemon as a context manager")
        return f"git://127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> GitDaemon:
        # free_port() can race with another process grabbing the port; retry a few times.
        for _ in range(5):
            self.port = free_port()
            self._proc = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors",
                 "--listen=127.0.0.1", f"--port={self.port}", f"--base-path={self.base_path}",
                 str(self.base_path)],
                env={**os.environ, **GIT_ENV},
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            if self._wait_ready():
                return self
            self._stop()
        raise RuntimeError(f"git daemon did not start on 127.0.0.1 within {self.start_timeout}s")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return True
            time.sleep(0.05)
        return False

    def _stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, timeout=5)
        self._proc = None

    def __exit__(self, *exc: object) -> None:
        self._stop()


@contextlib.contextmanager
def git_daemon(base_path: Path) -> Iterator[GitDaemon]:
    """Functional form of :class:`GitDaemon`."""
    with GitDaemon(base_path) as daemon:
        yield daemon


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


class GitHttpServer:
    """Git's smart HTTP protocol (``git http-backend``) for every repository under ``base_path``,
    on 127.0.0.1, optionally behind HTTP basic auth: the closest loopback stand-in for an https
    remote that needs a token.

    Use as a context manager. ``url(name)`` is ``http://127.0.0.1:PORT/NAME``; with
    ``credentials=True`` it carries ``username:password`` the way users paste tokens into URLs.
    ``requests`` counts the requests answered (401s included), e.g. to prove nothing was retried.
    """

    def __init__(self, base_path: Path, *, username: str | None = None, password: str | None = None) -> None:
        self.base_path = base_path
        self.username = username
        self.password = password
        self.port = 0
        self.requests = 0
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, name: str, *, credentials: bool = False) -> str:
        """The clone URL of ``base_path / name`` (with ``user:password@`` when ``credentials``)."""
        if not self.port:
            raise RuntimeError("the server is not running; use GitHttpServer as a context manager")
        auth = f"{self.username}:{self.password}@" if credentials and self.username else ""
        return f"http://{auth}127.0.0.1:{self.port}/{name}"

    def _authorized(self, header: str) -> bool:
        if self.username is None:
            return True
        expected = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        return hmac.compare_digest(header, f"Basic {expected}")

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.requests += 1
        # Read the whole body first, also for a 401: a socket closed with unread data in it is
        # reset, and the client may then see "Connection reset by peer" instead of the 401 (seen
        # in CI when git, asked for credentials, had already sent a POST body).
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if not self._authorized(environ.get("HTTP_AUTHORIZATION", "")):
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'),
                                                ("Content-Length", "0")])
            return [b""]
        cgi = {
            **os.environ, **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.base_path),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": self.username or "",
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
        }
        proc = subprocess.run(["git", "http-backend"], input=body, env=cgi, capture_output=True,
                              timeout=60, check=False)
        head, payload = _split_cgi_output(proc.stdout)
        status = "200 OK"
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        start_response(status, headers)
        return [payload]

    def _server_class(self) -> type[WSGIServer]:
        """The WSGI server that accepts the connections (a subclass may speak TLS on them)."""
        return WSGIServer

    def __enter__(self) -> GitHttpServer:
        self._server = make_server("127.0.0.1", 0, self._app, server_class=self._server_class(),
                                   handler_class=_QuietHandler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="git-http", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None


def _split_cgi_output(output: bytes) -> tuple[bytes, bytes]:
    """CGI output is headers, a blank line (CRLF or LF line ends), then the body."""
    ends = [(output.find(sep), sep) for sep in (b"\r\n\r\n", b"\n\n") if output.find(sep) != -1]
    if not ends:
        return output, b""
    index, sep = min(ends)
    return output[:index], output[index + len(sep):]


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
