"""Token check for every route but the probes and the job's public endpoints.

Paths are compared after the ``/pub/fatman/<name>/<version>`` prefix was taken off (see
``middleware.FatmanMiddleware``), so a public endpoint written without the prefix holds under both.

What a public endpoint opens:

* The job's own paths (``/api/v1/...``: perform, parameters, auxiliary, static and webview
  endpoints; ``/webview/static/...``): the public endpoint's exact path and the paths under it,
  ``/foo`` opens ``/foo/x``, never ``/foobar``. ``/webview/static`` and ``/api/v1/webview/static``
  serve the same files, so either opens both.
* The wrapper's own pages (``/docs`` with its assets, ``/openapi.json``, ``/metrics``, ``/``) only
  when named: ``/docs`` opens Swagger UI and its assets. A path above the job's API (``/``, ``/api``,
  ``/api/v1``) opens every endpoint of the job but none of these pages: it says "my whole API",
  not "my metrics".
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

PROBES = ("/health", "/live", "/ready")
API = "/api/v1"
# /webview/static/x serves the same file as /api/v1/webview/static/x, so it is exactly as public.
WEBVIEW_STATIC_ALIAS = "/webview/static"
TOKEN_HEADER = "X-Racetrack-Auth"
TOKEN_ENVIRON = "HTTP_X_RACETRACK_AUTH"


def _canonical(path: str) -> str:
    """``path`` with the /webview/static alias written as the /api/v1/webview/static it serves."""
    if path == WEBVIEW_STATIC_ALIAS or path.startswith(WEBVIEW_STATIC_ALIAS + "/"):
        return API + path
    return path


def _opens_api(public: str) -> bool:
    """Whether a public endpoint (without its trailing slash) is ``/api/v1`` or a path above it."""
    return API == public or API.startswith(public + "/")


class TokenGuard:
    """Decides whether a request needs the token and whether it brought the right one."""

    def __init__(self, token: str, public_endpoints: Iterable[str]) -> None:
        self._token = token.encode("utf-8")  # what a client sends for a UTF-8 token
        self.enabled = bool(token)
        public = [_canonical(p.rstrip("/")) for p in public_endpoints]  # "/" is ""
        # Prefixes ("/x/") for paths under them, and exact paths, for the job's paths...
        self._api = tuple(p + "/" for p in public)
        self._api_exact = frozenset(public)
        # ...and for the wrapper's own pages: only endpoints below the job's API or beside it.
        pages = [p for p in public if not _opens_api(p)]
        self._pages = tuple(p + "/" for p in pages)
        self._pages_exact = frozenset(pages)

    def is_exempt(self, path: str) -> bool:
        """True for the probes and for a path a public endpoint opens (see the module docstring)."""
        if path in PROBES:
            return True
        # A path with dot segments is not trusted to be under a public prefix: /pub/../metrics.
        if "/." in path:
            return False
        path = _canonical(path)
        if path.startswith(API + "/"):
            exact, prefixes = self._api_exact, self._api
        else:
            exact, prefixes = self._pages_exact, self._pages
        return path in exact or path.startswith(prefixes)

    def token_from(self, environ: Mapping[str, Any]) -> str | None:
        """The token a request carries: ``X-Racetrack-Auth`` or ``Authorization: Bearer``."""
        token = environ.get(TOKEN_ENVIRON)
        if token:
            return token
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None

    def allows(self, path: str, environ: Mapping[str, Any]) -> bool:
        """Whether a request (its WSGI environ) may pass: no token set, exempt path, or the right token."""
        if not self.enabled or self.is_exempt(path):
            return True
        given = self.token_from(environ)
        if given is None:
            return False
        # Constant time, so the answer's timing does not reveal how much of a guess was right.
        # WSGI headers are latin-1 decoded strings; encode back to the bytes that were sent.
        return hmac.compare_digest(given.encode("latin-1", "replace"), self._token)
