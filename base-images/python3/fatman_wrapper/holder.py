"""The job's state as the app sees it: starting, ready or failed, and the wait for it."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any, Callable

from .errors import ApiError, JobLoadError
from .loader import IN_LOG, Job

log = logging.getLogger("fatman_wrapper")

# A job still loading is answered 503 with this: a client (or gateway) may retry in a second.
RETRY_AFTER = {"Retry-After": "1"}


class JobHolder:
    """The job's state: starting, ready (``job``) or failed (``error``); loads it once.

    ``wait_seconds``: how long a job request waits for a job still loading before 503. Each
    gunicorn worker loads its own copy, so while the orchestrator's readiness probe may already
    have reached a ready worker, a request landing on one still loading waits for it instead of
    failing. At most ``max_waiting`` requests wait at a time (0: none do); the others are answered
    503 with ``Retry-After`` at once: every waiting request holds a thread, and a worker whose
    threads all wait would leave its probes unanswered until an orchestrator kills a job that is
    only loading.

    A load failure is answered with its short reason (``JobLoadError.summary``), never the text of
    the user's exception or their traceback, which only the log holds: the probes answer anyone,
    and an exception's text can hold a secret (a password in a connection string).
    """

    def __init__(self, loader: Callable[[], Job], wait_seconds: float = 0.0, max_waiting: int = 0) -> None:
        self._loader = loader
        self._done = threading.Event()
        self.wait_seconds = wait_seconds
        # Each waiting request holds one of the worker's threads; past ``max_waiting`` a request is
        # refused at once (503, Retry-After), so threads stay free for the probes.
        self.max_waiting = max_waiting
        self._seats = threading.BoundedSemaphore(max_waiting) if max_waiting > 0 else None
        self.job: Job | None = None
        self.error: JobLoadError | None = None
        self.state = "starting"

    def load(self) -> None:
        """Load the job, recording a failure instead of raising it (the server stays up)."""
        started = time.perf_counter()
        try:
            job = self._loader()
        except Exception as exc:  # noqa: BLE001 - whatever happens, the server stays up and says why
            error = (
                exc
                if isinstance(exc, JobLoadError)
                else JobLoadError(
                    f"loading the job failed: {type(exc).__name__}: {exc}",
                    user_traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                    public_message=f"loading the job failed: {type(exc).__name__}{IN_LOG}",
                )
            )
            if error is not exc:
                error.__cause__ = exc  # what /health names by its type (Racetrack 2.x's "error")
            self.error = error
            self.state = "failed"
            log.error(
                "the job cannot be served: %s%s",
                error,
                "\n" + error.user_traceback if error.user_traceback else "",
            )
        else:
            self.job = job
            self.state = "ready"
            log.info("job %s ready in %.2f s", job.class_name, time.perf_counter() - started)
        finally:
            self._done.set()

    def wait_loaded(self) -> bool:
        """Wait up to ``wait_seconds`` for a job still loading (not at all once loaded or failed).

        False when the request may not wait: ``max_waiting`` requests already do.
        """
        if self.job is None and self.error is None and self.wait_seconds > 0:
            seats = self._seats
            if seats is None or not seats.acquire(blocking=False):
                return False
            try:
                self._done.wait(self.wait_seconds)
            finally:
                seats.release()
        return True

    def require(self) -> Job:
        """The loaded job (waiting up to ``wait_seconds`` while it loads), or a 503 naming why not."""
        waited = self.wait_loaded()
        job = self.job
        if job is not None:
            return job
        if self.error is not None:
            raise ApiError(503, f"the job failed to start: {self.error.summary()}", error_type="JobNotReady")
        if not waited:
            raise ApiError(
                503,
                f"the job is still starting and {self.max_waiting} request(s) already wait for it in "
                "this worker; retry shortly",
                error_type="JobNotReady",
                headers=dict(RETRY_AFTER),
            )
        raise ApiError(
            503,
            "the job is still starting; retry shortly",
            error_type="JobNotReady",
            headers=dict(RETRY_AFTER),
        )

    def status(self) -> dict[str, Any]:
        """The probes' body."""
        body: dict[str, Any] = {"status": self.state}
        if self.error is not None:
            # The reason, never the user's exception text or traceback: the probes answer anyone,
            # and that text can hold a secret. The log has it all.
            body["type"] = "JobLoadError"
            body["error"] = self.error.summary()
        return body
