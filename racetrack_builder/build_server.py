"""A build server: the CLI kept warm between commands, for a developer's rebuild loop.

A new process spends about 0.3 s importing docker-py, pydantic, GitPython, Jinja2 and click before
it does anything (benchmarks/README-build.md): more than the engine takes to rebuild a job whose
code changed. ``racetrack-build server`` imports them once and waits on a Unix socket; with
``RACETRACK_BUILD_SERVER=1`` every command hands itself to it.

- **The client** (:func:`hand_over`, run before anything heavy is imported) sends its arguments,
  environment, working folder and umask, and its standard input, output and error themselves
  (file descriptors passed over the socket), so the command reads and writes the client's
  terminal or pipes as if it ran there. It forwards SIGINT, SIGTERM and SIGHUP to the command
  and exits with its exit code.
- **The server** forks a child per command: each starts from the same freshly imported state,
  commands never share anything, and several run at once. A child whose client goes away is
  terminated (SIGTERM: the usual cleanup of workspaces, tags and containers).
- **Never stale, never someone else's.** The server refuses a command from a client whose
  racetrack-build differs (its Python, or any of its modules' sizes and times); the client then
  runs the command itself and says why. A client with another ``PATH`` (or git setting) is served
  after GitPython looks for git again, as it does at import. The socket lives in a folder of this
  user's alone, as ``serve``'s records do.

No library does this for a Python CLI (nailgun and the Gradle daemon are the JVM's); it is a few
system calls of the standard library.
"""

from __future__ import annotations

# The client's path imports only what is here (about 5 ms; json, hashlib, contextlib, typing and
# tempfile would triple it): the server's side imports the rest where it needs it.
import marshal
import os
import signal
import socket
import sys

from .user_dirs import make_ours, ours_alone, runtime_dir

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (5 ms); mypy knows the name
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

ENV_SWITCH = "RACETRACK_BUILD_SERVER"
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# What GitPython's search for git at import depends on.
_GIT_FINDING = ("PATH", "GIT_PYTHON_GIT_EXECUTABLE", "GIT_PYTHON_REFRESH")
_MAX_REQUEST = 4 << 20  # arguments and environment: far less in practice
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def socket_path() -> str:
    """This user's server socket, in their own folder (user_dirs.py)."""
    return os.path.join(runtime_dir(), "build-server.sock")


def fingerprint() -> str:
    """What the server's code must match: this Python and every module of the package (size and
    modification time: a stat each, no reading), as text (a few kB, compared whole)."""
    modules = []
    for folder, dirs, files in os.walk(_PACKAGE):
        # Pruned as the walk goes (a sorted() around the walk would have read them all first).
        dirs[:] = [d for d in dirs if d not in ("__pycache__", "_data")]
        for name in files:
            if name.endswith(".py"):
                info = os.stat(os.path.join(folder, name))
                modules.append(f"{folder}/{name} {info.st_size} {info.st_mtime_ns}")
    return "\n".join([sys.executable, sys.version, *sorted(modules)])


def wanted() -> bool:
    return os.environ.get(ENV_SWITCH, "").strip().lower() in ("1", "true", "yes", "on")


# -- the client --------------------------------------------------------------------------------------
def hand_over(argv: list[str]) -> int | None:
    """Run the command ``argv`` in the build server and return its exit code; None when no server
    is asked for or none takes it, so the caller runs the command itself."""
    if not wanted() or argv[:1] == ["server"]:
        return None
    path = socket_path()
    if not ours_alone(os.path.dirname(path)):
        if os.path.lexists(path):
            sys.stderr.write(f"Warning: the build server's folder {os.path.dirname(path)} may be written "
                             "by other users, so its server is not used (chmod 700 it, or set "
                             "XDG_RUNTIME_DIR to a folder of yours); running the command here\n")
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None  # no server running: the command runs here, as without the variable
    with conn:
        umask = os.umask(0)
        os.umask(umask)
        # marshal: built in, and both ends are the same Python (the fingerprint says so).
        request = marshal.dumps({"argv": list(argv), "env": dict(os.environ), "cwd": os.getcwd(),
                                 "umask": umask, "fingerprint": fingerprint()})
        try:
            socket.send_fds(conn, [len(request).to_bytes(4, "big") + request], [0, 1, 2])
            answers = conn.makefile("rb")
            first = answers.readline().decode().strip()
        except OSError:
            return None
        except KeyboardInterrupt:
            return 130  # before the command started: nothing of it to clean up
        if not first.startswith("pid "):
            reason = first.removeprefix("refused ") or "it ended the connection"
            sys.stderr.write(f"Warning: the build server did not take the command ({reason}); "
                             "running it here\n")
            return None
        pid = int(first.split()[1])

        def forward(signum: int, frame: object) -> None:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass  # the command has just ended

        for forwarded in _FORWARDED:
            signal.signal(forwarded, forward)
        try:
            last = answers.readline().decode().strip()
        except OSError:
            last = ""
        if last.startswith("exit "):
            return int(last.split()[1])
        sys.stderr.write("Error: the build server's command ended without an exit code (the server "
                         "stopped?); run it again, or without RACETRACK_BUILD_SERVER\n")
        return 3


# -- the server --------------------------------------------------------------------------------------
def _preload() -> None:
    """Import what commands import, once, before the first fork."""
    import docker  # noqa: F401
    import git  # noqa: F401
    import jinja2  # noqa: F401
    import rich.console  # noqa: F401
    import rich.live  # noqa: F401

    from . import build, buildkit_build, call, cli, engine, manifest, render, source  # noqa: F401


