"""Package indexes on 127.0.0.1 for the integration suite, served with pypiserver.

Builds inside containers cannot verify TLS to the public index on these machines, and a real
index makes tests slow and flaky anyway. So wheels are downloaded on the host once (cached across
runs under the machine-wide cache) and served from folders here; the fixtures in conftest.py
start the servers. ``PRIVATE_PACKAGE`` exists only on the private index, behind basic auth.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests import gitrepos
from tests.integration.jobs import cache_root

# Served only by the private index, so a build that installs it proves the credentials reached pip.
PRIVATE_PACKAGE = "racetrack-private-demo"
PRIVATE_PACKAGE_VERSION = "1.0.0"
PRIVATE_MODULE = "racetrack_private_demo"
# What ``racetrack_private_demo.secret_greeting("racetrack")`` returns.
PRIVATE_GREETING = "private hello, racetrack"


_SERVER_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PackageIndex:
    """A pypiserver instance on 127.0.0.1. ``url`` is the ``/simple/`` index URL for pip.

    ``requirement`` is a pip requirement only this index can satisfy, and ``import_check`` Python
    code that prints :data:`PRIVATE_GREETING` once it is installed (both empty for the public index).
    """

    url: str
    root: Path
    username: str | None = None
    password: str | None = None
    requirement: str = ""
    import_check: str = ""

    @property
    def url_with_credentials(self) -> str:
        """``url`` with the credentials in it, as pip takes them in ``--extra-index-url``."""
        if self.username is None:
            return self.url
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{self.username}:{self.password}@{rest}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def pypiserver(root: Path, log_dir: Path, htpasswd: Path | None = None) -> Iterator[str]:
    """Serve ``root`` with pypiserver on 127.0.0.1; yield its ``/simple/`` URL.

    ``--disable-fallback``: a missing package must fail the build, not be redirected to the public
    index. ``simple-dir`` rescans the folder on each request, so wheels added later are served.
    """
    port = _free_port()
    auth = ["-P", str(htpasswd), "-a", "download,list"] if htpasswd else ["-P", ".", "-a", "."]
    log_file = log_dir / f"pypiserver-{port}.log"
    command = [
        sys.executable,
        "-m",
        "pypiserver",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-fallback",
        "--backend",
        "simple-dir",
        "--server",
        "wsgiref",
        *auth,
        str(root),
    ]
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        health = f"http://127.0.0.1:{port}/health"
        deadline = time.monotonic() + _SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"pypiserver exited ({proc.returncode}) at start:\n{log_file.read_text()[-2000:]}"
                )
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(health, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"pypiserver did not answer on {health} within {_SERVER_START_TIMEOUT_S:.0f}s; "
                    f"see {log_file}"
                )
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/simple/"
    finally:
        gitrepos.stop_process(proc)


def _pip(*args: str, timeout: float = 600) -> None:
    """Run the host's pip (which reaches the real index with the host's CA settings)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"pip {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}", pytrace=False
        )


def cached_download(requirements: Sequence[str]) -> Path:
    """Wheels (and sdists where no wheel exists) for ``requirements`` and their dependencies,
    downloaded once per distinct requirement set into the machine-wide cache."""
    key = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:16]
    target = cache_root() / "wheels" / key
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Download into a scratch folder and rename, so an interrupted run never leaves half a set
    # that later runs would take as complete.
    scratch = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=target.parent))
    try:
        _pip("download", "--quiet", "--prefer-binary", "--dest", str(scratch), *requirements)
        (scratch / "requirements.txt").write_text("\n".join(requirements) + "\n")
        (scratch / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def py39_wheels(requirements: Sequence[str]) -> Path:
    """Wheels of ``requirements`` for CPython 3.9 on manylinux x86_64, downloaded once per machine
    (the host's pip runs on 3.11, so ``wheelhouse()`` would fetch 3.11 files or sdists)."""
    key = hashlib.sha256(("cp39\n" + "\n".join(sorted(requirements))).encode()).hexdigest()[:16]
    target = cache_root() / "wheels" / f"cp39-{key}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"cp39-{key}.", dir=target.parent))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--quiet",
             "--only-binary", ":all:", "--python-version", "3.9", "--implementation", "cp",
             "--abi", "cp39", "--platform", "manylinux2014_x86_64", "--dest", str(scratch),
             *requirements],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            pytest.fail(f"pip download of the 3.9 wheels failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}",
                        pytrace=False)
        (scratch / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target



_PRIVATE_SOURCES = {
    "pyproject.toml": f"""\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{PRIVATE_PACKAGE}"
version = "{PRIVATE_PACKAGE_VERSION}"
description = "A package served only by the test suite's private index"
requires-python = ">=3.8"
""",
    f"{PRIVATE_MODULE}/__init__.py": f'''\
"""Served only by the racetrack test suite's private index: importing it proves a build
authenticated against that index."""

__version__ = "{PRIVATE_PACKAGE_VERSION}"


def secret_greeting(name: str) -> str:
    """Return a greeting that a job can hand back to prove the package is installed."""
    return f"private hello, {{name}}"
''',
}


def private_wheel() -> Path:
    """The private demo package's wheel, built once per source version into the cache."""
    key = hashlib.sha256(repr(sorted(_PRIVATE_SOURCES.items())).encode()).hexdigest()[:16]
    target = cache_root() / "private" / key
    wheels = sorted(target.glob("*.whl"))
    if wheels:
        return wheels[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="private-src.", dir=target.parent) as tmp:
        src = Path(tmp) / "src"
        for rel, text in _PRIVATE_SOURCES.items():
            path = src / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        out = Path(tmp) / "out"
        _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(src))
        shutil.rmtree(target, ignore_errors=True)
        out.rename(target)
    return sorted(target.glob("*.whl"))[0]


