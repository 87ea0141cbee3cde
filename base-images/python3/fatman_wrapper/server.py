"""Serving the app: the HTTP server (granian or gunicorn), worker processes, threads, and metrics
shared between them.

Why granian by default (where it runs: Python 3.10+): measured with the wrapper's real work per
request (``benchmarks/wrapper_servers.py``, figures in benchmarks/README-wrapper.md), the adder's
``POST /api/v1/perform`` on granian's WSGI interface, with the job's calls answered in plain WSGI
(``fastpath.py``), served 2.0-2.6x what a bare Flask app serves on gunicorn's gthread workers and
1.9-2.8x the same wrapper on gunicorn, at 0.39-0.49x the bare app's CPU per request: gthread's Python HTTP
parsing and thread hand-offs cost ~400 us of CPU per request before any app runs, granian's Rust
~80 us. (Bare Flask on granian: 1.3-1.9x; the wrapper on granian through Flask: 1.3-1.4x; so
both the server and the plain-WSGI path are needed.)

Granian also reads request headers on its event loop, so clients trickling them hold no Python
thread (on gthread, 8 such clients made ``/live`` time out). Bodies are read by a WSGI thread, so
each worker's pool has ``BODY_READER_THREADS`` more threads than ``FATMAN_THREADS``, and a request
reads its whole body before it takes one of the ``FATMAN_THREADS`` app slots (``limits.AppThreads``).
gunicorn stays for Python 3.9 (granian needs 3.10+) and as ``FATMAN_SERVER=gunicorn``.

The wrapper's promises do not depend on the server: the overload limit, the request timeout, the
body limit and the metrics live in the app (``middleware.py``, ``limits.py``, ``calls.py``,
``metrics.py``); the server provides worker processes that are replaced when they die, a graceful
stop on SIGTERM and the threads; ``FATMAN_TIMEOUT``'s heartbeat is gunicorn's own, and the
wrapper's (``watchdog.py``) under granian.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
from typing import Any, Callable

from .config import Settings, name_conflicts
from .errors import JobLoadError
from .logs import configure as configure_logging

log = logging.getLogger("fatman_wrapper")


def prepare_metrics_dir() -> tuple[str, bool]:
    """Point prometheus_client's multiprocess mode at a fresh directory shared by all workers.

    An existing ``PROMETHEUS_MULTIPROC_DIR`` is emptied (files of an earlier run would be added to
    this run's counts); without one a temporary directory is made. Returns the directory and
    whether it was made here (and so is to be removed at exit).
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    created = False
    if directory:
        os.makedirs(directory, exist_ok=True)
        for stale in glob.glob(os.path.join(directory, "*.db")):
            os.remove(stale)
    else:
        directory = _writable_temp_dir("fatman-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        created = True
    # Any: a module looked up by name at run time, whose attributes the type checker cannot know.
    values: Any = sys.modules.get("prometheus_client.values")
    if values is not None and hasattr(values, "get_value_class"):
        # prometheus_client was imported before the variable was set (by a sitecustomize, say):
        # switch the already-chosen value class to the multiprocess one.
        values.ValueClass = values.get_value_class()
    return directory, created


def _writable_temp_dir(prefix: str) -> str:
    """A new temporary directory: in the usual place, else in /dev/shm, which a container with a
    read-only root filesystem (Kubernetes' readOnlyRootFilesystem) still has writable."""
    try:
        return tempfile.mkdtemp(prefix=prefix)
    except OSError as exc:
        failure = exc
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        try:
            return tempfile.mkdtemp(prefix=prefix, dir="/dev/shm")
        except OSError:
            pass
    raise JobLoadError(
        f"no writable folder for the workers' shared metrics ({failure})",
        hint="with a read-only root filesystem, mount a writable /tmp (docker run --tmpfs /tmp; an "
        "emptyDir volume in Kubernetes) or set PROMETHEUS_MULTIPROC_DIR to a writable folder",
    ) from failure


def _heartbeat_dir() -> str | None:
    # Gunicorn workers touch a file every few seconds; on a container's overlay /tmp that can
    # stall, so use memory-backed /dev/shm where there is one (gunicorn's own advice).
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def gunicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """The gunicorn settings the wrapper runs with (see README.md for why each)."""
    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": settings.workers,
        "threads": settings.worker_threads,
        "worker_class": "gthread",
        "timeout": settings.timeout,
        # On SIGTERM: stop accepting, let in-flight requests finish for this long, then exit 0.
        "graceful_timeout": settings.graceful_timeout,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "preload_app": False,
        "proc_name": f"fatman-{settings.name or 'job'}",
    }
    heartbeat = _heartbeat_dir()
    if heartbeat:
        options["worker_tmp_dir"] = heartbeat
    return options


def default_server() -> str:
    """granian where it can run (Python 3.10+ with the package installed), else gunicorn."""
    if sys.version_info >= (3, 10) and importlib.util.find_spec("granian") is not None:
        return "granian"
    return "gunicorn"


def chosen_server(settings: Settings) -> str:
    """The server ``run`` uses: ``FATMAN_SERVER``, else ``default_server()``; raises
    ``JobLoadError`` when the one asked for cannot run here."""
    server = settings.server or default_server()
    if server == "granian":
        if sys.version_info < (3, 10):
            raise JobLoadError(
                "FATMAN_SERVER=granian needs Python 3.10 or newer",
                hint="unset FATMAN_SERVER (gunicorn serves on Python 3.9) or use a newer Python",
            )
        if importlib.util.find_spec("granian") is None:
            raise JobLoadError(
                "FATMAN_SERVER=granian, but granian is not installed",
                hint="install the wrapper with its dependencies, or set FATMAN_SERVER=gunicorn",
            )
    return server


def run(
    entrypoint_path: str | os.PathLike,
    class_name: str | None = None,
    *,
    root: str | os.PathLike = ".",
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Serve the job until stopped; does not return normally (the server exits the process).

    Moves into the job root first (Racetrack's python3 job type promises that the working
    directory is the job's root, so ``./model.pkl`` works) and puts it first on ``sys.path``.
    """
    settings = Settings.from_env()
    server = chosen_server(settings)
    root_path = os.path.realpath(root)
    if not os.path.isdir(root_path):
        raise JobLoadError(f"job root '{root}' is not a directory", hint="pass --root the job's folder")
    os.chdir(root_path)
    metrics_dir, created = prepare_metrics_dir()
    formatter = configure_logging(settings)
    for conflict in name_conflicts():
        log.warning("%s", conflict)
    bind_host = host or settings.host
    bind_port = port or settings.port

    def cleanup() -> None:
        if created:
            shutil.rmtree(metrics_dir, ignore_errors=True)

    log.info(
        "serving %s from %s on %s:%d with %s, %d worker(s) x %d thread(s); metrics of all workers in %s",
        entrypoint_path,
        root_path,
        bind_host,
        bind_port,
        server,
        settings.workers,
        settings.worker_threads,
        metrics_dir,
    )
    if settings.max_concurrency:
        log.info(
            "overload limit: %d running + %d waiting (up to %g s) in all, %d + %d per worker; "
            "beyond that 429",
            settings.max_concurrency * settings.workers,
            settings.max_queue * settings.workers,
            settings.queue_timeout,
            settings.max_concurrency,
            settings.max_queue,
        )
        if settings.workers < settings.workers_asked:
            log.warning(
                "%d worker(s), not %d: FATMAN_MAX_CONCURRENCY=%d and FATMAN_MAX_QUEUE=%d are shared "
                "evenly among the workers, and %d is the most that divides both",
                settings.workers, settings.workers_asked, settings.max_concurrency * settings.workers,
                settings.max_queue * settings.workers, settings.workers,
            )
    app_args = {"entrypoint": os.fspath(entrypoint_path), "class_name": class_name, "root": root_path}
    if server == "granian":
        _serve_granian(settings, bind_host, bind_port, app_args, cleanup)
    else:
        _serve_gunicorn(settings, bind_host, bind_port, app_args, cleanup, formatter)


def load_app(target: str) -> Callable[..., Any]:
    """The app of one worker process, from the JSON ``target`` ``run`` hands the server.

    Module-level and given plain data, so a worker started with ``spawn`` (not ``fork``) finds it too.
    """
    from .app import create_app

    args = json.loads(target)
    # In a thread: the probes answer while a slow __init__ (loading a model) runs, and the server
    # does not kill a worker whose boot outlasts its timeout.
    return create_app(
        args["entrypoint"],
        args["class_name"],
        root=args["root"],
        background=True,
        app_threads=args.get("app_threads", 0),
        heartbeat_dir=args.get("heartbeat_dir") or None,
    )


# granian's own log lines go through the root logger, so they have the wrapper's format (JSON with
# LOG_STRUCTURED) on stderr; its access log is off (the wrapper writes its own).
GRANIAN_LOGGING = {
    "filters": {"fatman_threads": {"()": "fatman_wrapper.server.ThreadCountWarning"}},
    "loggers": {
        "_granian": {"handlers": [], "propagate": True, "filters": ["fatman_threads"]},
        "granian.access": {"handlers": [], "propagate": False},
    },
}


class ThreadCountWarning(logging.Filter):
    """Drops granian's warning that the thread pool is large for the cores: it is on purpose (the
    body readers, ``BODY_READER_THREADS``), and a warning on every start would teach to ignore them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Python threads, which seems quite high" not in record.getMessage()


def granian_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """The granian settings the wrapper runs with (see README.md for why each)."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    return {
        "address": host,
        "port": port,
        "interface": Interfaces.WSGI,
        "workers": settings.workers,
        # The WSGI app runs in these: FATMAN_THREADS (with the overload limit's spare ones) run
        # requests, the others only wait for slow clients' bodies (limits.AppThreads). Idle ones
        # end after 30 s.
        "blocking_threads": settings.worker_threads + BODY_READER_THREADS,
        # HTTP/1.1 only, as gunicorn: no h2c upgrade surprises behind a gateway.
        "http": HTTPModes.http1,
        "websockets": False,
        # A client has this long to send a request's headers (read on the event loop, holding no
        # thread), then the connection is closed.
        "http1_settings": HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS),
        "log_enabled": True,
        "log_level": LogLevels.info,
        "log_dictconfig": GRANIAN_LOGGING,
        "log_access": False,
        # A worker that dies (os._exit, a segfault) is replaced at once.
        "respawn_failed_workers": True,
        # On SIGTERM: stop accepting, let in-flight requests finish for this long, then kill.
        "workers_kill_timeout": max(1, settings.graceful_timeout),
    }


HEADER_READ_TIMEOUT_MS = 30_000
# Threads per granian worker beyond FATMAN_THREADS, for requests whose body is still arriving: that
# many slow clients per worker cannot delay the others (RELIABILITY.md, "Slow clients").
BODY_READER_THREADS = 64


def _serve_granian(
    settings: Settings, host: str, port: int, app_args: dict[str, Any], cleanup: Callable[[], None]
) -> None:
    from .watchdog import start_watching

    # FATMAN_TIMEOUT: granian has no worker heartbeat of its own (watchdog.py).
    # In memory-backed /dev/shm where there is one, as gunicorn's heartbeat files.
    shm = _heartbeat_dir()
    if shm:
        heartbeat_dir = tempfile.mkdtemp(prefix="fatman-heartbeat-", dir=shm)
    else:
        heartbeat_dir = _writable_temp_dir("fatman-heartbeat-")
    start_watching(heartbeat_dir, settings.timeout)
    target = json.dumps({**app_args, "app_threads": settings.worker_threads, "heartbeat_dir": heartbeat_dir})
    server = _granian_server_class()(target, **granian_options(settings, host, port))
    server.on_shutdown(cleanup)
    server.on_shutdown(lambda: shutil.rmtree(heartbeat_dir, ignore_errors=True))
    # granian calls target_loader(target) in each worker: the app is made there, not inherited.
    server.serve(target_loader=load_app)
    sys.exit(0)


def _granian_server_class() -> Any:
    """granian's process server, with a listening socket per worker slot that outlives its workers.

    On Linux granian has each worker build a socket of its own (SO_REUSEPORT), and the kernel
    spreads new connections over them by their addresses: a client opening 16 connections at once
    gets about half at each of two workers. But a worker's socket closed with it, and the
    connections the kernel had queued there were reset (or left waiting 30 s): with both cores
    saturated, 4 of about 14 runs of test_a_dying_worker_is_replaced_and_no_counts_are_lost lost
    a request besides the one that killed the worker. One socket shared by every worker, as
    gunicorn has, kept those; but then the first worker to wake accepted the whole burst, and a
    CPU-bound job ran on one core until ``balance`` moved the connections (0.4-1.5 s of a fresh
    wrk run, up to 14 % of the 50 ms job's throughput, benchmarks/README-wrapper.md).

    So the server builds the SO_REUSEPORT sockets itself, one per worker slot, keeps them open, and
    gives each worker its slot's socket; the worker that replaces a dead one accepts from the same
    socket, so what the kernel queued there waits for it instead of being reset. Unix sockets keep
    granian's own shared socket. granian 2.8.9's private attributes (the version is pinned): the
    sockets are handed over as its non-Linux path hands its shared one (``_shd``, ``_sso``).
    """
    import socket

    from granian.net import SocketSpec
    from granian.server import MPServer

    class KeptSocketsServer(MPServer):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # granian exits the whole server when a worker dies again within 5.5 s of its
            # replacement ("crash loop"). Here workers die only from a call (os._exit, a segfault
            # in native code): the job loads in a thread of the worker, so a load failure is a
            # 503, not a dead worker. Two such calls in a row must not take down the server and
            # every other client with it; gunicorn replaces its workers every time too.
            self.respawned_wrks = _NoCrashLoop()
            self._kept: list[tuple[Any, socket.socket]] = []

        def _init_shared_socket(self) -> None:
            if self.bind_uds:
                super()._init_shared_socket()  # one shared socket already
                return
            # Any: granian's private attributes, typed for its own Linux path.
            server: Any = self
            port = server.bind_port
            for _ in range(server.workers):
                holder = SocketSpec(server.bind_addr, port, server.backlog).build()
                sock = socket.socket(fileno=holder.get_fd())
                sock.set_inheritable(True)
                port = sock.getsockname()[1]  # port 0: the others join the first one's port
                self._kept.append((holder, sock))
            server._ssp = None

        def _spawn_worker(self, idx: int, *args: Any, **kwargs: Any) -> Any:
            # A replacement has its slot's index (granian's _respawn_workers), so its socket.
            if not self._kept:
                return super()._spawn_worker(idx, *args, **kwargs)
            server: Any = self
            server._shd, server._sso = self._kept[idx]
            server._sfd = server._shd.get_fd()
            try:
                return super()._spawn_worker(idx, *args, **kwargs)
            finally:
                server._shd = server._sso = server._sfd = None

        def _drop_shared_socket(self) -> None:
            super()._drop_shared_socket()
            # As granian closes its shared one; the holders stay referenced to the end, as its
            # ``_shd`` does, so nothing closes a descriptor number twice.
            for _, sock in self._kept:
                sock.close()

    return KeptSocketsServer


class _NoCrashLoop(dict):  # type: ignore[type-arg]
    """granian's record of when each worker was last replaced, as its crash-loop check reads it:
    never recently, so every dead worker is replaced (see ``_granian_server_class``)."""

    def get(self, key: Any, default: Any = None) -> Any:
        return 0


def _serve_gunicorn(
    settings: Settings,
    host: str,
    port: int,
    app_args: dict[str, Any],
    cleanup: Callable[[], None],
    formatter: logging.Formatter,
) -> None:
    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger

    from .metrics import mark_worker_dead

    def child_exit(server: Any, worker: Any) -> None:
        mark_worker_dead(worker.pid)

    def on_exit(server: Any) -> None:
        cleanup()

    class WrapperLogger(Logger):  # type: ignore[misc]
        """gunicorn's own lines in the wrapper's format (JSON with LOG_STRUCTURED) on stderr."""

        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            if settings.log_structured:
                for handler in self.error_log.handlers:
                    handler.setFormatter(formatter)

    options = gunicorn_options(settings, host, port)
    options.update(child_exit=child_exit, on_exit=on_exit, logger_class=WrapperLogger)
    target = json.dumps(app_args)

    class FatmanServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)
            # gunicorn 24+ opens a control socket under $HOME for its `gunicornc` tool: nothing in a
            # container uses it (signals do), and on a read-only root filesystem it logs an error.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Callable[..., Any]:
            return load_app(target)

    FatmanServer().run()
