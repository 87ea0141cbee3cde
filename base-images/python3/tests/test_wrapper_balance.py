"""Keep-alive connections spread over granian's workers (fatman_wrapper/balance.py)."""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest

from fatman_wrapper.balance import (
    MAX_CLOSES,
    Balancer,
    Figures,
    Load,
    closes_wanted,
    counts_matter,
    held_connections,
)
from fatman_wrapper.limits import AppThreads
from fatman_wrapper.watchdog import PREFIX


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_load_integrates_requests_and_idle_time() -> None:
    clock = Clock()
    load = Load(clock)
    clock.now += 1.0  # idle
    load.enter()
    clock.now += 0.5  # one inside
    load.enter()
    clock.now += 0.5  # two inside
    load.leave()
    load.leave()
    clock.now += 1.0  # idle
    now, area, idle = load.totals()
    assert now == 103.0
    assert area == pytest.approx(0.5 + 2 * 0.5)
    assert idle == pytest.approx(2.0)


def test_app_threads_count_waiting_and_running_requests() -> None:
    threads = AppThreads(1, 100)
    threads.acquire()
    assert threads.load._inside == 1
    threads.release()
    assert threads.load._inside == 0


@pytest.mark.parametrize(
    ("mine", "peers", "closes"),
    [
        ((16.0, 0.0), [(0.0, 1.0)], 8),  # every connection on this worker, the other idle
        ((8.0, 0.0), [(8.0, 0.0)], 0),  # both saturated: every core works, every thread too
        ((8.0, 0.0), [], 0),  # no peer (one worker, or none loaded)
        ((1.0, 0.0), [(0.0, 1.0)], 0),  # one request: moving it would only swap the places
        ((3.0, 0.2), [(0.0, 1.0)], 0),  # idle at times, and no request waits for a thread
        ((12.0, 0.0), [(4.0, 0.0)], 0),  # the peer's threads are all busy: it has no room either
        ((14.0, 0.0), [(2.0, 0.0)], 6),  # requests wait here while the peer has spare threads
        ((16.0, 0.0), [(8.0, 0.0), (0.0, 0.9)], 8),  # the peer with most room counts
        ((500.0, 0.0), [(0.0, 1.0)], MAX_CLOSES),
        # Short calls: most of a request's wait is outside the app, so the figures inside look
        # unsaturated (measured: 14 + 2 connections, 2.7 and 0.6 inside, 20 % and 45 % idle).
        ((2.7, 0.2, 14), [(0.6, 0.45, 2)], 6),
        ((2.7, 0.2, 14), [(0.6, 0.45)], 0),  # the peer's connections are not known
        ((2.7, 0.2, 14), [(0.6, 0.22, 2)], 0),  # the peer about as busy: nothing to gain
        ((0.4, 0.8, 14), [(0.1, 0.95, 2)], 0),  # a quiet server keeps its connections where they are
        ((8.0, 0.01, 12), [(8.0, 0.02, 4)], 0),  # a CPU-bound job on both cores
        ((3.0, 0.2, 9), [(2.6, 0.3, 8)], 0),  # one connection apart
        ((2.0, 0.3, 4), [(3.0, 0.4, 12)], 0),  # the peer holds more: it gives, not this worker
    ],
)
def test_closes_wanted(mine: tuple[float, ...], peers: list[tuple[float, ...]], closes: int) -> None:
    assert closes_wanted(Figures(*mine), 4, [Figures(*p) for p in peers]) == closes


@pytest.mark.parametrize(
    ("mine", "peers", "counted"),
    [
        ((16.0, 0.0), [(0.0, 1.0)], True),  # one worker busy, the other idle
        ((2.7, 0.2), [(0.6, 0.45)], True),  # short calls, lopsided
        ((0.6, 0.45), [(2.7, 0.2)], True),  # the idler side counts too, for its busy peer to compare
        ((8.0, 0.0), [(8.0, 0.02)], False),  # a CPU-bound job on every core
        ((2.7, 0.2), [(2.6, 0.22)], False),  # about as busy
        ((0.4, 0.8), [(0.1, 0.95)], False),  # a quiet server
        ((8.0, 0.0), [], False),  # no peer
        ((8.0, 0.0), [(8.0, 0.01), (0.0, 1.0)], True),  # one peer of several with room
    ],
)
def test_connections_are_counted_only_when_they_could_move(
    mine: tuple[float, float], peers: list[tuple[float, float]], counted: bool
) -> None:
    assert counts_matter(Figures(*mine), [Figures(*p) for p in peers]) is counted


def test_a_cpu_bound_pair_never_reads_its_connections(tmp_path) -> None:
    calls = []
    clock = Clock()
    threads = AppThreads(4, 100)
    threads.load = load = Load(clock)
    balancer = Balancer(str(tmp_path), threads, ready=lambda: True, pid=1,
                        connections=lambda: calls.append(1) or 12)
    for _ in range(8):
        load.enter()
    clock.now += 1.0
    _peer(str(tmp_path), 2, "8.000 0.000 1 -1\n")
    assert balancer.tick() == "8.000 0.000 1 -1\n"
    assert calls == []
    assert balancer.closes == 0


def _peer(directory: str, pid: int, line: str, age: float = 0.0) -> None:
    path = os.path.join(directory, f"{PREFIX}{pid}")
    with open(path, "w", encoding="ascii") as f:
        f.write(line)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))


def _saturated(tmp_path, ready: bool = True) -> tuple[Balancer, Clock]:
    clock = Clock()
    threads = AppThreads(4, 100)
    threads.load = load = Load(clock)
    balancer = Balancer(str(tmp_path), threads, ready=lambda: ready, pid=1, connections=lambda: 16)
    for _ in range(16):
        load.enter()
    clock.now += 1.0
    return balancer, clock


