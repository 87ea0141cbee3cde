"""Chain calls: a job calling another job's endpoint through the Racetrack gateway (Pub).

``call_job(self, 'adder', payload={'x': 1})`` sends ``POST {PUB_URL}/job/adder/latest/api/v1/perform``
with the JSON payload and these headers:

* ``X-Racetrack-Auth: $AUTH_TOKEN``, the calling job's own token, which the infrastructure gives it
  (the callee must allow this caller); left out when ``AUTH_TOKEN`` is unset, as on a developer's
  machine where the callee has no token either;
* the tracing header (``REQUEST_TRACING_HEADER``, default ``X-Request-Tracing-Id``) with the
  current request's tracing id, so the whole chain logs one id, and the caller header
  (``CALLER_NAME_HEADER``, default ``X-Caller-Name``) with the current request's caller; both ``''``
  outside a request.

``PUB_URL`` is the gateway's address including its ``/pub`` path (``http://pub:7005/pub``); pointed
at another job's wrapper (``http://127.0.0.1:7001/pub``) the call reaches it directly, since the
wrapper answers under ``/pub/job/NAME/VERSION`` and ``/pub/job/NAME/latest``. The answer's JSON is
returned; any failure (no ``PUB_URL``, a refused connection, a timeout, a status other than 2xx, a
body that is not JSON) raises ``RuntimeError`` naming the callee and the cause. Redirects are not
followed (they would carry the token elsewhere).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from fatman_wrapper.config import DEFAULT_CALLER_HEADER, DEFAULT_TRACING_HEADER
from fatman_wrapper.tracing import CALLER_NAME, TRACING_ID

AUTH_HEADER = "X-Racetrack-Auth"
ERROR_BODY_LIMIT = 1000
# Racetrack 2.x's async job calls: each poll waits up to this long for the result, for at most this long.
ASYNC_POLL_SECONDS = 60.0
ASYNC_LIMIT_SECONDS = 120 * 60.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as the error it is for an API call


_OPENER = urllib.request.build_opener(_NoRedirect)


def call_job(
    entrypoint: Any,
    job_name: str,
    path: str = "/api/v1/perform",
    payload: dict[str, Any] | None = None,
    version: str = "latest",
    method: str = "POST",
    timeout: float | None = 10,
) -> Any:
    """Call ``path`` of the job ``job_name`` (``version``: exact or an alias such as ``latest``) and
    return its JSON result; ``timeout`` in seconds (None: none). Raises ``RuntimeError``."""
    try:
        url = _pub_url() + f"/job/{_segment(job_name)}/{_segment(version)}{_path(path)}"
        return _send(method, url, payload, outgoing_headers(entrypoint), timeout)
    except Exception as exc:
        raise RuntimeError(f'failed to call job "{job_name} {version}" by {_this_job()}: {exc}') from exc


async def call_job_coroutine(
    entrypoint: Any,
    job_name: str,
    path: str = "/api/v1/perform",
    payload: dict[str, Any] | None = None,
    version: str = "latest",
    method: str = "POST",
    timeout: float | None = 10,
) -> Any:
    """``call_job`` for an ``async def`` endpoint: the call runs in a thread (with this context)."""
    return await asyncio.to_thread(call_job, entrypoint, job_name, path, payload, version, method, timeout)


def async_job_call(
    entrypoint: Any,
    job_name: str,
    path: str = "/api/v1/perform",
    payload: dict[str, Any] | None = None,
    version: str = "latest",
    method: str = "POST",
) -> Any:
    """Call a job through the gateway's async API (for calls longer than a connection lasts):
    ``{PUB_URL}/async/new/job/...`` starts a task, ``{PUB_URL}/async/task/ID/poll`` waits for its
    result (202, 408 and 504 mean "not yet"), for at most two hours."""
    try:
        pub = _pub_url()
        url = pub + f"/async/new/job/{_segment(job_name)}/{_segment(version)}{_path(path)}"
        task = _send(method, url, payload, outgoing_headers(entrypoint), 30)
        task_id = task["task_id"] if isinstance(task, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ValueError(f"the gateway answered no task_id: {task!r}")
        poll = pub + f"/async/task/{_segment(task_id)}/poll"
        deadline = time.monotonic() + ASYNC_LIMIT_SECONDS
        while time.monotonic() < deadline:
            try:
                return _send("GET", poll, None, {}, ASYNC_POLL_SECONDS, pending=(202, 408, 504))
            except (_NotYet, _TimedOut):
                continue  # not done yet, or the long poll outlasted its wait: ask again
        raise TimeoutError(f"no result within {ASYNC_LIMIT_SECONDS:g} s")
    except Exception as exc:
        raise RuntimeError(f'failed to call job "{job_name} {version}" by {_this_job()}: {exc}') from exc


def outgoing_headers(entrypoint: Any = None) -> dict[str, str]:
    """The headers a chain call sends: the job's token, the request's tracing id and caller."""
    headers = {}
    token = os.environ.get("AUTH_TOKEN", "")
    if token:
        headers[AUTH_HEADER] = token
    tracing_header = os.environ.get("REQUEST_TRACING_HEADER", "").strip() or DEFAULT_TRACING_HEADER
    caller_header = os.environ.get("CALLER_NAME_HEADER", "").strip() or DEFAULT_CALLER_HEADER
    tracing_id, caller = TRACING_ID.get(), CALLER_NAME.get()
    if tracing_id is None:  # not in a request the wrapper runs: the job's own request_context, if any
        request = _current_request(entrypoint)
        if request is not None:
            tracing_id = request.headers.get(tracing_header)
            caller = request.headers.get(caller_header)
    headers[tracing_header] = tracing_id or ""
    headers[caller_header] = caller or ""
    return headers


class _NotYet(Exception):
    """An async task's poll answered that the result is not there yet."""


