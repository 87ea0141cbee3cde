"""The Flask app factory: every Fatman endpoint over a loaded (or failed) job.

``create_app`` returns a new app per call and has no import-time side effects. The job is loaded by
``loader.py``; this module only maps HTTP onto it. Every error answer has one JSON shape
(``ApiError.to_dict``) produced by one handler.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from flask import Flask, Response, g, redirect, request, send_file
from werkzeug.exceptions import HTTPException

from . import __version__
from .auth import TokenGuard
from .config import Settings
from .encoding import dumps
from .errors import ApiError, JobLoadError
from .loader import Job, load_job
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import RequestMetrics
from .openapi import build_document, swagger_page, swagger_ui_dir
from .static import StaticFiles, resolve_under

log = logging.getLogger("fatman_wrapper")

JSON = "application/json"
WEBVIEW_PATH = "/api/v1/webview"

WSGIApp = Callable[[Dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PrefixMiddleware:
    """Serves every route also under ``/pub/fatman/<name>/<version>``, the gateway's path.

    The prefix moves from ``PATH_INFO`` to ``SCRIPT_NAME``, as a WSGI app mounted there would see
    it: routing, auth and metrics then deal with one path, and links built from the script root
    (Swagger UI, OpenAPI ``servers``) keep the prefix the client used.
    """

    def __init__(self, app: WSGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        prefix = self.prefix
        if prefix:
            path = environ.get("PATH_INFO", "")
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):] or "/"
        return self.app(environ, start_response)


class JobHolder:
    """The job's state: starting, ready (``job``) or failed (``error``); loads it once."""

    def __init__(self, loader: Callable[[], Job]) -> None:
        self._loader = loader
        self.job: Optional[Job] = None
        self.error: Optional[JobLoadError] = None
        self.state = "starting"

    def load(self) -> None:
        """Load the job, recording a failure instead of raising it (the server stays up)."""
        started = time.perf_counter()
        try:
            job = self._loader()
        except JobLoadError as exc:
            self.error = exc
            self.state = "failed"
            log.error("the job cannot be served: %s%s", exc,
                      "\n" + exc.user_traceback if exc.user_traceback else "")
            return
        self.job = job
        self.state = "ready"
        log.info("job %s ready in %.2f s", job.class_name, time.perf_counter() - started)

    def require(self) -> Job:
        """The loaded job, or a 503 naming why there is none."""
        job = self.job
        if job is not None:
            return job
        if self.error is not None:
            raise ApiError(503, f"the job failed to start: {self.error}", error_type="JobNotReady")
        raise ApiError(503, "the job is still starting; retry shortly", error_type="JobNotReady")

    def status(self) -> Dict[str, Any]:
        """The probes' body."""
        body: Dict[str, Any] = {"status": self.state}
        if self.error is not None:
            body["error"] = str(self.error)
            body["type"] = "JobLoadError"
            if self.error.user_traceback:
                body["traceback"] = self.error.user_traceback.rstrip().splitlines()
        return body


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status=status, mimetype=JSON)


def _read_json_object(limit: int) -> Dict[str, Any]:
    """The request body as a JSON object; 413 past ``limit`` bytes, 400 if malformed or no object."""
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(413, f"the request body has {length} bytes, over the limit of {limit} "
                            "(FATMAN_MAX_BODY_BYTES)", error_type="PayloadTooLarge")
    data = request.stream.read(limit + 1)  # bounded even for chunked bodies without a length
    if len(data) > limit:
        raise ApiError(413, f"the request body is over the limit of {limit} bytes (FATMAN_MAX_BODY_BYTES)",
                       error_type="PayloadTooLarge")
    if not data.strip():
        return {}  # no body: an endpoint without arguments, or all of them optional
    try:
        payload = json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ApiError(400, f"the request body is not valid JSON: {exc}", error_type="MalformedJSON") from None
    if not isinstance(payload, dict):
        kind = type(payload).__name__ if not isinstance(payload, list) else "an array"
        raise ApiError(400, f"the request body must be a JSON object of named arguments, got {kind}",
                       error_type="MalformedJSON")
    return payload


