"""Overload protection and per-request timeouts, both inside one worker process.

``ConcurrencyLimiter`` admits at most ``limit`` requests at a time; up to ``queue`` more wait (each at
most ``wait_seconds``) for a slot, and anything beyond is refused at once, so a flood of parallel
calls cannot make a worker hold more than ``limit`` jobs' worth of memory. Its ``limit`` is the
worker's share of the server's (workers share no memory: ``config.workers_sharing``), so the whole
server admits ``workers x limit``, the limit it was given.

``call_with_timeout`` runs a job call in its own thread and stops waiting after ``seconds``. A
Python thread cannot be killed, so the call goes on in the background; the slot it holds is freed
only when it really ends, so abandoned calls keep counting against the concurrency limit.
"""

from __future__ import annotations

import contextvars
import io
import logging
import threading
import time
from typing import Any, Callable

from .balance import Load

log = logging.getLogger("fatman_wrapper")

SLOT_KEY = "fatman.slot"  # WSGI environ key of the request's limiter slot (``Slot``), if it holds one


class Slot:
    """One admitted request's place in the limiter, freed when every holder has released it.

    The request holds it until its answer is sent; a job call that outlives its timeout holds it
    too, until the call returns.
    """

    def __init__(self, limiter: ConcurrencyLimiter) -> None:
        self._limiter = limiter
        self._holders = 1
        self._lock = threading.Lock()

    def hold(self) -> None:
        """Add a holder (a background call that must keep the slot taken)."""
        with self._lock:
            self._holders += 1

    def release(self) -> None:
        """Drop a holder; the last one gives the slot back to the limiter."""
        with self._lock:
            if self._holders <= 0:
                return  # released twice (close() called again): nothing left to give back
            self._holders -= 1
            last = self._holders == 0
        if last:
            self._limiter._release()


class ConcurrencyLimiter:
    """At most ``limit`` running requests; ``queue`` more wait up to ``wait_seconds``; the rest refused."""

    def __init__(self, limit: int, queue: int, wait_seconds: float) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.queue = max(0, queue)
        self.wait_seconds = wait_seconds
        self.active = 0
        self.waiting = 0
        self._cond = threading.Condition()

    def acquire(self) -> Slot | None:
        """A slot, after waiting in the queue if needed; ``None`` when the request is to be refused."""
        with self._cond:
            # Newcomers do not overtake requests already waiting.
            if self.active < self.limit and self.waiting == 0:
                self.active += 1
                return Slot(self)
            if self.waiting >= self.queue:
                return None
            self.waiting += 1
            try:
                deadline = time.monotonic() + self.wait_seconds
                while self.active >= self.limit:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._cond.wait(remaining)
                self.active += 1
                return Slot(self)
            finally:
                self.waiting -= 1

    def _release(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify()


class CallTimedOut(Exception):
    """The job call did not finish within its timeout; it goes on in a background thread."""


def call_with_timeout(func: Callable[[], Any], seconds: float, *, name: str, slot: Slot | None = None) -> Any:
    """``func()``, or ``CallTimedOut`` after ``seconds`` while ``func`` keeps running in its thread.

    Exceptions of ``func`` are raised here as if it had been called directly. ``slot`` (the
    request's limiter slot) stays held until ``func`` ends, even when this returns earlier.
    """
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = func()
        except BaseException as exc:  # noqa: BLE001 - handed over to the waiting request thread
            outcome["error"] = exc
        finally:
            done.set()
            if slot is not None:
                slot.release()
            if outcome.get("abandoned"):
                log.warning("%s finished in the background after its request got 504", name)

    if slot is not None:
        slot.hold()
    # The request's context (its tracing id, self.request_context) goes with the call.
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(run,), name=f"fatman-call {name}", daemon=True)
    thread.start()
    if not done.wait(seconds):
        outcome["abandoned"] = True
        if not done.is_set():
            raise CallTimedOut(name)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


class AppThreads:
    """At most ``threads`` requests of one worker inside the app, each with its body already read.

    Under granian the WSGI app runs in a pool of blocking threads, and a thread reading
    ``wsgi.input`` waits there for as long as the client takes to send its body: 64 clients
    trickling bodies would hold every thread, and ``/live`` would find none. So the pool is larger
    than ``FATMAN_THREADS`` (``server.BODY_READER_THREADS`` more), every request reads its body (up
    to the body limit, into memory, as the job's call would) before it takes one of ``threads``
    slots, and a thread waiting for a slot or a body holds no job memory. ``FATMAN_THREADS`` keeps
    its meaning: the requests one worker runs at once. The probes and ``/metrics`` take no slot.
    """

    def __init__(self, threads: int, body_limit: int) -> None:
        self.threads = threads
        self.body_limit = body_limit
        self._slots = threading.BoundedSemaphore(threads)
        # The requests waiting for a slot or holding one, which balance.Balancer reads.
        self.load = Load()

    def read_body(self, environ: dict[str, Any]) -> None:
        """Replace ``wsgi.input`` by the body read whole, when it has a length within the limit
        (a longer one is left to the app, which answers 413 without reading it); raises
        ``OSError`` / ``ValueError`` when the client goes away or sends less than it announced."""
        raw_length = environ.get("CONTENT_LENGTH")
        if not raw_length:
            return
        try:
            length = int(raw_length)
        except ValueError:
            return  # the app answers 400 for it
        if 0 < length <= self.body_limit:
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            if len(body) != length:
                environ["CONTENT_LENGTH"] = str(len(body))

    def acquire(self) -> None:
        self.load.enter()
        self._slots.acquire()

    def release(self) -> None:
        self._slots.release()
        self.load.leave()
