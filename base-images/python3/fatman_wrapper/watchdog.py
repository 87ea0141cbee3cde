"""``FATMAN_TIMEOUT`` under granian: a worker that goes silent for that long is killed and replaced.

gunicorn's arbiter restarts a worker whose heartbeat file has not been touched for ``timeout``
seconds; granian has no such check, so the wrapper brings its own, the same way: each worker
process touches a file of its own four times a second from a daemon thread (which needs the GIL, so a
worker wedged in C code holding it, or deadlocked, stops touching it), and a thread of the main
process kills (SIGKILL) a worker whose file is older than the timeout; granian then starts a new
one, as for any worker that dies. A job call that merely takes long (a model's inference) does not
stop the heartbeat: Python switches threads every few milliseconds.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

log = logging.getLogger("fatman_wrapper")

PREFIX = "fatman-heartbeat-"
# Seconds between beats, and between the watchdog's looks. The balancer's figures ride on the beat
# (``balance.Balancer.tick``): a quarter of a second lets connections that all landed on one
# worker spread within about a second, where a whole second per step took two to three.
INTERVAL = 0.25


def start_beating(directory: str, report: Callable[[], str] | None = None) -> threading.Event:
    """In a worker: write ``directory/fatman-heartbeat-<pid>`` at every ``INTERVAL`` until the process ends
    (or the returned event is set), with what ``report`` returns (the worker's load,
    ``balance.Balancer.tick``) or empty."""
    path = os.path.join(directory, f"{PREFIX}{os.getpid()}")
    stop = threading.Event()

    def beat() -> None:
        failed = False
        while True:
            text = ""
            if report is not None:
                try:
                    text = report()
                except Exception:  # noqa: BLE001 - a failing report must not stop the heartbeat
                    if not failed:  # once: the same failure at every beat would flood the log
                        log.exception("the worker's load could not be measured")
                    failed = True
            try:
                with open(path, "w", encoding="ascii") as f:
                    f.write(text)
            except OSError:
                pass  # a full or vanished folder: the watchdog then sees no file and does nothing
            if stop.wait(INTERVAL):
                return

    threading.Thread(target=beat, name="fatman-heartbeat", daemon=True).start()
    return stop


def start_watching(directory: str, timeout: float) -> None:
    """In the main process: kill any worker whose heartbeat is older than ``timeout`` seconds."""
    if timeout <= 0:
        return

    def watch() -> None:
        while True:
            time.sleep(INTERVAL)
            now = time.time()
            try:
                names = [n for n in os.listdir(directory) if n.startswith(PREFIX)]
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                try:
                    pid = int(name[len(PREFIX) :])
                    age = now - os.stat(path).st_mtime
                except (ValueError, OSError):
                    continue
                if not _alive(pid):
                    _remove(path)
                elif age > timeout:
                    log.error(
                        "worker %d has been silent for %.0f s (FATMAN_TIMEOUT=%g): killing it; a new one "
                        "starts",
                        pid,
                        age,
                        timeout,
                    )
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                    _remove(path)

    threading.Thread(target=watch, name="fatman-watchdog", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still answers signal 0: read its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