def test_a_saturated_worker_closes_answers_while_a_loaded_peer_idles(tmp_path) -> None:
    balancer, _ = _saturated(tmp_path)
    _peer(str(tmp_path), 2, "0.000 1.000 1 0\n")
    line = balancer.tick()
    assert line == "16.000 0.000 1 16\n"
    assert balancer.closes == 8
    assert [balancer.take() for _ in range(10)] == [True] * 8 + [False] * 2


@pytest.mark.parametrize(
    "line, age",
    [
        ("0.000 1.000 0 0\n", 0.0),  # the peer's job is still loading (or failed): it would answer 503
        ("0.000 1.000 1 0\n", 10.0),  # stale: a dead or wedged worker
        ("", 0.0),  # being written
        ("garbage\n", 0.0),
    ],
)
def test_peers_that_cannot_take_connections_are_ignored(tmp_path, line: str, age: float) -> None:
    balancer, _ = _saturated(tmp_path)
    _peer(str(tmp_path), 2, line, age)
    balancer.tick()
    assert balancer.closes == 0


def test_a_peer_holding_fewer_connections_while_less_busy_takes_some(tmp_path) -> None:
    clock = Clock()
    threads = AppThreads(4, 100)
    threads.load = load = Load(clock)
    balancer = Balancer(str(tmp_path), threads, ready=lambda: True, pid=1, connections=lambda: 14)
    clock.now += 0.2  # idle for a fifth of the second, then 3 requests inside
    for _ in range(3):
        load.enter()
    clock.now += 0.8
    _peer(str(tmp_path), 2, "0.600 0.450 1 2\n")
    assert balancer.tick() == "2.400 0.200 1 14\n"
    assert balancer.closes == 6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_held_connections_counts_clients_on_the_listening_ports_only() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    elsewhere = socket.create_server(("127.0.0.1", 0))
    outbound = socket.create_connection(elsewhere.getsockname())  # as a job's own database client
    before = held_connections()
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    accepted = [listener.accept()[0] for _ in clients]
    try:
        # This process holds both ends: its server ends are on a listening port, the clients'
        # own ends (as ``outbound``) are not.
        assert held_connections() == before + 3
    finally:
        for sock in [*clients, *accepted, outbound, listener, elsewhere]:
            sock.close()


def test_held_connections_is_unknown_without_proc(tmp_path) -> None:
    assert held_connections(str(tmp_path / "missing")) == -1


def test_a_worker_reads_its_own_file_as_no_peer(tmp_path) -> None:
    balancer, _ = _saturated(tmp_path)
    _peer(str(tmp_path), 1, "0.000 1.000 1 0\n")
    balancer.tick()
    assert balancer.closes == 0


def test_each_tick_measures_the_last_second_only(tmp_path) -> None:
    balancer, clock = _saturated(tmp_path)
    _peer(str(tmp_path), 2, "0.000 1.000 1 0\n")
    balancer.tick()
    for _ in range(16):
        balancer.threads.load.leave()
    clock.now += 1.0
    # Both idle now: the connections are not counted.
    assert balancer.tick() == "0.000 1.000 1 -1\n"
    assert balancer.closes == 0  # the closes left from the second before are dropped


def test_the_heartbeat_writes_the_report(tmp_path) -> None:
    from fatman_wrapper import watchdog

    stop = watchdog.start_beating(str(tmp_path), lambda: "1.000 0.500 1\n")
    try:
        path = tmp_path / f"{PREFIX}{os.getpid()}"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (path.exists() and path.read_text()):
            time.sleep(0.05)
        assert path.read_text() == "1.000 0.500 1\n"
    finally:
        stop.set()  # a beating thread left behind would go on in the tests after this one


def test_a_failing_report_still_beats(tmp_path) -> None:
    from fatman_wrapper import watchdog

    directory = tmp_path / "beats"
    directory.mkdir()
    def broken() -> str:
        raise RuntimeError("boom")

    stop = watchdog.start_beating(str(directory), broken)
    try:
        path = directory / f"{PREFIX}{os.getpid()}"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not path.exists():
            time.sleep(0.05)
        assert path.exists() and path.read_text() == ""
    finally:
        stop.set()


def test_an_answer_closes_its_connection_when_the_balancer_says_so(tmp_path, monkeypatch) -> None:
    from wrapper_support import job_path

    from fatman_wrapper import create_app
    from fatman_wrapper.config import Settings

    root = job_path("adder")
    monkeypatch.chdir(root)
    # No heartbeat thread: its first tick would set ``closes`` from the measured load (0) and, on a
    # slow runner, overwrite the 1 set below before the first request.
    monkeypatch.setattr("fatman_wrapper.app.start_beating", lambda directory, report=None: None)
    app = create_app(
        "fatman_entrypoint.py", root=root, settings=Settings(), app_threads=2, heartbeat_dir=str(tmp_path)
    )
    balancer = app.wsgi_app.balancer
    assert balancer is not None
    client = app.test_client()
    balancer.closes = 1
    first = client.post("/api/v1/perform", json={"x": 2, "y": 3})
    second = client.post("/api/v1/perform", json={"x": 2, "y": 3})
    assert (first.status_code, first.json) == (200, 6)
    assert first.headers.get("Connection") == "close"
    assert (second.status_code, second.json) == (200, 6)
    assert "Connection" not in second.headers


def test_without_app_threads_there_is_no_balancer(tmp_path, monkeypatch) -> None:
    from wrapper_support import job_path

    from fatman_wrapper import create_app
    from fatman_wrapper.config import Settings

    root = job_path("adder")
    monkeypatch.chdir(root)
    app = create_app("fatman_entrypoint.py", root=root, settings=Settings(), heartbeat_dir=str(tmp_path))
    assert app.wsgi_app.balancer is None
