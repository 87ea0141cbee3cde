"""Keep-alive connections spread over granian's workers, so that every core works.

Each of granian's workers accepts from a socket of its own (``server._granian_server_class``), and
the kernel spreads new connections over them by their addresses: evenly on average, but not
always (16 connections split 4/12 now and then), and a worker that replaces a dead one starts
with none while keep-alive keeps the others' where they are. A worker holding every connection
runs every request on its core while the others idle: before the sockets were split, when one
shared socket let the first worker to wake accept a whole burst, half of the fresh servers served
46 % of what two cores allow with the 50 ms CPU job (benchmarks/README-wrapper.md, "The 50 ms
CPU job"). No server setting moves a connection once accepted, so the workers mend it themselves:

- each worker counts the requests inside its app (``Load``: waiting for one of its app threads, or
  running), and at every beat of its heartbeat thread (``watchdog.start_beating``, four a second)
  writes into its heartbeat file how many there were on average since the last beat, how much of
  that time there were none, and how many client connections it holds (``-1`` when not counted);
- a worker whose peer has room for more (``closes_wanted``: a core of the peer idles while this
  one's never does, or this worker's requests wait for its app threads while the peer has spare
  ones) answers its next few requests with ``Connection: close`` (``Balancer.take``), half the
  difference between them. Those requests are answered as usual; the client opens a new connection
  for its next one, and whichever worker accepts first takes it, often the one with room. The next
  beat's figures say whether more must move;
- a job whose calls are short is never seen saturated that way: most of a request's wait is spent
  before the app (in the server, and for the GIL), where ``Load`` cannot count it, so 14
  connections on one worker and 2 on the other looked like two workers with work, and the 14
  queued behind each other for one core (p99 2-4x an even split's, benchmarks/README-wrapper.md).
  So each worker also counts the connections it holds (``held_connections``, from /proc), and one
  that is busier than a peer (``IDLE_MARGIN`` less idle) and holds more of them closes half the
  difference. The count costs CPU, so it is taken only in beats where one worker is that much
  busier than another (``counts_matter``): never for a CPU-bound job on every core, nor on a
  quiet server.

A server whose workers all have work, or all have room, closes nothing. What a client
sees is what any HTTP/1.1 server may do after any answer: close the connection.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from .watchdog import PREFIX

if TYPE_CHECKING:
    from .limits import AppThreads

# A worker that was idle for at most this share of the time since the last beat is saturated...
SATURATED_IDLE = 0.05
# ...and a peer idle for at least this share has a core to spare.
IDLE_PEER = 0.5
# Fewer requests than this on average apart, moving one would only swap the two workers' places.
MIN_GAP = 2.0
# A worker busier than a peer by at least this share of the time, holding more connections, gives
# the peer some (connection rule); below it both count as equally busy (a CPU-bound job on every core).
IDLE_MARGIN = 0.05
# ...and only a worker idle for at most this share of the time: a quiet server's connections stay
# where they are.
BUSY_IDLE = 0.5
# Answers closed per beat at most: a worker gives away half the gap to the peer with most room.
MAX_CLOSES = 32
# A peer's figures older than this many seconds are a dead or wedged worker's: ignored.
STALE_SECONDS = 3.0


class Figures(NamedTuple):
    """A worker's time since its last beat: requests inside its app on average, the share of the
    time with none, and the client connections it holds (-1: not known)."""

    mean_inside: float
    idle_share: float
    connections: int = -1


class Load:
    """How many requests are inside one worker's app, integrated over time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._inside = 0
        self._last = clock()
        self._area = 0.0  # request-seconds
        self._idle = 0.0  # seconds with no request inside

    def enter(self) -> None:
        with self._lock:
            self._advance()
            self._inside += 1

    def leave(self) -> None:
        with self._lock:
            self._advance()
            self._inside -= 1

    def totals(self) -> tuple[float, float, float]:
        """(now, request-seconds, idle seconds) since this ``Load`` was made."""
        with self._lock:
            self._advance()
            return self._last, self._area, self._idle

    def _advance(self) -> None:
        now = self._clock()
        elapsed = now - self._last
        self._area += self._inside * elapsed
        if self._inside == 0:
            self._idle += elapsed
        self._last = now