class _TimedOut(RuntimeError):
    """No answer within the timeout."""


def _send(
    method: str,
    url: str,
    payload: Any,
    headers: dict[str, str],
    timeout: float | None,
    pending: tuple[int, ...] = (),
) -> Any:
    """The JSON answer of one request; ``_NotYet`` for a status of ``pending``."""
    data = None if payload is None else json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method.upper())
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        opened = _OPENER.open(request) if timeout is None else _OPENER.open(request, timeout=timeout)
        with opened as response:
            status = response.status
            body = response.read()
    except (socket.timeout, TimeoutError):
        raise _TimedOut(f"{method.upper()} {url}: no answer within {timeout} s") from None
    except urllib.error.HTTPError as exc:
        if exc.code in pending:
            raise _NotYet() from None
        text = exc.read()[:ERROR_BODY_LIMIT].decode("utf-8", "replace")
        raise RuntimeError(f"{method.upper()} {url} answered {exc.code} {exc.reason}: {text}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (socket.timeout, TimeoutError)):
            raise _TimedOut(f"{method.upper()} {url}: no answer within {timeout} s") from None
        raise RuntimeError(f"{method.upper()} {url} failed: {exc.reason}") from None
    if status in pending:
        raise _NotYet()
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        text = body[:ERROR_BODY_LIMIT].decode("utf-8", "replace")
        raise RuntimeError(f"{method.upper()} {url} answered a body that is not JSON: {text!r}") from None


def _pub_url() -> str:
    url = os.environ.get("PUB_URL", "").strip().rstrip("/")
    if not url:
        raise RuntimeError("PUB_URL is not set: the address of the Racetrack gateway, e.g. http://pub:7005/pub")
    return url


def _segment(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a job name, version or task id")
    return urllib.parse.quote(value.strip(), safe="")


def _path(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _this_job() -> str:
    return os.environ.get("JOB_NAME", "").strip() or os.environ.get("FATMAN_NAME", "").strip() or "a job"


def _current_request(entrypoint: Any) -> Any:
    context = getattr(entrypoint, "request_context", None)
    if context is None:
        return None
    try:
        return context.get()
    except LookupError:
        return None