def serve_forever(on_ready: Callable[[str], None] | None = None,
                  on_command: Callable[[str], None] | None = None) -> None:
    """Listen on :func:`socket_path` until SIGINT or SIGTERM, a child per command. ``on_ready``
    gets the socket's path; ``on_command`` a line per command (its name and pid, never its
    arguments, which can hold a token)."""
    import contextlib
    import gc
    import threading

    _preload()
    code_print = fingerprint()
    git_finding = tuple(os.environ.get(k, "") for k in _GIT_FINDING)
    folder = os.path.dirname(socket_path())
    if not make_ours(folder):
        from .errors import EnvironmentFailure

        raise EnvironmentFailure(f"{folder} is not a folder of this user's that nobody else may write to",
                                 hint="remove it, or set XDG_RUNTIME_DIR to a folder of yours")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = socket_path()
    with contextlib.suppress(FileNotFoundError):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # left by a server that died
        else:
            from .errors import EnvironmentFailure

            raise EnvironmentFailure(f"a build server already listens on {path}",
                                     hint="stop it first: Ctrl-C where it runs, or SIGTERM")
        finally:
            probe.close()
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        listener.close()  # accept() below ends with OSError

    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, stop)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    gc.freeze()  # what is imported stays shared with the children, untouched by their collections
    if on_ready is not None:
        on_ready(path)
    try:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                if stopping.is_set():
                    break
                raise
            pid = os.fork()
            if pid == 0:
                code = 70  # EX_SOFTWARE, should _child itself fail
                try:
                    listener.close()
                    code = _child(conn, code_print, git_finding)
                finally:
                    os._exit(code)  # never back into the server's loop, whatever happened
            conn.close()
            if on_command is not None:
                on_command(f"a command in pid {pid}")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    if len(data) < 4:
        raise ValueError("no request")
    size = int.from_bytes(data[:4], "big")
    if size > _MAX_REQUEST:
        raise ValueError("request too large")
    body = bytearray(data[4:])
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("request cut short")
        body += chunk
    request = marshal.loads(bytes(body))
    if not isinstance(request, dict):
        raise ValueError("not a request")
    return request, list(fds)


def _refusal(theirs: str, ours: str) -> str:
    """Why a client whose :func:`fingerprint` is ``theirs`` is not served by this server."""
    their_python, our_python = theirs.split("\n")[:2], ours.split("\n")[:2]
    if their_python != our_python:
        return (f"it runs on {our_python[0]} (Python {our_python[-1].split()[0]}), this command on "
                f"{their_python[0]}: start one with this command's Python to use it")
    return ("it runs another copy of racetrack-build, or one of its modules changed since it "
            "started: restart it from the racetrack-build this command runs")


def _find_git_again() -> None:
    """GitPython's search for git at import, again, under the client's PATH and settings: a missing
    git stays a failure of the first git command, named there (gitpython.py)."""
    import git

    try:
        git.refresh()
    except Exception:  # noqa: BLE001 - GIT_PYTHON_REFRESH=quiet's meaning: no git is not fatal here
        pass


def _child(conn: socket.socket, code_print: str, git_finding: tuple[str, ...]) -> int:
    """One command, in a fork of the server; returns its exit code."""
    import contextlib
    import threading

    for reset in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(reset, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as KeyboardInterrupt
    try:
        request, fds = _receive(conn)
    except (OSError, ValueError):
        return 3
    env: dict[str, Any] = request["env"] if isinstance(request.get("env"), dict) else {}
    refusal = _refusal(str(request.get("fingerprint")), code_print) if request.get(
        "fingerprint") != code_print else "" if len(fds) == 3 else "the standard streams did not come"
    if refusal:
        with contextlib.suppress(OSError):
            conn.sendall(f"refused {refusal}\n".encode())
        return 0
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    # New stream objects on the client's descriptors, buffered as a process of its own would be.
    encoding, errors = sys.stdout.encoding, sys.stdout.errors
    sys.stdin = open(0, encoding=encoding, closefd=False)  # noqa: SIM115 - the process's own stream
    sys.stdout = open(1, "w", encoding=encoding, errors=errors, closefd=False,  # noqa: SIM115
                      buffering=1 if os.isatty(1) else -1)
    sys.stderr = open(2, "w", encoding=encoding, errors="backslashreplace", closefd=False,  # noqa: SIM115
                      buffering=1)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})
    if tuple(os.environ.get(k, "") for k in _GIT_FINDING) != git_finding:
        _find_git_again()
    os.chdir(str(request.get("cwd") or "/"))
    umask = request.get("umask")
    os.umask(umask if isinstance(umask, int) else 0o022)
    conn.sendall(f"pid {os.getpid()}\n".encode())

    done = threading.Event()

    def client_gone() -> None:
        with contextlib.suppress(OSError):
            conn.recv(1)  # the client sends nothing more: this returns when it is gone
        if not done.is_set():
            os.kill(os.getpid(), signal.SIGTERM)  # the command's cleanup, as a closed terminal gives

    threading.Thread(target=client_gone, name="build-server-client", daemon=True).start()
    code = _run([str(a) for a in request.get("argv") or []])
    done.set()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the exit code below is the last word
    with contextlib.suppress(OSError):
        conn.sendall(f"exit {code}\n".encode())
    return code


def _run(argv: list[str]) -> int:
    import contextlib
    import threading

    from .cli import main

    code = 0
    try:
        main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - the command's own failure, reported as a process would
        import traceback

        traceback.print_exc()
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()  # as the interpreter waits for them at exit (the install's cleanup)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    return code
