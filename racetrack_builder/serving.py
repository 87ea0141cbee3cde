"""Where ``serve`` and ``run`` serve a job, so that ``call MANIFEST`` finds it on any port.

While it serves, each of them keeps a record in a folder of this user's: the job's name and
version, its URL and the serving process's pid. ``call`` takes the newest record of the manifest's
job whose process is alive; ``/health`` then confirms the job (call.py's identity check), so a
stale record can mislead nobody. Records are read and written only in folders that are this user's
alone (``call`` sends the job's token where a record points), and only loopback URLs are taken.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from .user_dirs import make_ours, ours_alone, runtime_dir

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def records_dir() -> Path:
    """This user's folder of records (user_dirs.py)."""
    return Path(runtime_dir()) / "serving"


@contextlib.contextmanager
def recorded(name: str, version: str, url: str) -> Iterator[None]:
    """Record that this process serves ``name`` ``version`` at ``url`` until the block ends. A
    folder that cannot be written costs the record only: ``call --port`` still works."""
    path = records_dir() / f"{os.getpid()}.json"
    try:
        if not make_ours(str(path.parent)):
            raise PermissionError(f"{path.parent} is not this user's alone")
        path.write_text(json.dumps({"name": name, "version": version, "url": url, "pid": os.getpid()}),
                        encoding="utf-8")
    except OSError:
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def identity(url: str) -> tuple[str, str] | None:
    """The name and version the job at ``url`` gives in its ``/health``; None when it gives none."""
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as answer:  # noqa: S310 - our URL
            body = json.loads(answer.read())
    except (OSError, ValueError):
        return None
    if isinstance(body, dict) and isinstance(body.get("name"), str) and isinstance(body.get("version"), str):
        return body["name"], body["version"]
    return None


def url_of(name: str, version: str) -> str | None:
    """The URL of the newest live ``serve`` or ``run`` of ``name`` ``version``, if any."""
    found: list[tuple[float, str]] = []
    folder = records_dir()
    if not (ours_alone(str(folder.parent)) and ours_alone(str(folder))):
        return None
    try:
        paths = list(folder.glob("*.json"))
    except OSError:
        return None
    for path in paths:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            when = path.stat().st_mtime
        except (OSError, ValueError):
            continue  # gone, or being written
        if not isinstance(record, dict) or (record.get("name"), record.get("version")) != (name, version):
            continue
        if _alive(record.get("pid")) and _loopback(record.get("url")):
            found.append((when, record["url"]))
        else:
            with contextlib.suppress(OSError):
                path.unlink()  # its process ended without removing it (killed)
    return max(found)[1] if found else None


def _loopback(url: object) -> bool:
    return isinstance(url, str) and urllib.parse.urlsplit(url).hostname in _LOOPBACK


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: the pid was reused, since the records are ours
    return True