def closes_wanted(mine: Figures, threads: int, peers: list[Figures]) -> int:
    """How many of its next answers a worker closes, from its last figures and its ready peers'.

    A peer has room when a core of its idles while this worker never does (a CPU-bound job: one
    request keeps a worker's core busy), or when this worker's requests wait for its app threads
    while the peer has some to spare (a job that waits on I/O): then half the gap in requests
    inside moves. Or, counted in connections, when this worker is busy, the peer clearly less so,
    and this worker holds more connections (a job whose calls are short): half that gap moves."""
    closes = 0.0
    for peer in peers:
        inside_gap = mine.mean_inside - peer.mean_inside
        if inside_gap >= MIN_GAP and (
            (mine.idle_share <= SATURATED_IDLE and peer.idle_share >= IDLE_PEER)
            or (mine.mean_inside >= threads + 1 and peer.mean_inside <= threads - 1)
        ):
            closes = max(closes, inside_gap // 2)
        connection_gap = mine.connections - peer.connections
        if (
            min(mine.connections, peer.connections) >= 0
            and connection_gap >= MIN_GAP
            and mine.idle_share <= BUSY_IDLE
            and peer.idle_share - mine.idle_share >= IDLE_MARGIN
        ):
            closes = max(closes, connection_gap // 2)
    return min(MAX_CLOSES, int(closes))


def counts_matter(mine: Figures, peers: list[Figures]) -> bool:
    """Whether this beat counts the connections: only when the connection rule of
    ``closes_wanted`` could move some, on this worker or on a peer, that is when one of the two is
    busy and the other clearly less so. Counting reads the namespace's TCP tables (about 1 ms of
    CPU each on a machine with a large connection hash, whatever the count), and a worker busy
    with long calls, or a quiet server, has no use for it: the 50 ms CPU job lost 2-3 % of its
    throughput to it (benchmarks/README-wrapper.md). A peer that counted last beat while this
    worker did not finds ``-1`` here and moves nothing until both have counted."""
    return any(
        abs(peer.idle_share - mine.idle_share) >= IDLE_MARGIN
        and min(peer.idle_share, mine.idle_share) <= BUSY_IDLE
        for peer in peers
    )


def held_connections(proc: str = "/proc/self") -> int:
    """The established TCP connections this process holds to the ports it listens on: its
    clients' keep-alive connections, not the job's own to a database. -1 where ``proc`` cannot
    tell (not Linux, no /proc). The heartbeat thread reads it at every beat: one readlink per open
    file and the namespace's TCP tables."""
    try:
        mine = set()
        for fd in os.listdir(f"{proc}/fd"):
            try:
                target = os.readlink(f"{proc}/fd/{fd}")
            except OSError:
                continue  # closed since the listing
            if target.startswith("socket:["):
                mine.add(target[8:-1])
        listening: set[str] = set()
        established: list[str] = []
        for table in ("tcp", "tcp6"):
            try:
                with open(f"{proc}/net/{table}", encoding="ascii") as f:
                    next(f, None)  # the header
                    for line in f:
                        fields = line.split()
                        if len(fields) < 10 or fields[9] not in mine:
                            continue
                        port = fields[1].rpartition(":")[2]
                        if fields[3] == "0A":  # LISTEN
                            listening.add(port)
                        elif fields[3] == "01":  # ESTABLISHED
                            established.append(port)
            except FileNotFoundError:
                continue  # no IPv6 in this kernel
    except OSError:
        return -1
    return sum(1 for port in established if port in listening)


class Balancer:
    """One worker's side: its figures out, its ready peers' in, and the closes they call for."""

    def __init__(
        self,
        directory: str,
        threads: AppThreads,
        ready: Callable[[], bool],
        pid: int | None = None,
        connections: Callable[[], int] = held_connections,
    ) -> None:
        self.directory = directory
        self.connections = connections
        self.threads = threads
        self.ready = ready
        self.pid = os.getpid() if pid is None else pid
        # Read and lowered by request threads without a lock: a close more or less is harmless.
        self.closes = 0
        self._before = threads.load.totals()

    def take(self) -> bool:
        """Whether this answer closes its connection."""
        if self.closes <= 0:
            return False
        self.closes -= 1
        return True

    def tick(self) -> str:
        """Measure the time since the last beat and set how many answers to close; returns this
        worker's line for its heartbeat file."""
        now, area, idle = self.threads.load.totals()
        then, area_before, idle_before = self._before
        self._before = (now, area, idle)
        span = now - then
        if span <= 0:
            return ""
        mine = Figures((area - area_before) / span, (idle - idle_before) / span)
        peers = self._peers()
        if counts_matter(mine, peers):
            mine = mine._replace(connections=self.connections())
        self.closes = closes_wanted(mine, self.threads.threads, peers)
        return f"{mine.mean_inside:.3f} {mine.idle_share:.3f} {int(self.ready())} {mine.connections}\n"

    def _peers(self) -> list[Figures]:
        """The last figures of each other worker whose job is loaded and whose figures are fresh."""
        figures = []
        try:
            names = [n for n in os.listdir(self.directory) if n.startswith(PREFIX)]
        except OSError:
            return []
        now = time.time()
        for name in names:
            if name == f"{PREFIX}{self.pid}":
                continue
            path = os.path.join(self.directory, name)
            try:
                if now - os.stat(path).st_mtime > STALE_SECONDS:
                    continue
                with open(path, encoding="ascii") as f:
                    fields = f.read().split()
                if len(fields) == 4 and fields[2] == "1":
                    figures.append(Figures(float(fields[0]), float(fields[1]), int(fields[3])))
            except (OSError, ValueError):
                continue  # gone, or being written: next beat
        return figures
