"""The handlers of the wrapper's routes, as methods of one object per app (see ``routes.ROUTES``).

A ``Views`` holds what the handlers share: the job (``JobHolder``), the settings, the request
metrics and the answers worth computing once (``/api/v1/parameters``, ``/openapi.json``, the static
files). Which URL reaches which handler, with which methods and under which metrics label, is
written in the route table, not here.
"""

from __future__ import annotations

import os

from flask import Response, redirect, request, send_file
from werkzeug.wrappers import Response as BaseResponse

from .auth import TOKEN_HEADER
from .calls import call_endpoint
from .config import Settings
from .encoding import dumps, utf8
from .errors import ApiError
from .health import health_body, live_body
from .holder import JobHolder
from .loader import Job
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import RequestMetrics
from .openapi import build_document, swagger_page, swagger_ui_dir
from .request_context import enter, leave
from .responses import JSON, json_response
from .static import StaticFiles, resolve_under

API_PREFIX = "/api/v1/"
WEBVIEW_PATH = "/api/v1/webview"
# Racetrack's python3 job-type documentation serves the job's static/ folder here; the same files
# are also under WEBVIEW_PATH + "/static".
WEBVIEW_STATIC_PATH = "/webview/static"
UNKNOWN_API_LABEL = "/api/v1/<unknown>"  # the metrics label of every /api/v1/ path the job lacks
UNMATCHED_LABEL = "unmatched"  # ...and of any other path no route takes


def local_redirect(location: str, code: int) -> BaseResponse:
    """A redirect to a path of this server, with the path as its ``Location``.

    Never an absolute URL built from the request's ``Host`` header (Werkzeug before 2.1 made every
    ``Location`` absolute that way), and never ``//...``, which a browser reads as another host.
    """
    response = redirect("/" + location.lstrip("/"), code=code)
    response.autocorrect_location_header = False
    return response


class Views:
    """Every route's handler over one job; built by ``create_app``, one per app."""

    def __init__(
        self,
        holder: JobHolder,
        settings: Settings,
        metrics: RequestMetrics,
        root_path: str,
        webview_base: str,
    ) -> None:
        self.holder = holder
        self.settings = settings
        self.request_metrics = metrics
        self.root_path = root_path  # a real path
        self.webview_base = webview_base  # the base_url the job's webview_app was given
        self.title = settings.name or "fatman"
        self.swagger_dir = os.path.realpath(swagger_ui_dir())
        self._parameters: bytes | None = None
        self._static: StaticFiles | None = None
        self._openapi: dict[str, bytes] = {}  # per script root: the document names it as its server

    # Probes and metrics.

    def health(self) -> Response:
        job = self.holder.job
        body = health_body(self.holder.status(), job, self.settings, self.holder.error)
        # Racetrack 2.x answers 500 unless live and ready; the fatman era 503 while not ready.
        return json_response(body, 200 if job else (500 if self.settings.v2 else 503))

    def live(self) -> Response:
        body, code = live_body(self.settings, self.holder.error)
        return json_response(body, code)

    def ready(self) -> Response:
        body = self.holder.status()
        if not self.settings.v2:
            return json_response(body, 200 if self.holder.job else 503)
        # Racetrack 2.x: {ready: true} or 500 {ready: false}, beside the fatman era's fields.
        ready = self.holder.job is not None
        return json_response({"ready": ready, **body}, 200 if ready else 500)

    def metrics(self) -> Response:
        # content_type, not mimetype: the constant already carries its charset, which Werkzeug
        # would append a second time to a mimetype.
        return Response(self.request_metrics.render(), content_type=METRICS_CONTENT_TYPE)

    # Documentation.

    def index(self) -> BaseResponse:
        # The home page (FATMAN_HOME_PAGE, /docs by default) under the prefix the client came through:
        # 307 as Racetrack 2.x answers (FATMAN_CONTRACT=2), else 302 as the fatman era did.
        code = 307 if self.settings.v2 else 302
        return local_redirect(f"{request.script_root}{self.settings.home_page}", code)

    def docs(self) -> Response:
        root_url = request.script_root
        page = swagger_page(self.title, f"{root_url}/docs/static", f"{root_url}/openapi.json")
        return Response(page, mimetype="text/html")

    def docs_static(self, filename: str) -> Response:
        found = resolve_under(self.swagger_dir, filename)
        if found is None:
            raise ApiError(404, f"no Swagger UI file {filename}", error_type="NotFound")
        return send_file(found, conditional=True, max_age=86400)

    def openapi(self) -> Response:
        script_root = request.script_root
        holder = self.holder
        # As the job's own endpoints do: a worker still loading the job waits for it, so a client
        # reaching it (a smoke test reading the examples) never gets a document without them
        # (unless too many requests wait already: then it gets the document of a job starting).
        holder.wait_loaded()
        body = self._openapi.get(script_root)
        if body is None or holder.job is None:
            document = build_document(
                holder.job,
                title=self.title,
                version=self.settings.version,
                server_url=script_root,
                load_error=holder.error.summary() if holder.error else None,
                # Racetrack 2.x's Pub asks for X-Racetrack-Auth before the job sees a request: its
                # documents declare it whether or not the job checks a token itself.
                token_header=TOKEN_HEADER if self.settings.auth_token or self.settings.v2 else None,
                v2=self.settings.v2,
            )
            body = utf8(dumps(document))
            if holder.job is not None:
                self._openapi[script_root] = body
        return Response(body, mimetype=JSON)

    # The job's API: /api/v1/<path>.

    def api(self, path: str) -> BaseResponse:
        # Every /api/v1/ path of the job comes here, whatever the method: which methods a path takes
        # depends on the job (loaded at run time), so one handler decides, and a wrong method on an
        # existing endpoint is 405 with the Allow header OPTIONS agrees with.
        method = request.method
        job = self.holder.require()
        if method == "POST":
            endpoint = job.endpoints.get(path)
            if endpoint is not None:
                settings = self.settings
                body = call_endpoint(
                    endpoint,
                    request.environ,
                    body_limit=settings.max_body_bytes,
                    timeout=settings.request_timeout,
                    v2=settings.v2,
                    on_call=self.request_metrics.called,
                )
                return Response(body, status=200, mimetype=JSON)
        allowed = self._allowed_methods(job, path)
        if not allowed:
            if method == "POST":
                known = ", ".join(f"{API_PREFIX}{p}" for p in job.endpoints)
                message = f"no endpoint POST {API_PREFIX}{path} (this job has: {known})"
            else:
                message = f"nothing at {API_PREFIX}{path}"
            raise ApiError(404, message, error_type="NotFound")
        allow = ", ".join(sorted([*allowed, "OPTIONS"]))
        if method == "OPTIONS":
            return Response(status=200, headers={"Allow": allow})
        if method not in allowed:
            raise ApiError(
                405,
                f"{method} is not allowed on {API_PREFIX}{path} (allowed: {allow})",
                error_type="MethodNotAllowed",
                headers={"Allow": allow},
            )
        if path == "parameters":
            return self._parameters_of(job)
        return self._static_file(job, path)

    def api_label(self, path: str) -> str:
        """The metrics label of ``/api/v1/<path>``: the endpoint's own, a static endpoint's first
        segment (one label per static endpoint, however many files it serves), else one label for
        every path the job does not have."""
        job = self.holder.job
        if job is None:
            return UNMATCHED_LABEL
        if path in job.endpoints:
            return API_PREFIX + path
        if self._static_files(job).match(path) is not None:
            return API_PREFIX + path.split("/")[0]
        return UNKNOWN_API_LABEL

    def _allowed_methods(self, job: Job, path: str) -> list[str]:
        """The methods ``/api/v1/<path>`` answers (without OPTIONS); empty when nothing is there."""
        methods = set()
        if path in job.endpoints:
            methods.add("POST")
        if path == "parameters" or self._static_files(job).match(path) is not None:
            methods.update(("GET", "HEAD"))
        return sorted(methods)

    def _parameters_of(self, job: Job) -> Response:
        body = self._parameters
        if body is None:
            body = self._parameters = utf8(dumps(job.endpoints["perform"].signature.parameters_json()))
        return Response(body, mimetype=JSON)

    def _static_files(self, job: Job) -> StaticFiles:
        files = self._static
        if files is None:
            files = self._static = StaticFiles(self.root_path, job.static)
        return files

    def _static_file(self, job: Job, path: str) -> BaseResponse:
        found = self._static_files(job).resolve(path)
        if found is None:
            raise ApiError(404, f"nothing to GET at {API_PREFIX}{path}", error_type="NotFound")
        if found.redirect:
            query = request.query_string.decode("latin-1")
            location = f"{request.script_root}{API_PREFIX}{path}/" + (f"?{query}" if query else "")
            return local_redirect(location, 308)
        assert found.file is not None  # a Found without redirect names its file
        return send_file(found.file, mimetype=found.mimetype, conditional=True)

    # The job's webview.

    def webview(self, rest: str = "") -> BaseResponse:
        job = self.holder.require()
        if job.webview is None:
            raise ApiError(
                404,
                "this job has no webview (define webview_app(self, base_url) in the entrypoint)",
                error_type="NotFound",
            )
        if rest == "static" or rest.startswith("static/"):
            return self._webview_file(rest[len("static/") :])
        # The user's app routes on base_url + "/...": hand it the full path it was told about.
        environ = dict(request.environ)
        environ["PATH_INFO"] = self.webview_base + environ.get("PATH_INFO", "")[len(WEBVIEW_PATH) :]
        environ["SCRIPT_NAME"] = ""
        tokens = enter(request.environ)  # self.request_context.get() in the job's webview too
        try:
            return Response.from_app(job.webview, environ)
        finally:
            leave(tokens)

    def webview_static(self, filename: str) -> Response:
        job = self.holder.require()
        if job.webview is None:
            raise ApiError(
                404,
                "this job has no webview, so no static/ folder is served "
                "(define webview_app(self, base_url) in the entrypoint)",
                error_type="NotFound",
            )
        return self._webview_file(filename)

    def _webview_file(self, filename: str) -> Response:
        """A file of the job's static/ folder (traversal-safe), for a job with a webview."""
        # The folder itself must be inside the job root too: a static/ that is a symlink out of it
        # (static -> ../outside) is not served, as a static endpoint's target would not be.
        static_dir = resolve_under(self.root_path, "static", folder=True)
        found = resolve_under(static_dir, filename) if static_dir is not None else None
        if found is None:
            raise ApiError(404, f"no file {filename!r} in the job's static/ folder", error_type="NotFound")
        return send_file(found, conditional=True)
