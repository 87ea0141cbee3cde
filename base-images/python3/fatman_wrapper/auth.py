"""Token check for every route but the probes and the job's public endpoints.

Paths are compared after the ``/pub/fatman/<name>/<version>`` prefix was taken off (see
``middleware.FatmanMiddleware``), so a public endpoint written without the prefix holds under both. Each
public endpoint opens that exact path and the paths under it: ``/foo`` opens ``/foo/x``, never
``/foobar``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

PROBES = ("/health", "/live", "/ready")
# /webview/static/x serves the same file as /api/v1/webview/static/x, so it is exactly as public.
WEBVIEW_STATIC_ALIAS = "/webview/static"
TOKEN_HEADER = "X-Racetrack-Auth"
TOKEN_ENVIRON = "HTTP_X_RACETRACK_AUTH"


class TokenGuard:
    """Decides whether a request needs the token and whether it brought the right one."""

    def __init__(self, token: str, public_endpoints: Iterable[str]) -> None:
        self._token = token.encode("utf-8")  # what a client sends for a UTF-8 token
        self.enabled = bool(token)
        self._public: tuple[str, ...] = tuple(p.rstrip("/") for p in public_endpoints)

    def is_exempt(self, path: str) -> bool:
        """True for the probes and for a public endpoint or any path under one."""
        if path in PROBES:
            return True
        # A path with dot segments is not trusted to be under a public prefix: /pub/../metrics.
        if "/." in path:
            return False
        if path == WEBVIEW_STATIC_ALIAS or path.startswith(WEBVIEW_STATIC_ALIAS + "/"):
            path = "/api/v1" + path
        for public in self._public:
            if not public:  # "/" was declared public: everything is
                return True
            if path == public or path.startswith(public + "/"):
                return True
        return False

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
