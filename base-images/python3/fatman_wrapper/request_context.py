"""``self.request_context`` and ``self.request_extra`` of a job, as Racetrack 2.x gives them.

After the job's ``__init__`` the wrapper sets two context variables on the instance:
``self.request_context.get()`` is the current request (a ``JobRequest``: Werkzeug's request with
Starlette's ``query_params`` and ``client`` beside its own ``args`` and ``remote_addr``;
``headers.get(name)`` is case-insensitive in both), and ``self.request_extra.get()`` a dict of the
job's own for the current request, new for each one. Outside a request (in ``__init__``, in a
thread of the job's own) ``get()`` raises ``LookupError``, as in Racetrack. The request's body has
already been read into the endpoint's arguments.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from werkzeug.wrappers import Request

log = logging.getLogger(__name__)

REQUEST: contextvars.ContextVar[JobRequest] = contextvars.ContextVar("request_context")
REQUEST_EXTRA: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("request_extra")


class Address(NamedTuple):
    host: str
    port: int


class JobRequest(Request):
    """The request a job call answers (``self.request_context.get()``)."""

    @property
    def query_params(self) -> Mapping[str, str]:
        """Starlette's name of the query parameters (Werkzeug's ``args``)."""
        return self.args

    @property
    def client(self) -> Address | None:
        """Starlette's ``(host, port)`` of the peer (the gateway, behind one)."""
        host = self.environ.get("REMOTE_ADDR")
        if not host:
            return None
        try:
            port = int(self.environ.get("REMOTE_PORT") or 0)
        except ValueError:
            port = 0
        return Address(host, port)


def attach(instance: Any) -> None:
    """Give a started job ``request_context`` and ``request_extra`` (a job whose class takes these
    names for something else of its own keeps it, with a warning)."""
    for name, var in (("request_context", REQUEST), ("request_extra", REQUEST_EXTRA)):
        try:
            setattr(instance, name, var)
        except AttributeError:  # a read-only property of the job's own
            log.warning(
                "%s.%s is the job's own (read-only), so the wrapper's request context is not set there",
                type(instance).__name__,
                name,
            )


def enter(environ: dict[str, Any]) -> tuple[contextvars.Token[Any], contextvars.Token[Any]]:
    """Make ``environ``'s request the current one; ``leave`` with what this returns."""
    return REQUEST.set(JobRequest(environ)), REQUEST_EXTRA.set({})


def leave(tokens: tuple[contextvars.Token[Any], contextvars.Token[Any]]) -> None:
    REQUEST.reset(tokens[0])
    REQUEST_EXTRA.reset(tokens[1])
