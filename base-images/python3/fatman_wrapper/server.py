"""Serving the app with gunicorn: worker processes, threads, and metrics shared between them."""

from __future__ import annotations

import glob
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


def run(
    entrypoint_path: str | os.PathLike,
    class_name: str | None = None,
    *,
    root: str | os.PathLike = ".",
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Serve the job with gunicorn until stopped; does not return normally (gunicorn exits).

    Moves into the job root first (Racetrack's python3 job type promises that the working
    directory is the job's root, so ``./model.pkl`` works) and puts it first on ``sys.path``.
    """
    settings = Settings.from_env()
    root_path = os.path.realpath(root)
    if not os.path.isdir(root_path):
        raise JobLoadError(f"job root '{root}' is not a directory", hint="pass --root the job's folder")
    os.chdir(root_path)
    metrics_dir, created = prepare_metrics_dir()
    formatter = configure_logging(settings)
    for conflict in name_conflicts():
        log.warning("%s", conflict)

    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger

    from .metrics import mark_worker_dead

    def child_exit(server: Any, worker: Any) -> None:
        mark_worker_dead(worker.pid)

    def on_exit(server: Any) -> None:
        if created:
            shutil.rmtree(metrics_dir, ignore_errors=True)

    def load() -> Callable[..., Any]:
        from .app import create_app

        # In a thread: the probes answer while a slow __init__ (loading a model) runs, and
        # gunicorn does not kill a worker whose boot outlasts its timeout.
        return create_app(entrypoint_path, class_name, root=root_path, settings=settings, background=True)

    class WrapperLogger(Logger):  # type: ignore[misc]
        """gunicorn's own lines in the wrapper's format (JSON with LOG_STRUCTURED) on stderr."""

        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            if settings.log_structured:
                for handler in self.error_log.handlers:
                    handler.setFormatter(formatter)

    options = gunicorn_options(settings, host or settings.host, port or settings.port)
    options.update(child_exit=child_exit, on_exit=on_exit, logger_class=WrapperLogger)

    class FatmanServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)
            # gunicorn 24+ opens a control socket under $HOME for its `gunicornc` tool: nothing in a
            # container uses it (signals do), and on a read-only root filesystem it logs an error.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Callable[..., Any]:
            return load()

    log.info(
        "serving %s from %s on %s with %d worker(s) x %d thread(s); metrics of all workers in %s",
        entrypoint_path,
        root_path,
        options["bind"],
        settings.workers,
        settings.worker_threads,
        metrics_dir,
    )
    if settings.max_concurrency:
        log.info(
            "overload limit: %d running + %d waiting (up to %g s) per worker, %d running in all; "
            "beyond that 429",
            settings.max_concurrency,
            settings.max_queue,
            settings.queue_timeout,
            settings.max_concurrency * settings.workers,
        )
    FatmanServer().run()
