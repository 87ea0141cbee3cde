"""Slow clients on real sockets: 64 connections trickling their headers or their bodies must not
delay ``/live`` or a job call by more than a second (RELIABILITY.md, "Slow clients")."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from wrapper_server import running_server
from wrapper_support import job_path

from fatman_wrapper.server import default_server

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 64
PARTIAL = {
    # Headers that never end: the server waits for the blank line.
    "headers": b"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    # Complete headers announcing 100 bytes, then a body one byte at a time.
    "body": (
        b"POST /api/v1/perform HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    ),
}


@contextmanager
def trickling(url: str, kind: str, count: int = SLOW_CLIENTS) -> Iterator[list[socket.socket]]:
    """``count`` connections that sent part of a request and add one byte every 0.5 s."""
    parts = urlsplit(url)
    socks = [socket.create_connection((parts.hostname, parts.port), timeout=5) for _ in range(count)]
    stop = threading.Event()

    def drip() -> None:
        for sock in socks:
            sock.sendall(PARTIAL[kind])
        while not stop.wait(0.5):
            for sock in socks:
                try:
                    sock.sendall(b" ")
                except OSError:
                    pass  # the server may close a connection that takes too long: that is allowed

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        time.sleep(1.0)  # every connection has reached the server and is waiting for more
        yield socks
    finally:
        stop.set()
        dripper.join(timeout=5)
        for sock in socks:
            sock.close()


def timed(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
    parts = urlsplit(url)
    started = time.monotonic()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["headers", "body"])
def test_slow_clients_do_not_delay_probes_or_calls(kind):
    if default_server() != "granian":
        pytest.skip("gunicorn's gthread workers hold a thread per slow client (Python 3.9 serves with it)")
    env = {"FATMAN_WORKERS": "2", "FATMAN_THREADS": "4"}
    with running_server(job_path("adder"), env=env) as server:
        with trickling(server.url, kind):
            worst = 0.0
            for _ in range(10):
                for method, path, body in (("GET", "/live", None), ("POST", "/api/v1/perform", b'{"x": 2}')):
                    status, seconds = timed(server.url, method, path, body)
                    assert status == 200
                    worst = max(worst, seconds)
                time.sleep(0.1)
        assert worst < 1.0, f"a request took {worst:.2f} s beside {SLOW_CLIENTS} slow clients"
