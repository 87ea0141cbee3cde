"""The WSGI layer every request passes first: gateway prefixes, tracing, token check, overload limit,
metrics and the access log."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Callable, Optional

from werkzeug.wsgi import ClosingIterator

from .auth import TokenGuard
from .balance import Balancer
from .errors import ApiError
from .limits import SLOT_KEY, AppThreads, ConcurrencyLimiter, Slot
from .logs import log_access
from .metrics import RequestMetrics
from .responses import error_response
from .tracing import Tracing

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# A handler tried before the app: the answer of a request it takes, or None to leave it to the app.
FastPath = Callable[[dict[str, Any], Callable[..., Any], str], Optional[Iterable[bytes]]]


class FatmanMiddleware:
    """The WSGI layer around the Flask app: gateway prefixes, tracing, token check, overload limit,
    metrics, access log.

    * Every route is also served under each of ``prefixes`` (``/pub/job/<name>/<version>``,
      ``/pub/fatman/<name>/<version>``): the prefix moves from ``PATH_INFO`` to ``SCRIPT_NAME`` as
      for an app mounted there, so routing, auth and metrics deal with one path and links built
      from the script root keep the prefix the client used.
    * Every request has a tracing id (``tracing.Tracing``), current while it runs and answered in
      the tracing header, 401 and 429 included.
    * With a token configured, a request to a guarded path without it is answered 401 here.
    * With a ``limiter``, a request past the overload limit is answered 429 here, except to the
      ``never_limited`` paths.
    * A ``fast_path`` (``fastpath.JobCalls``), if given, is offered each admitted request before
      the app and answers the ones it takes (the job's own calls) without Flask.
    * With ``app_threads`` (under granian), a request but the ``never_limited`` ones has its body
      read whole after the token check and before the overload limit, then waits for one of the
      worker's app slots before the app sees it.
    * With a ``balancer`` (under granian), an answer closes its connection when this worker holds
      more requests than its share (``balance.py``).
    * Each answer is counted under ``label_for(path)`` with its status and duration, and logged
      with ``access_log`` (at DEBUG for the ``never_limited`` paths: probes and metrics).

    Plain WSGI rather than Flask hooks: this runs on every request, and the hooks' context-local
    lookups cost a measurable share of a small job's throughput.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        prefixes: Sequence[str],
        guard: TokenGuard,
        metrics: RequestMetrics,
        label_for: Callable[[str], str],
        limiter: ConcurrencyLimiter | None = None,
        never_limited: Collection[str] = (),
        tracing: Tracing | None = None,
        access_log: bool = True,
        fast_path: FastPath | None = None,
        app_threads: AppThreads | None = None,
        balancer: Balancer | None = None,
    ) -> None:
        self.app = app
        self.prefixes = tuple(p.rstrip("/") for p in prefixes if p.rstrip("/"))
        self.guard = guard
        self.metrics = metrics
        self.label_for = label_for
        self.limiter = limiter
        self.never_limited = frozenset(never_limited)
        self.tracing = tracing or Tracing("X-Request-Tracing-Id", "X-Caller-Name")
        self.access_log = access_log
        self.fast_path = fast_path
        self.app_threads = app_threads
        self.balancer = balancer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        tracing = self.tracing
        tracing_id, tokens = tracing.begin(environ)
        try:
            return self._answer(environ, start_response, started, tracing_id)
        finally:
            tracing.end(tokens)

    def _answer(
        self, environ: dict[str, Any], start_response: Callable[..., Any], started: float, tracing_id: str
    ) -> Iterable[bytes]:
        full_path = path = environ.get("PATH_INFO", "")
        for prefix in self.prefixes:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                path = environ["PATH_INFO"] = path[len(prefix) :] or "/"
                break
        status: list[str] = []

        balancer = self.balancer

        def record_status(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code)
            headers = self.tracing.with_header(headers, tracing_id)
            if balancer is not None and balancer.take():
                headers = [*headers, ("Connection", "close")]  # the next connection may go elsewhere
            return start_response(code, headers, exc_info)

        slot: Slot | None = None
        threads = self.app_threads if path not in self.never_limited else None
        if self.guard.enabled and not self.guard.allows(path, environ):
            error = ApiError(
                401,
                "missing or wrong auth token: send it in the X-Racetrack-Auth header "
                "or as 'Authorization: Bearer <token>'",
                error_type="Unauthorized",
            )
            result: Iterable[bytes] = error_response(error)(environ, record_status)
        elif threads is not None and not _read_body(threads, environ):
            # The body first, before a concurrency slot or an app thread is taken: a client sending
            # it slowly holds only a thread of the pool's spare ones (limits.AppThreads).
            error = ApiError(400, "the request body could not be read in full", error_type="BadRequest")
            result = error_response(error)(environ, record_status)
        elif self.limiter is not None and path not in self.never_limited:
            slot = self.limiter.acquire()
            if slot is None:
                result = error_response(overload_error(self.limiter))(environ, record_status)
            else:
                environ[SLOT_KEY] = slot
                try:
                    result = self._dispatch(environ, record_status, path)
                except BaseException:
                    slot.release()
                    raise
        else:
            result = self._dispatch(environ, record_status, path)
        code = int(status[0][:3]) if status else 500
        elapsed = time.perf_counter() - started
        self.metrics.observe(self.label_for(path), code, elapsed)
        if self.access_log:
            quiet = path in self.never_limited
            log_access(environ.get("REQUEST_METHOD", ""), full_path, code, elapsed, quiet)
        if slot is not None:
            # The slot is held until the answer (a streamed file, say) has been sent.
            return ClosingIterator(result, [slot.release])
        return result

    def _dispatch(
        self, environ: dict[str, Any], start_response: Callable[..., Any], path: str
    ) -> Iterable[bytes]:
        threads = self.app_threads
        if threads is None or path in self.never_limited:
            return self._call(environ, start_response, path)
        threads.acquire()
        try:
            result = self._call(environ, start_response, path)
        except BaseException:
            threads.release()
            raise
        return ClosingIterator(result, [threads.release])

    def _call(
        self, environ: dict[str, Any], start_response: Callable[..., Any], path: str
    ) -> Iterable[bytes]:
        if self.fast_path is not None:
            result = self.fast_path(environ, start_response, path)
            if result is not None:
                return result
        return self.app(environ, start_response)


def _read_body(threads: AppThreads, environ: dict[str, Any]) -> bool:
    """Read the request's body whole into ``wsgi.input``; False when it cannot be."""
    try:
        threads.read_body(environ)
    except Exception:  # noqa: BLE001 - the client went away, or sent less than its Content-Length
        return False
    return True


def overload_error(limiter: ConcurrencyLimiter) -> ApiError:
    """The 429 of a request refused by the concurrency limit (with ``detail``, as Racetrack 2.x,
    whose feature it is, answers it)."""
    return ApiError(
        429,
        f"the job is busy: {limiter.limit} request(s) running and {limiter.queue} waiting in this worker "
        "(FATMAN_MAX_CONCURRENCY, FATMAN_MAX_QUEUE); retry later",
        error_type="TooManyRequests",
        detail=True,
    )