def _handle_error(exc: Exception) -> Union[Response, HTTPException]:
    """The one error handler: every failure becomes ``ApiError.to_dict()`` JSON."""
    if isinstance(exc, ApiError):
        err = exc
    elif isinstance(exc, HTTPException):
        if exc.code is None or exc.code < 400:
            return exc  # redirects (trailing slashes) are answers, not errors
        err = ApiError(exc.code, exc.description or exc.name, error_type=type(exc).__name__)
    else:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        err = ApiError(500, f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__)
    response = _json_response(err.to_dict(), err.status)
    if isinstance(exc, HTTPException):
        for name, value in exc.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fatman"'
    return response


def create_app(
    entrypoint_path: Union[str, os.PathLike],
    class_name: Optional[str] = None,
    *,
    root: Union[str, os.PathLike] = ".",
    settings: Optional[Settings] = None,
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
    holder = JobHolder(lambda: load_job(entrypoint_path, class_name, root_path, webview_base))
    guard = TokenGuard(settings.auth_token, settings.public_endpoints)
    metrics = RequestMetrics(lambda: holder.job.metrics if holder.job else None)
    title = settings.name or "fatman"
    limit = settings.max_body_bytes
    swagger_dir = os.path.realpath(swagger_ui_dir())
    openapi_cache: Dict[str, bytes] = {}
    caches: Dict[str, Any] = {}

    app = Flask("fatman_wrapper", static_folder=None)
    app.wsgi_app = PrefixMiddleware(app.wsgi_app, settings.pub_prefix)  # type: ignore[method-assign]
    app.extensions["fatman"] = holder
    app.register_error_handler(Exception, _handle_error)

    @app.before_request
    def _start() -> None:
        g.fatman_started = time.perf_counter()
        if guard.enabled and not guard.allows(request.path, request.headers):
            raise ApiError(401, f"missing or wrong auth token: send it in the {'X-Racetrack-Auth'} header "
                                "or as 'Authorization: Bearer <token>'", error_type="Unauthorized")

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.get("fatman_started")
        if started is not None:
            endpoint = g.get("fatman_endpoint")
            if endpoint is None:
                endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.observe(endpoint, response.status_code, time.perf_counter() - started)
        return response

    def call_endpoint(path: str) -> Response:
        job = holder.require()
        endpoint = job.endpoints.get(path)
        if endpoint is None:
            g.fatman_endpoint = "/api/v1/<unknown>"
            known = ", ".join(f"/api/v1/{p}" for p in job.endpoints)
            raise ApiError(404, f"no endpoint POST /api/v1/{path} (this job has: {known})", error_type="NotFound")
        g.fatman_endpoint = f"/api/v1/{path}"
        kwargs = endpoint.signature.bind(_read_json_object(limit))
        try:
            result = endpoint.method(**kwargs)
        except Exception as exc:
            log.exception("/api/v1/%s raised %s", path, type(exc).__name__)
            raise ApiError(500, str(exc) or type(exc).__name__, error_type=type(exc).__name__) from exc
        try:
            body = dumps(result)
        except (TypeError, ValueError) as exc:
            log.error("the result of /api/v1/%s cannot be encoded as JSON: %s", path, exc)
            raise ApiError(500, f"the result cannot be encoded as JSON: {exc}", error_type="EncodingError") from exc
        return Response(body, status=200, mimetype=JSON)

    def perform() -> Response:
        return call_endpoint("perform")

    def api_path(path: str) -> Response:
        if request.method == "POST":
            return call_endpoint(path)
        job = holder.require()
        files: Optional[StaticFiles] = caches.get("static")
        if files is None:
            files = caches["static"] = StaticFiles(root_path, job.static)
        found = files.resolve(path)
        if found is None:
            g.fatman_endpoint = "/api/v1/<unknown>"
            raise ApiError(404, f"nothing to GET at /api/v1/{path}", error_type="NotFound")
        g.fatman_endpoint = f"/api/v1/{path.split('/')[0]}"
        file_path, mimetype = found
        return send_file(file_path, mimetype=mimetype, conditional=True)

    def parameters() -> Response:
        job = holder.require()
        body = caches.get("parameters")
        if body is None:
            body = caches["parameters"] = dumps(job.endpoints["perform"].signature.parameters_json())
        return Response(body, mimetype=JSON)

    def webview(rest: str = "") -> Any:
        job = holder.require()
        if job.webview is None:
            raise ApiError(404, "this job has no webview (define webview_app(self, base_url) in the entrypoint)",
                           error_type="NotFound")
        if rest == "static" or rest.startswith("static/"):
            static_dir = os.path.realpath(os.path.join(root_path, "static"))
            found = resolve_under(static_dir, rest[len("static/"):]) if os.path.isdir(static_dir) else None
            if found is None:
                raise ApiError(404, f"no file {rest} in the job's static/ folder", error_type="NotFound")
            return send_file(found, conditional=True)
        # The user's app routes on base_url + "/...": hand it the full path it was told about.
        environ = dict(request.environ)
        environ["PATH_INFO"] = webview_base + environ.get("PATH_INFO", "")[len(WEBVIEW_PATH):]
        environ["SCRIPT_NAME"] = ""
        return Response.from_app(job.webview, environ)

    def health() -> Response:
        body = holder.status()
        body.update(name=settings.name or None, version=settings.version or None,
                    wrapper_version=__version__, entrypoint_class=holder.job.class_name if holder.job else None)
        return _json_response(body, 200 if holder.job else 503)

    def live() -> Response:
        return _json_response({"status": "alive"})

    def ready() -> Response:
        return _json_response(holder.status(), 200 if holder.job else 503)

    def metrics_view() -> Response:
        return Response(metrics.render(), mimetype=METRICS_CONTENT_TYPE)

    def openapi_json() -> Response:
        script_root = request.script_root
        body = openapi_cache.get(script_root)
        if body is None or holder.job is None:
            document = build_document(holder.job, title=title, version=settings.version,
                                      server_url=script_root,
                                      load_error=str(holder.error) if holder.error else None)
            body = dumps(document).encode("utf-8")
            if holder.job is not None:
                openapi_cache[script_root] = body
        return Response(body, mimetype=JSON)

    def docs() -> Response:
        root_url = request.script_root
        page = swagger_page(title, f"{root_url}/docs/static", f"{root_url}/openapi.json")
        return Response(page, mimetype="text/html")

    def docs_static(filename: str) -> Response:
        found = resolve_under(swagger_dir, filename)
        if found is None:
            raise ApiError(404, f"no Swagger UI file {filename}", error_type="NotFound")
        return send_file(found, conditional=True, max_age=86400)

    def index() -> Response:
        return redirect(f"{request.script_root}/docs", code=302)

    rules: List[Tuple[str, str, Callable[..., Any], List[str]]] = [
        ("/", "index", index, ["GET"]),
        ("/docs", "docs", docs, ["GET"]),
        ("/docs/static/<path:filename>", "docs_static", docs_static, ["GET"]),
        ("/openapi.json", "openapi", openapi_json, ["GET"]),
        ("/health", "health", health, ["GET"]),
        ("/live", "live", live, ["GET"]),
        ("/ready", "ready", ready, ["GET"]),
        ("/metrics", "metrics", metrics_view, ["GET"]),
        ("/api/v1/perform", "perform", perform, ["POST"]),
        ("/api/v1/parameters", "parameters", parameters, ["GET"]),
        (WEBVIEW_PATH, "webview_root", webview, ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        (WEBVIEW_PATH + "/", "webview_index", webview, ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        (WEBVIEW_PATH + "/<path:rest>", "webview", webview,
         ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        ("/api/v1/<path:path>", "api_path", api_path, ["GET", "POST"]),
    ]
    for rule, endpoint, view, methods in rules:
        app.add_url_rule(rule, endpoint, view, methods=methods)

    if background:
        threading.Thread(target=holder.load, name="fatman-job-loader", daemon=True).start()
    else:
        holder.load()
    return app
