"""The Flask app factory: every Fatman endpoint over a loaded (or failed) job.

``create_app`` returns a new app per call and has no import-time side effects. The job is loaded by
``loader.py``; this module only maps HTTP onto it. Every error answer has one JSON shape
(``ApiError.to_dict``) produced by one handler.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Iterable
from typing import Any, Callable

from flask import Flask, Response, redirect, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule
from werkzeug.wrappers import Response as BaseResponse
from werkzeug.wsgi import ClosingIterator

from . import __version__
from .auth import TokenGuard
from .config import Settings
from .encoding import dumps, dumps_result
from .errors import ApiError, JobLoadError
from .limits import CallTimedOut, ConcurrencyLimiter, Slot, call_with_timeout
from .loader import IN_LOG, Job, load_job
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import RequestMetrics
from .openapi import build_document, swagger_page, swagger_ui_dir
from .static import StaticFiles, resolve_under

log = logging.getLogger("fatman_wrapper")

JSON = "application/json"
WEBVIEW_PATH = "/api/v1/webview"
WEBVIEW_STATIC_PATH = "/webview/static"  # the spec's address of the static/ folder (also under WEBVIEW_PATH)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


ENDPOINT_KEY = "fatman.endpoint"  # environ key where views name the endpoint for metrics
SLOT_KEY = "fatman.slot"  # environ key of the request's concurrency-limiter slot, if any
# Never refused by the overload limit: an orchestrator that sees failing probes under load would
# restart a healthy (busy) job, and a scrape of a busy job is when its metrics matter most.
NEVER_LIMITED = frozenset(["/live", "/ready", "/health", "/metrics"])
# Routes whose path is their own metrics label; job routes set theirs (ENDPOINT_KEY).
_FIXED_LABELS = frozenset(
    [
        "/",
        "/docs",
        "/openapi.json",
        "/health",
        "/live",
        "/ready",
        "/metrics",
        "/api/v1/perform",
        "/api/v1/parameters",
    ]
)


class FatmanMiddleware:
    """The WSGI layer around the Flask app: gateway prefix, token check, request metrics.

    * Every route is also served under ``/pub/fatman/<name>/<version>``: the prefix moves from
      ``PATH_INFO`` to ``SCRIPT_NAME`` as for an app mounted there, so routing, auth and metrics
      deal with one path and links built from the script root keep the prefix the client used.
    * With a token configured, a request to a guarded path without it is answered 401 here.
    * Each answer is counted per endpoint with its status and duration.

    Plain WSGI rather than Flask hooks: this runs on every request, and the hooks' context-local
    lookups cost a measurable share of a small job's throughput.
    """

    def __init__(
        self,
        app: WSGIApp,
        prefix: str,
        guard: TokenGuard,
        metrics: RequestMetrics,
        limiter: ConcurrencyLimiter | None = None,
        label_for: Callable[[str], str] | None = None,
    ) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.guard = guard
        self.metrics = metrics
        self.limiter = limiter
        self.label_for = label_for or (lambda path: path if path in _FIXED_LABELS else "unmatched")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        path = environ.get("PATH_INFO", "")
        prefix = self.prefix
        if prefix and path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
            path = environ["PATH_INFO"] = path[len(prefix) :] or "/"
        status: list[str] = []

        def record_status(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        slot: Slot | None = None
        if self.guard.enabled and not self.guard.allows(path, environ):
            error = ApiError(
                401,
                "missing or wrong auth token: send it in the X-Racetrack-Auth header "
                "or as 'Authorization: Bearer <token>'",
                error_type="Unauthorized",
            )
            result: Iterable[bytes] = error_response(error)(environ, record_status)
        elif self.limiter is not None and path not in NEVER_LIMITED:
            slot = self.limiter.acquire()
            if slot is None:
                environ[ENDPOINT_KEY] = self.label_for(path)
                result = error_response(overload_error(self.limiter))(environ, record_status)
            else:
                environ[SLOT_KEY] = slot
                try:
                    result = self.app(environ, record_status)
                except BaseException:
                    slot.release()
                    raise
        else:
            result = self.app(environ, record_status)
        label = environ.get(ENDPOINT_KEY) or self.label_for(path)
        code = int(status[0][:3]) if status else 500
        self.metrics.observe(label, code, time.perf_counter() - started)
        if slot is not None:
            # The slot is held until the answer (a streamed file, say) has been sent.
            return ClosingIterator(result, [slot.release])
        return result


def overload_error(limiter: ConcurrencyLimiter) -> ApiError:
    """The 429 of a request refused by the concurrency limit."""
    return ApiError(
        429,
        f"the job is busy: {limiter.limit} request(s) running and {limiter.queue} waiting in this worker "
        "(FATMAN_MAX_CONCURRENCY, FATMAN_MAX_QUEUE); retry later",
        error_type="TooManyRequests",
    )


class JobHolder:
    """The job's state: starting, ready (``job``) or failed (``error``); loads it once.

    ``wait_seconds``: how long a job request waits for a job still loading before 503. Each
    gunicorn worker loads its own copy, so while the orchestrator's readiness probe may already
    have reached a ready worker, a request landing on one still loading waits for it instead of
    failing.

    A load failure is answered with its short reason (``JobLoadError.summary``), never the text of
    the user's exception or their traceback, which only the log holds: the probes answer anyone,
    and an exception's text can hold a secret (a password in a connection string).
    """

    def __init__(self, loader: Callable[[], Job], wait_seconds: float = 0.0) -> None:
        self._loader = loader
        self._done = threading.Event()
        self.wait_seconds = wait_seconds
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

    def wait_loaded(self) -> None:
        """Wait up to ``wait_seconds`` for a job still loading (not at all once loaded or failed)."""
        if self.job is None and self.error is None and self.wait_seconds > 0:
            self._done.wait(self.wait_seconds)

    def require(self) -> Job:
        """The loaded job (waiting up to ``wait_seconds`` while it loads), or a 503 naming why not."""
        self.wait_loaded()
        job = self.job
        if job is not None:
            return job
        if self.error is not None:
            raise ApiError(503, f"the job failed to start: {self.error.summary()}", error_type="JobNotReady")
        raise ApiError(503, "the job is still starting; retry shortly", error_type="JobNotReady")

    def status(self) -> dict[str, Any]:
        """The probes' body."""
        body: dict[str, Any] = {"status": self.state}
        if self.error is not None:
            # The reason, never the user's exception text or traceback: the probes answer anyone,
            # and that text can hold a secret. The log has it all.
            body["type"] = "JobLoadError"
            body["error"] = self.error.summary()
        return body


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status=status, mimetype=JSON)


