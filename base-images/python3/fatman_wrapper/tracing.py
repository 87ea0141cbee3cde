"""Who a request is and who sent it: its tracing id and its caller's name, as Racetrack 2.x has them.

Every request gets a tracing id: the one its ``X-Request-Tracing-Id`` header brings (a Racetrack
gateway sets one on every request it forwards), or a new UUID4 when it brings none or one that
could not be written to a log line as it is. The id is answered in the same header, written on every
log line of the request (``logs.py``) and sent on with chain calls (``racetrack_job_wrapper.call``).
``X-Caller-Name`` (set by the gateway) is read too. Both header names follow
``REQUEST_TRACING_HEADER`` / ``CALLER_NAME_HEADER`` (``config.Settings``).

The values live in context variables for the request's duration: a log call, a job's chain call or
``self.request_context.get()`` anywhere below the request finds them, in the request's thread and
in the threads and event loops the wrapper runs the job's call in (those copy the context).
"""

from __future__ import annotations

import contextvars
import re
import uuid
from typing import Any

TRACING_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("fatman_tracing_id", default=None)
CALLER_NAME: contextvars.ContextVar[str | None] = contextvars.ContextVar("fatman_caller_name", default=None)
TRACING_ENVIRON = "fatman.tracing_id"  # WSGI environ key of the request's tracing id

# A tracing id taken from a request as it is: visible ASCII without spaces, at most 128 characters
# (a UUID has 36). Anything else could break a log line (or forge one), so a new id replaces it.
_TAKEN_ID = re.compile(r"[!-~]{1,128}")
CALLER_LIMIT = 200
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def environ_key(header: str) -> str:
    """The WSGI environ key of a request header: ``X-Caller-Name`` -> ``HTTP_X_CALLER_NAME``."""
    return "HTTP_" + header.upper().replace("-", "_")


def new_tracing_id() -> str:
    return str(uuid.uuid4())


def printable(text: str, limit: int = 0) -> str:
    """``text`` with control characters escaped (``\\n`` -> ``\\\\n``), so no value from a request can
    break a log line or forge another; cut to ``limit`` characters when given."""
    if limit and len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    return _UNPRINTABLE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class Tracing:
    """Reads a request's tracing id and caller, and holds them in the context while it runs."""

    def __init__(self, tracing_header: str, caller_header: str) -> None:
        self.header = tracing_header
        self._header_lower = tracing_header.lower()
        self._tracing_key = environ_key(tracing_header)
        self._caller_key = environ_key(caller_header)

    def begin(self, environ: dict[str, Any]) -> tuple[str, Any]:
        """The request's tracing id (taken or made), now current with its caller; the second value
        is what ``end`` needs to restore the context."""
        taken = environ.get(self._tracing_key)
        tracing_id = taken if taken and _TAKEN_ID.fullmatch(taken) else new_tracing_id()
        environ[TRACING_ENVIRON] = tracing_id
        caller = environ.get(self._caller_key)
        tokens = (
            TRACING_ID.set(tracing_id),
            CALLER_NAME.set(printable(caller.strip(), CALLER_LIMIT) if caller and caller.strip() else None),
        )
        return tracing_id, tokens

    def end(self, tokens: Any) -> None:
        TRACING_ID.reset(tokens[0])
        CALLER_NAME.reset(tokens[1])

    def with_header(self, headers: list[tuple[str, str]], tracing_id: str) -> list[tuple[str, str]]:
        """An answer's headers with the tracing id, unless the answer (a webview's) has it already."""
        lower = self._header_lower
        for name, _ in headers:
            if name.lower() == lower:
                return headers
        return [*headers, (self.header, tracing_id)]
