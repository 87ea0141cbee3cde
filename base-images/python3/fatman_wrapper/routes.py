"""The route table: every URL the wrapper answers, with its methods, handler and metrics label.

``create_app`` registers each ``Route`` of ``ROUTES`` with Flask; ``RouteLabels`` reads the same
table to name the metrics label of any request path, so a request counts under its route's label
whether the handler answered it or the middleware refused it first (401, 429). A new route is one
line here and its handler, a method of ``views.Views``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from .views import API_PREFIX, UNMATCHED_LABEL, WEBVIEW_PATH, WEBVIEW_STATIC_PATH, Views

GET = ("GET",)
ANY_METHOD = None  # the handler answers every method itself, OPTIONS and 405 included
# The job's webview app decides what each method does.
WEBVIEW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclasses.dataclass(frozen=True)
class Route:
    """One URL rule of the wrapper."""

    rule: str  # a Werkzeug rule; a <path:...> variable, if any, ends it
    handler: Callable[..., Any]  # a ``Views`` method, called on the app's ``Views``
    methods: tuple[str, ...] | None = GET  # Flask adds HEAD (to GET) and OPTIONS; see ANY_METHOD
    defaults: Mapping[str, str] | None = None  # handler arguments this rule fixes
    # The label depends on the job: ``Views.api_label`` of the path after the rule's fixed part.
    job_label: bool = False
    # Answered even past the overload limit: an orchestrator that sees failing probes under load
    # would restart a healthy (busy) job, and a scrape of a busy job is when its metrics matter most.
    never_limited: bool = False

    @property
    def label(self) -> str:
        """The metrics label of every request this route takes: its rule up to the first variable,
        without a trailing slash, so a route adds one label however many paths it serves."""
        return self.rule.partition("<")[0].rstrip("/") or "/"

    @property
    def endpoint(self) -> str:
        """Flask's name of the route: the handler's, with the arguments the rule fixes."""
        return "_".join([self.handler.__name__, *(self.defaults or {}).values()])


ROUTES: tuple[Route, ...] = (
    Route("/", Views.index),
    Route("/docs", Views.docs),
    Route("/docs/static/<path:filename>", Views.docs_static),
    Route("/openapi.json", Views.openapi),
    Route("/health", Views.health, never_limited=True),
    Route("/live", Views.live, never_limited=True),
    Route("/ready", Views.ready, never_limited=True),
    Route("/metrics", Views.metrics, never_limited=True),
    # perform and parameters exist for every job: rules of their own give them their labels even
    # while the job is loading or failed to load; Views.api handles them as any other job path.
    Route(API_PREFIX + "perform", Views.api, ANY_METHOD, defaults={"path": "perform"}),
    Route(API_PREFIX + "parameters", Views.api, ANY_METHOD, defaults={"path": "parameters"}),
    Route(API_PREFIX + "<path:path>", Views.api, ANY_METHOD, job_label=True),
    Route(WEBVIEW_STATIC_PATH + "/<path:filename>", Views.webview_static),
    Route(WEBVIEW_PATH, Views.webview, WEBVIEW_METHODS),
    Route(WEBVIEW_PATH + "/", Views.webview, WEBVIEW_METHODS),
    Route(WEBVIEW_PATH + "/<path:rest>", Views.webview, WEBVIEW_METHODS),
)


class RouteLabels:
    """The metrics label of a request path, read from a route table.

    Only routes give labels, and each one label (see ``Route.label``), so random paths cannot grow
    the label set: a path no route takes is ``UNMATCHED_LABEL``. ``job_label`` names the label of
    paths under a ``job_label`` route.
    """

    def __init__(self, routes: Iterable[Route], job_label: Callable[[str], str]) -> None:
        self._job_label = job_label
        self._exact: dict[str, str] = {}
        prefixes: list[tuple[str, str | None]] = []
        for route in routes:
            fixed, variable, _ = route.rule.partition("<")
            if variable:
                prefixes.append((fixed, None if route.job_label else route.label))
            else:
                self._exact[fixed] = route.label
        # Longest first, so /api/v1/webview/... is not taken for a job path under /api/v1/.
        self._prefixes = sorted(prefixes, key=lambda item: len(item[0]), reverse=True)

    def learn(self, paths: Iterable[str]) -> None:
        """Give each of ``paths`` (the job's endpoints, once it has loaded) itself as its label.

        Not needed for correctness (``job_label`` says the same): found in one dict lookup, the
        label of a job call costs the request path nothing.
        """
        self._exact = {**self._exact, **{path: path for path in paths}}  # swapped whole: read unlocked

    def label_of(self, path: str) -> str:
        """The label ``path`` (without a gateway prefix) is counted under."""
        label = self._exact.get(path)
        if label is not None:
            return label
        for fixed, label in self._prefixes:
            # A <path:...> variable matches at least one character.
            if len(path) > len(fixed) and path.startswith(fixed):
                return self._job_label(path[len(fixed) :]) if label is None else label
        return UNMATCHED_LABEL


def never_limited(routes: Iterable[Route]) -> frozenset[str]:
    """The paths of routes answered even past the overload limit."""
    return frozenset(route.rule for route in routes if route.never_limited)
