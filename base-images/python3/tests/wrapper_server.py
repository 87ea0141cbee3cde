"""Starting the real server (``fatman-wrapper run``) on 127.0.0.1 for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from wrapper_support import server_env


def free_port() -> int:
    """A port nothing listens on right now, on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    url: str, *, status: int = 200, timeout: float = 30.0, proc: subprocess.Popen | None = None
) -> None:
    """Poll ``url`` until it answers ``status`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == status:
                    return
                last = str(response.status)
        except urllib.error.HTTPError as exc:
            if exc.code == status:
                return
            last = str(exc.code)
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status} within {timeout} s (last: {last})")


@contextlib.contextmanager
def running_server(
    job_root: Path,
    *,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    cwd: Path | None = None,
    ready_status: int = 200,
    log_path: Path | None = None,
    entrypoint: str = "fatman_entrypoint.py",
) -> Iterator[Server]:
    """Run ``fatman-wrapper run ENTRYPOINT --root JOB`` until the block ends: the console script,
    as job images start it."""
    port = free_port()
    args = [
        str(Path(sys.executable).parent / "fatman-wrapper"),
        "run",
        entrypoint,
        "--root",
        str(job_root),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(extra_args or []),
    ]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        args,
        cwd=cwd or Path("/"),
        env=server_env(**(env or {})),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(proc, f"http://127.0.0.1:{port}")
    try:
        wait_for(server.url + "/ready", status=ready_status, timeout=60, proc=proc)
        yield server
    finally:
        server.stop()
        if log_path:
            log.close()  # type: ignore[union-attr]


class Server:
    """A running wrapper process."""

    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc = proc
        self.url = url

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the server (gunicorn stops gracefully), then SIGKILL its group if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode
