"""The Flask app factory: every Fatman endpoint over a loaded (or failed) job.

``create_app`` returns a new app per call and has no import-time side effects. The job is loaded by
``loader.py`` and kept by ``holder.JobHolder``; the routes are the table in ``routes.py``, their
handlers the methods of ``views.Views``; ``middleware.FatmanMiddleware`` wraps the app for the
gateway prefixes, tracing, the token, the overload limit, the metrics and the access log. Every
error answer has one JSON shape (``ApiError.to_dict``) produced by one handler
(``responses.handle_error``).
"""

from __future__ import annotations

import os
import threading
import types

from flask import Flask
from werkzeug.routing import Rule

from .auth import TokenGuard
from .balance import Balancer
from .config import SPARE_THREADS, Settings
from .fastpath import JobCalls
from .holder import JobHolder
from .limits import AppThreads, ConcurrencyLimiter
from .loader import Job, load_job
from .metrics import RequestMetrics
from .middleware import FatmanMiddleware
from .responses import handle_error
from .routes import ROUTES, RouteLabels, never_limited
from .tracing import Tracing
from .views import API_PREFIX, WEBVIEW_PATH, Views
from .watchdog import start_beating


def load_waiters(threads: int) -> int:
    """How many requests one worker lets wait for its job to load: all its threads but the spare
    ones (``SPARE_THREADS``), which are left to the probes and ``/metrics``; with 2 or 3 threads one
    request waits and one thread stays free, with 1 none waits."""
    return max(min(1, threads - 1), threads - SPARE_THREADS)


def create_app(
    entrypoint_path: str | os.PathLike,
    class_name: str | None = None,
    *,
    root: str | os.PathLike = ".",
    settings: Settings | None = None,
    background: bool = False,
    fast_path: bool = True,
    app_threads: int = 0,
    heartbeat_dir: str | None = None,
) -> Flask:
    """A Flask app serving the job whose entrypoint is ``entrypoint_path`` (relative to ``root``).

    ``settings`` defaults to ``Settings.from_env()``. With ``background=True`` the job loads in a
    thread so the probes answer at once while a slow ``__init__`` runs; otherwise it loads before
    this returns. A job that fails to load does not raise: the app answers 503 naming the failure.
    The working directory is not changed here; ``server.run`` moves into the job root.
    ``fast_path=False`` leaves the job's calls to Flask too (``fastpath.py``; for benchmarks).
    ``app_threads``: with a server whose thread pool is larger than the app may use (granian's,
    see ``limits.AppThreads``), how many requests of this worker run in the app at once; 0: the
    server's threads bound them. ``heartbeat_dir``: under granian, the folder of the workers'
    heartbeat files (``watchdog.py``); this worker beats there, and with ``app_threads`` spreads
    keep-alive connections with its peers (``balance.py``).
    """
    settings = settings or Settings.from_env()
    root_path = os.path.realpath(root)
    webview_base = settings.pub_prefix + WEBVIEW_PATH

    def load() -> Job:
        job = load_job(entrypoint_path, class_name, root_path, webview_base)
        labels.learn(API_PREFIX + path for path in job.endpoints)
        return job

    holder = JobHolder(
        load,
        wait_seconds=float(settings.timeout) if background else 0.0,
        max_waiting=load_waiters(settings.worker_threads),
    )
    metrics = RequestMetrics(lambda: holder.job.metrics if holder.job else None)
    views = Views(holder, settings, metrics, root_path, webview_base)
    labels = RouteLabels(ROUTES, views.api_label)

    app = Flask("fatman_wrapper", static_folder=None)
    # No redirect from /a//b to /a/b: Werkzeug would build its Location from the request's Host
    # header (http://evil.example/...), even on public paths. An empty segment is 404 instead, as
    # the static lookups already answer it. Set before the rules are added: each copies it.
    app.url_map.merge_slashes = False
    for route in ROUTES:
        handler = types.MethodType(route.handler, views)
        if route.methods is None:
            # A bare Rule: Flask's add_url_rule would default to GET and add automatic OPTIONS.
            app.url_map.add(Rule(route.rule, endpoint=route.endpoint, defaults=route.defaults))
            app.view_functions[route.endpoint] = handler
        else:
            app.add_url_rule(
                route.rule, route.endpoint, handler, methods=list(route.methods), defaults=route.defaults
            )
    app.register_error_handler(Exception, handle_error)
    threads = AppThreads(app_threads, settings.max_body_bytes) if app_threads > 0 else None
    balancer = None
    if heartbeat_dir is not None:
        if threads is not None:
            balancer = Balancer(heartbeat_dir, threads, ready=lambda: holder.state == "ready")
        start_beating(heartbeat_dir, balancer.tick if balancer is not None else None)
    # Wrapping wsgi_app is Flask's documented way to add WSGI middleware; mypy sees a method.
    app.wsgi_app = FatmanMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        prefixes=settings.pub_prefixes,
        guard=TokenGuard(settings.auth_token, settings.public_endpoints),
        metrics=metrics,
        label_for=labels.label_of,
        limiter=(
            ConcurrencyLimiter(settings.max_concurrency, settings.max_queue, settings.queue_timeout)
            if settings.max_concurrency > 0
            else None
        ),
        never_limited=never_limited(ROUTES),
        tracing=Tracing(settings.tracing_header, settings.caller_header),
        access_log=settings.access_log,
        fast_path=JobCalls(holder, settings, metrics.called) if fast_path else None,
        app_threads=threads,
        balancer=balancer,
    )

    if background:
        threading.Thread(target=holder.load, name="fatman-job-loader", daemon=True).start()
    else:
        holder.load()
    return app
