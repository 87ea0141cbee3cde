"""This user's own folder for what racetrack-build keeps while it runs: ``serve``'s and ``run``'s
records (serving.py) and the build server's socket (build_server.py).

It is ``$XDG_RUNTIME_DIR/racetrack-build-<uid>``, or the same under ``$TMPDIR`` or /tmp. In a
shared /tmp another user could make it first, and a record or a socket there would send a job's
token, or a build's environment, to them: it is used only when it is a real folder of this user's
that nobody else may write to. Standard library only: the build server's client imports it.
"""

from __future__ import annotations

import os
import stat


def runtime_dir() -> str:
    """``$XDG_RUNTIME_DIR/racetrack-build-<uid>``, else under ``$TMPDIR`` or /tmp (not through the
    tempfile module, which alone would double the build server client's start)."""
    root = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"  # noqa: S108
    return os.path.join(root, f"racetrack-build-{os.getuid()}")


def ours_alone(folder: str) -> bool:
    """Whether ``folder`` is a real folder (no link) of this user's that nobody else may write to."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def make_ours(folder: str) -> bool:
    """Make ``folder`` (and :func:`runtime_dir` above it) with mode 0700 where missing; whether it
    is then :func:`ours_alone`, with every folder between."""
    top = runtime_dir()
    try:
        os.makedirs(top, mode=0o700, exist_ok=True)
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return False
    here = folder
    while True:
        if not ours_alone(here):
            return False
        if os.path.samefile(here, top) or os.path.dirname(here) == here:
            return True
        here = os.path.dirname(here)