def _read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (413 beyond), straight from the WSGI input."""
    raw_length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if raw_length:
        try:
            length = int(raw_length)
        except ValueError:
            raise ApiError(400, f"invalid Content-Length {raw_length!r}", error_type="BadRequest") from None
        if length > limit:
            raise ApiError(
                413,
                f"the request body has {length} bytes, over the limit of {limit} (FATMAN_MAX_BODY_BYTES)",
                error_type="PayloadTooLarge",
            )
        return stream.read(length) if length > 0 else b""
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and a server that does not end the stream: no body can be read safely
    data = stream.read(limit + 1)  # chunked: bounded all the same
    if len(data) > limit:
        raise ApiError(
            413,
            f"the request body is over the limit of {limit} bytes (FATMAN_MAX_BODY_BYTES)",
            error_type="PayloadTooLarge",
        )
    return data


def _invoke(method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call a job's endpoint method; an ``async def`` one is run to completion on an event loop of
    its own (each call runs in a worker thread, which has none running)."""
    result = method(**kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    return result


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _parse_json_object(data: bytes) -> dict[str, Any]:
    """A request body as a JSON object; 400 if malformed or not an object. No body means ``{}``."""
    if not data.strip():
        return {}  # an endpoint without arguments, or all of them optional
    try:
        payload = json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(
            400, f"the request body is not valid JSON: {exc}", error_type="MalformedJSON"
        ) from None
    except RecursionError:  # [[[[... deeper than the parser's recursion limit: the client's doing
        raise ApiError(
            400, "the request body nests arrays or objects too deeply to be read", error_type="MalformedJSON"
        ) from None
    if not isinstance(payload, dict):
        kind = "an array" if isinstance(payload, list) else type(payload).__name__
        raise ApiError(
            400,
            f"the request body must be a JSON object of named arguments, got {kind}",
            error_type="MalformedJSON",
        )
    return payload


def error_response(err: ApiError) -> Response:
    """The JSON answer of an error; every error the wrapper answers goes through here."""
    response = _json_response(err.to_dict(), err.status)
    for name, value in err.headers.items():
        response.headers[name] = value
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fatman"'
    return response


def _handle_error(exc: Exception) -> Response | HTTPException:
    """The one Flask error handler: every failure becomes ``ApiError.to_dict()`` JSON."""
    if isinstance(exc, ApiError):
        return error_response(exc)
    if isinstance(exc, HTTPException):
        if exc.code is None or exc.code < 400:
            return exc  # redirects (trailing slashes) are answers, not errors
        response = error_response(
            ApiError(exc.code, exc.description or exc.name, error_type=type(exc).__name__)
        )
        for name, value in exc.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value  # e.g. Allow of a 405
        return response
    log.exception("unexpected error answering %s %s", request.method, request.path)
    return error_response(ApiError(500, f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__))


def create_app(
    entrypoint_path: str | os.PathLike,
    class_name: str | None = None,
    *,
    root: str | os.PathLike = ".",
    settings: Settings | None = None,
    background: bool = False,
) -> Flask:
    """A Flask app serving the job whose entrypoint is ``entrypoint_path`` (relative to ``root``).

    ``settings`` defaults to ``Settings.from_env()``. With ``background=True`` the job loads in a
    thread so the probes answer at once while a slow ``__init__`` runs; otherwise it loads before
    this returns. A job that fails to load does not raise: the app answers 503 naming the failure.
    The working directory is not changed here; ``server.run`` moves into the job root.
    """
    settings = settings or Settings.from_env()
    root_path = os.path.realpath(root)
    webview_base = settings.pub_prefix + WEBVIEW_PATH
    holder = JobHolder(
        lambda: load_job(entrypoint_path, class_name, root_path, webview_base),
        wait_seconds=float(settings.timeout) if background else 0.0,
    )
    guard = TokenGuard(settings.auth_token, settings.public_endpoints)
    metrics = RequestMetrics(lambda: holder.job.metrics if holder.job else None)
    title = settings.name or "fatman"
    limit = settings.max_body_bytes
    swagger_dir = os.path.realpath(swagger_ui_dir())
    openapi_cache: dict[str, bytes] = {}
    caches: dict[str, Any] = {}

    limiter = (
        ConcurrencyLimiter(settings.max_concurrency, settings.max_queue, settings.queue_timeout)
        if settings.max_concurrency > 0
        else None
    )
    request_timeout = settings.request_timeout

    def label_for(path: str) -> str:
        # The metrics label of a request answered before reaching its view (refused with 429):
        # only known endpoints get their own label, so random paths cannot grow the label set.
        if path in _FIXED_LABELS:
            return path
        if path == WEBVIEW_PATH or path.startswith(WEBVIEW_PATH + "/"):
            return WEBVIEW_PATH
        if path.startswith(WEBVIEW_STATIC_PATH + "/"):
            return WEBVIEW_STATIC_PATH
        job = holder.job
        if job is not None and path.startswith("/api/v1/"):
            name = path[len("/api/v1/") :]
            if name in job.endpoints:
                return path
            if name.split("/")[0] in {e.path.split("/")[0] for e in job.static.values()}:
                return "/api/v1/" + name.split("/")[0]
        return "unmatched"

    app = Flask("fatman_wrapper", static_folder=None)
    app.wsgi_app = FatmanMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, settings.pub_prefix, guard, metrics, limiter, label_for
    )
    app.extensions["fatman"] = holder
    app.register_error_handler(Exception, _handle_error)

    def call_endpoint(path: str) -> Response:
        environ = request.environ
        job = holder.require()
        endpoint = job.endpoints.get(path)
        if endpoint is None:
            environ[ENDPOINT_KEY] = "/api/v1/<unknown>"
            known = ", ".join(f"/api/v1/{p}" for p in job.endpoints)
            raise ApiError(
                404, f"no endpoint POST /api/v1/{path} (this job has: {known})", error_type="NotFound"
            )
        environ[ENDPOINT_KEY] = f"/api/v1/{path}"
        kwargs = endpoint.signature.bind(_parse_json_object(_read_body(environ, limit)))
        try:
            if request_timeout > 0:
                result = call_with_timeout(
                    lambda: _invoke(endpoint.method, kwargs),
                    request_timeout,
                    name=f"/api/v1/{path}",
                    slot=environ.get(SLOT_KEY),
                )
            else:
                result = _invoke(endpoint.method, kwargs)
        except CallTimedOut:
            log.warning(
                "/api/v1/%s did not answer within %g s (FATMAN_REQUEST_TIMEOUT): answered 504, "
                "the call goes on in the background",
                path,
                request_timeout,
            )
            raise ApiError(
                504,
                f"/api/v1/{path} did not answer within {request_timeout:g} s (FATMAN_REQUEST_TIMEOUT)",
                error_type="GatewayTimeout",
            ) from None
        except Exception as exc:
            log.exception("/api/v1/%s raised %s", path, type(exc).__name__)
            raise ApiError(500, str(exc) or type(exc).__name__, error_type=type(exc).__name__) from exc
        try:
            body = dumps_result(result)
        except (TypeError, ValueError) as exc:
            log.error("the result of /api/v1/%s cannot be encoded as JSON: %s", path, exc)
            raise ApiError(
                500, f"the result cannot be encoded as JSON: {exc}", error_type="EncodingError"
            ) from exc
        return Response(body, status=200, mimetype=JSON)

    def static_files(job: Job) -> StaticFiles:
        files: StaticFiles | None = caches.get("static")
        if files is None:
            files = caches["static"] = StaticFiles(root_path, job.static)
        return files

    def allowed_methods(job: Job, path: str) -> list[str]:
        """The methods ``/api/v1/<path>`` answers (without OPTIONS); empty when nothing is there."""
        methods = set()
        if path in job.endpoints:
            methods.add("POST")
        if path == "parameters" or static_files(job).match(path) is not None:
            methods.update(("GET", "HEAD"))
        return sorted(methods)

    def api_path(path: str) -> BaseResponse:
        # Every /api/v1/ path of the job goes through here, whatever the method: which methods a
        # path takes depends on the job (loaded at run time), so one view decides, and a wrong
        # method on an existing endpoint is 405 with the Allow header OPTIONS agrees with.
        method = request.method
        job = holder.require()
        if method == "POST" and path in job.endpoints:
            return call_endpoint(path)
        allowed = allowed_methods(job, path)
        environ = request.environ
        if not allowed:
            environ[ENDPOINT_KEY] = "/api/v1/<unknown>"
            if method == "POST":
                known = ", ".join(f"/api/v1/{p}" for p in job.endpoints)
                message = f"no endpoint POST /api/v1/{path} (this job has: {known})"
            else:
                message = f"nothing at /api/v1/{path}"
            raise ApiError(404, message, error_type="NotFound")
        if path in job.endpoints or path == "parameters":
            environ[ENDPOINT_KEY] = f"/api/v1/{path}"
        else:
            environ[ENDPOINT_KEY] = f"/api/v1/{path.split('/')[0]}"
        allow = ", ".join(sorted([*allowed, "OPTIONS"]))
        if method == "OPTIONS":
            return Response(status=200, headers={"Allow": allow})
        if method not in allowed:
            raise ApiError(
                405,
                f"{method} is not allowed on /api/v1/{path} (allowed: {allow})",
                error_type="MethodNotAllowed",
                headers={"Allow": allow},
            )
        if path == "parameters":
            return parameters(job)
        found = static_files(job).resolve(path)
        if found is None:
            raise ApiError(404, f"nothing to GET at /api/v1/{path}", error_type="NotFound")
        if found.redirect:
            query = request.query_string.decode("latin-1")
            location = f"{request.script_root}/api/v1/{path}/" + (f"?{query}" if query else "")
            return redirect(location, code=308)
        assert found.file is not None  # a Found without redirect names its file
        return send_file(found.file, mimetype=found.mimetype, conditional=True)

    def parameters(job: Job) -> Response:
        body = caches.get("parameters")
        if body is None:
            body = caches["parameters"] = dumps(job.endpoints["perform"].signature.parameters_json())
        return Response(body, mimetype=JSON)

    def send_webview_static(filename: str) -> Response:
        """A file of the job's static/ folder (traversal-safe), for a job with a webview."""
        static_dir = os.path.realpath(os.path.join(root_path, "static"))
        found = resolve_under(static_dir, filename) if os.path.isdir(static_dir) else None
        if found is None:
            raise ApiError(404, f"no file {filename!r} in the job's static/ folder", error_type="NotFound")
        return send_file(found, conditional=True)

    def webview_static(filename: str) -> Response:
        # The spec's address of the static/ folder; the same files as /api/v1/webview/static/.
        request.environ[ENDPOINT_KEY] = WEBVIEW_STATIC_PATH
        job = holder.require()
        if job.webview is None:
            raise ApiError(
                404,
                "this job has no webview, so no static/ folder is served "
                "(define webview_app(self, base_url) in the entrypoint)",
                error_type="NotFound",
            )
        return send_webview_static(filename)

    def webview(rest: str = "") -> Any:
        request.environ[ENDPOINT_KEY] = WEBVIEW_PATH
        job = holder.require()
        if job.webview is None:
            raise ApiError(
                404,
                "this job has no webview (define webview_app(self, base_url) in the entrypoint)",
                error_type="NotFound",
            )
        if rest == "static" or rest.startswith("static/"):
            return send_webview_static(rest[len("static/") :])
        # The user's app routes on base_url + "/...": hand it the full path it was told about.
        environ = dict(request.environ)
        environ["PATH_INFO"] = webview_base + environ.get("PATH_INFO", "")[len(WEBVIEW_PATH) :]
        environ["SCRIPT_NAME"] = ""
        return Response.from_app(job.webview, environ)

    def health() -> Response:
        body = holder.status()
        body.update(
            name=settings.name or None,
            version=settings.version or None,
            wrapper_version=__version__,
            entrypoint_class=holder.job.class_name if holder.job else None,
        )
        return _json_response(body, 200 if holder.job else 503)

    def live() -> Response:
        return _json_response({"status": "alive"})

    def ready() -> Response:
        return _json_response(holder.status(), 200 if holder.job else 503)

    def metrics_view() -> Response:
        # content_type, not mimetype: the constant already carries its charset, which Werkzeug
        # would append a second time to a mimetype.
        return Response(metrics.render(), content_type=METRICS_CONTENT_TYPE)

    def openapi_json() -> Response:
        script_root = request.script_root
        # As the job's own endpoints do: a worker still loading the job waits for it, so a client
        # reaching it (a smoke test reading the examples) never gets a document without them.
        holder.wait_loaded()
        body = openapi_cache.get(script_root)
        if body is None or holder.job is None:
            document = build_document(
                holder.job,
                title=title,
                version=settings.version,
                server_url=script_root,
                load_error=holder.error.summary() if holder.error else None,
            )
            body = dumps(document).encode("utf-8")
            if holder.job is not None:
                openapi_cache[script_root] = body
        return Response(body, mimetype=JSON)

    def docs() -> Response:
        root_url = request.script_root
        page = swagger_page(title, f"{root_url}/docs/static", f"{root_url}/openapi.json")
        return Response(page, mimetype="text/html")

    def docs_static(filename: str) -> Response:
        request.environ[ENDPOINT_KEY] = "/docs/static"
        found = resolve_under(swagger_dir, filename)
        if found is None:
            raise ApiError(404, f"no Swagger UI file {filename}", error_type="NotFound")
        return send_file(found, conditional=True, max_age=86400)

    def index() -> Response:
        return redirect(f"{request.script_root}/docs", code=302)

    rules: list[tuple[str, str, Callable[..., Any], list[str]]] = [
        ("/", "index", index, ["GET"]),
        ("/docs", "docs", docs, ["GET"]),
        ("/docs/static/<path:filename>", "docs_static", docs_static, ["GET"]),
        ("/openapi.json", "openapi", openapi_json, ["GET"]),
        ("/health", "health", health, ["GET"]),
        ("/live", "live", live, ["GET"]),
        ("/ready", "ready", ready, ["GET"]),
        ("/metrics", "metrics", metrics_view, ["GET"]),
        (WEBVIEW_STATIC_PATH + "/<path:filename>", "webview_static", webview_static, ["GET"]),
        (WEBVIEW_PATH, "webview_root", webview, ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        (
            WEBVIEW_PATH + "/",
            "webview_index",
            webview,
            ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        ),
        (
            WEBVIEW_PATH + "/<path:rest>",
            "webview",
            webview,
            ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        ),
    ]
    for rule, endpoint, view, methods in rules:
        app.add_url_rule(rule, endpoint, view, methods=methods)
    # Any method (methods=None) reaches api_path, which answers OPTIONS and 405 itself; added as a
    # bare Rule because Flask's add_url_rule would default to GET and add automatic OPTIONS.
    app.url_map.add(Rule("/api/v1/<path:path>", endpoint="api_path"))
    app.view_functions["api_path"] = api_path

    if background:
        threading.Thread(target=holder.load, name="fatman-job-loader", daemon=True).start()
    else:
        holder.load()
    return app
