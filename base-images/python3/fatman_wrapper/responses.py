"""The wrapper's own answers: JSON bodies, and the one JSON shape every error is answered in."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, request
from werkzeug.exceptions import HTTPException

from .encoding import dumps, utf8
from .errors import ApiError

log = logging.getLogger("fatman_wrapper")

JSON = "application/json"


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` as a JSON answer."""
    return Response(utf8(dumps(body)), status=status, mimetype=JSON)


def error_response(err: ApiError) -> Response:
    """The JSON answer of an error; every error the wrapper answers goes through here."""
    response = json_response(err.to_dict(), err.status)
    for name, value in err.headers.items():
        response.headers[name] = value
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fatman"'
    return response


def handle_error(exc: Exception) -> Response | HTTPException:
    """The app's one error handler: every failure becomes ``ApiError.to_dict()`` JSON."""
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
