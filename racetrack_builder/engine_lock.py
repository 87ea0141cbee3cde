"""One build at a time of an image that builds share, on one engine: a lock file on this machine.

Six CI jobs started together on a runner with a fresh engine all find the base image missing, and
each would build it. With the lock, the first one builds it while the others wait, then find it
made. It is a file lock (``fcntl.flock``) in the user's cache folder, so the kernel releases it
however its holder ends (Ctrl-C, a crash, ``kill -9``): nothing stale is ever left to clean. It
orders the processes of this machine; builds from several machines on one remote engine may still
make the same image twice, which costs time, not correctness (its tags name its sources).

A standard-library lock rather than a package: the few lines below are all it takes on POSIX, and
where ``fcntl`` or a writable cache folder is missing the build goes on unlocked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from . import reporting

try:
    import fcntl
except ImportError:  # not POSIX: no lock, at worst a duplicate build
    fcntl = None  # type: ignore[assignment]


def lock_folder() -> Path:
    """``$XDG_CACHE_HOME/racetrack-build/locks`` (``~/.cache/...`` by default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "racetrack-build" / "locks"


def _engine_name() -> str:
    # The engine as this machine names it: two names for one engine only cost a duplicate build.
    return os.environ.get("DOCKER_HOST") or os.environ.get("DOCKER_CONTEXT") or "default"


@contextlib.contextmanager
def engine_lock(name: str) -> Iterator[None]:
    """Hold the lock of ``name`` (an image ref) on the current engine for the block; a line says so
    when another process holds it and this one waits."""
    handle = _open(name)
    if handle is None or fcntl is None:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            reporting.progress(f"waiting for another build of {name} on this engine to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open(name: str) -> IO[str] | None:
    key = hashlib.sha256(f"{_engine_name()}\0{name}".encode()).hexdigest()[:32]
    folder = lock_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return open(folder / f"{key}.lock", "a+", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except OSError:
        return None  # no writable cache folder: unlocked
