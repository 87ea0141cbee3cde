"""The job's own calls (``POST /api/v1/<endpoint>`` of a loaded job) answered in plain WSGI.

A job call is what a Racetrack job serves most, and for a small job Flask's request setup (the
request and app contexts, URL matching, the response object, the signals) cost more CPU than
everything else the wrapper does on the request: about 120 of 165 us in a profile of the adder,
and the figure that kept the wrapper below twice a bare Flask app on gunicorn
(benchmarks/README-wrapper.md, "Servers"). So ``FatmanMiddleware`` hands these requests here
first, after the prefix, tracing, token and overload checks it does for every request; the answer
is the same bytes and headers Flask gave (``call_endpoint`` reads the environ only, and errors go
through ``responses.error_response``, the one JSON shape). Everything else (a job still loading or
failed, other methods and 405s, static files, the webview, the docs, the probes) stays in Flask:
those are rare, or need what Flask does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Callable

from .calls import call_endpoint
from .config import Settings
from .errors import ApiError
from .holder import JobHolder
from .responses import JSON, error_response

log = logging.getLogger("fatman_wrapper")

API_PREFIX = "/api/v1/"  # the same as views.API_PREFIX (views imports Flask's request machinery)


class JobCalls:
    """Answers ``POST /api/v1/<endpoint>`` of a loaded job; ``None`` for any other request."""

    def __init__(
        self, holder: JobHolder, settings: Settings, on_call: Callable[[], None] | None = None
    ) -> None:
        self.holder = holder
        self.body_limit = settings.max_body_bytes
        self.timeout = settings.request_timeout
        self.v2 = settings.v2
        self.on_call = on_call

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any], path: str
    ) -> Iterable[bytes] | None:
        if not path.startswith(API_PREFIX) or environ.get("REQUEST_METHOD") != "POST":
            return None
        job = self.holder.job
        if job is None:
            return None  # loading (the request waits for it in Flask) or failed (503 there)
        endpoint = job.endpoints.get(path[len(API_PREFIX) :])
        if endpoint is None:
            return None  # 404 / 405 with the job's own list, in Flask
        try:
            body = call_endpoint(
                endpoint, environ, body_limit=self.body_limit, timeout=self.timeout, v2=self.v2,
                on_call=self.on_call,
            )
        except ApiError as err:
            return error_response(err)(environ, start_response)
        except Exception as exc:  # a fault of the wrapper: answered as Flask's handler answers it
            log.exception("unexpected error answering POST %s", path)
            error = ApiError(500, f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__)
            return error_response(error)(environ, start_response)
        start_response("200 OK", [("Content-Type", JSON), ("Content-Length", str(len(body)))])
        return [body]
