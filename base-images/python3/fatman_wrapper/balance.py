"""Keep-alive connections spread over granian's workers, so that every core works.

granian's workers accept from one shared listening socket (``server._granian_server_class``, kept
for what it does when a worker dies). A client that opens its connections all at once (a gateway's
pool, a load generator) can then have every one of them accepted by the first worker to wake, and
keep-alive keeps them there: that worker's core runs every request while the others idle. Measured
with the 50 ms CPU job: half of the fresh servers served 46 % of what two cores allow
(benchmarks/README-wrapper.md, "The 50 ms CPU job"). No server setting changes the split without
giving up the shared socket, so the workers mend it themselves:

- each worker counts the requests inside its app (``Load``: waiting for one of its app threads, or
  running), and once a second, from its heartbeat thread (``watchdog.start_beating``), writes into
  its heartbeat file how many there were on average and how much of the second there were none;
- a worker whose peer has room for more (``closes_wanted``: a core of the peer idles while this
  one's never does, or this worker's requests wait for its app threads while the peer has spare
  ones) answers its next few requests with ``Connection: close`` (``Balancer.take``), half the
  difference between them. Those requests are answered as usual; the client opens a new connection
  for its next one, and whichever worker accepts first takes it, often the one with room. The next
  second's figures say whether more must move.

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

# A worker that was idle for at most this share of the last second is saturated...
SATURATED_IDLE = 0.05
# ...and a peer idle for at least this share has a core to spare.
IDLE_PEER = 0.5
# Fewer requests than this on average apart, moving one would only swap the two workers' places.
MIN_GAP = 2.0
# Answers closed per second at most: a worker gives away half the gap to the peer with most room.
MAX_CLOSES = 32
# A peer's figures older than this many seconds are a dead or wedged worker's: ignored.
STALE_SECONDS = 3.0


class Figures(NamedTuple):
    """A worker's last second: requests inside its app on average, and the share with none."""

    mean_inside: float
    idle_share: float


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
    """How many of its next answers a worker closes, from its last second and its ready peers'.

    A peer has room when a core of its idles while this worker never does (a CPU-bound job: one
    request keeps a worker's core busy), or when this worker's requests wait for its app threads
    while the peer has some to spare (a job that waits on I/O)."""
    gaps = [
        mine.mean_inside - peer.mean_inside
        for peer in peers
        if (mine.idle_share <= SATURATED_IDLE and peer.idle_share >= IDLE_PEER)
        or (mine.mean_inside >= threads + 1 and peer.mean_inside <= threads - 1)
    ]
    gap = max(gaps, default=0.0)
    return min(MAX_CLOSES, int(gap // 2)) if gap >= MIN_GAP else 0


class Balancer:
    """One worker's side: its figures out, its ready peers' in, and the closes they call for."""

    def __init__(
        self, directory: str, threads: AppThreads, ready: Callable[[], bool], pid: int | None = None
    ) -> None:
        self.directory = directory
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
        """Measure the last second and set how many answers to close; returns this worker's line
        for its heartbeat file."""
        now, area, idle = self.threads.load.totals()
        then, area_before, idle_before = self._before
        self._before = (now, area, idle)
        span = now - then
        if span <= 0:
            return ""
        mine = Figures((area - area_before) / span, (idle - idle_before) / span)
        self.closes = closes_wanted(mine, self.threads.threads, self._peers())
        return f"{mine.mean_inside:.3f} {mine.idle_share:.3f} {int(self.ready())}\n"

    def _peers(self) -> list[Figures]:
        """The last second of each other worker whose job is loaded and whose figures are fresh."""
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
                if len(fields) == 3 and fields[2] == "1":
                    figures.append(Figures(float(fields[0]), float(fields[1])))
            except (OSError, ValueError):
                continue  # gone, or being written: next second
        return figures
