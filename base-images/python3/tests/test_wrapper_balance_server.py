"""On the real server: keep-alive connections that all landed on one worker are spread over the
workers (fatman_wrapper/balance.py), and no request is lost on the way."""

from __future__ import annotations

import collections
import re
import shutil
import socket
import subprocess
import threading
import time
from urllib.parse import urlsplit

import pytest
from wrapper_server import running_server
from wrapper_support import job_path

from fatman_wrapper.server import default_server

pytestmark = pytest.mark.slow

CONNECTIONS = 16
REQUEST = (
    b"POST /api/v1/perform HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 19\r\n\r\n{"milliseconds": 5}'
)


def holders(port: int) -> collections.Counter[str]:
    """The pids holding the server side of the established connections to ``port``."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=True,
    ).stdout
    return collections.Counter(re.findall(r"pid=(\d+)", out))


class Client:
    """One keep-alive connection sending requests back to back, reconnecting when an answer says
    ``Connection: close``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.answers: collections.Counter[str] = collections.Counter()
        self.reconnects = 0

    def call(self) -> None:
        self.sock.sendall(REQUEST)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection before answering")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(body) < length:
            body += self.sock.recv(65536)
        self.answers[head.split(b" ", 2)[1].decode()] += 1
        if re.search(rb"(?i)^connection: *close", head, re.M):
            self.sock.close()
            self.sock = socket.create_connection(("127.0.0.1", self.port))
            self.reconnects += 1

    def loop(self, until: float) -> None:
        while time.monotonic() < until:
            self.call()


def _all_on_one_worker(port: int, attempts: int = 20) -> list[Client]:
    """Open the connections together until one worker holds them all (it does about half the time
    on a fresh server, which is what balancing mends)."""
    for _ in range(attempts):
        clients = [Client(port) for _ in range(CONNECTIONS)]
        for client in clients:
            client.call()  # accepted, so ss names the worker
        if len(holders(port)) == 1:
            return clients
        for client in clients:
            client.sock.close()
        time.sleep(0.5)
    pytest.skip(f"the connections never all landed on one worker in {attempts} tries")


def test_connections_held_by_one_worker_move_to_the_idle_one():
    if default_server() != "granian":
        pytest.skip("balancing is granian's (its workers share one socket); gunicorn serves on Python 3.9")
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to see which worker holds a connection")
    env = {"FATMAN_WORKERS": "2", "FATMAN_THREADS": "4"}
    with running_server(job_path("cpu_burn"), env=env) as server:
        port = urlsplit(server.url).port
        clients = _all_on_one_worker(port)
        until = time.monotonic() + 6
        threads = [threading.Thread(target=c.loop, args=(until,)) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(4)
        split = holders(port)
        for thread in threads:
            thread.join()
        answers = sum((c.answers for c in clients), collections.Counter())
        for client in clients:
            client.sock.close()
    assert len(split) == 2, f"every connection still on one worker: {dict(split)}"
    # CPU-bound calls: moved until the other worker's 4 app threads are nearly all busy.
    assert min(split.values()) >= 3, dict(split)
    assert set(answers) == {"200"}, answers
    assert sum(c.reconnects for c in clients) > 0
