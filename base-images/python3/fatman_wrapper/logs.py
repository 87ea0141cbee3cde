"""The wrapper's log lines: plain text (as before) or JSON (``LOG_STRUCTURED=true``), each line logged
while a request runs carrying its tracing id, and its caller's name with ``LOG_CALLER_NAME=true``.

Text: ``2026-12-01 12:00:00,123 [42] [INFO] fatman_wrapper.access: [<tracing id>] [caller: alice]
POST /pub/job/adder/1.0.0/api/v1/perform 200 2.1 ms`` (without a request, no brackets).

JSON, one object per line: ``time`` (ISO 8601, UTC), ``lvl``, ``msg``, ``logger``; ``tracing_id``
and ``caller_name`` when known (the latter with ``LOG_CALLER_NAME`` only); ``cause``
(``"ValueError: ..."``) and ``traceback`` for a logged exception; ``method``, ``path``, ``status``
and ``duration_ms`` on access lines. Values from the request are escaped (JSON's own escaping, or
``\\n`` in text), so none can break a line or forge another.

Access lines (``fatman_wrapper.access``): one per request once its answer has started, at INFO, but
at DEBUG (hidden) for the probes and ``/metrics``, which orchestrators poll every few seconds;
``FATMAN_ACCESS_LOG=false`` turns them off. The query string is never logged (it may hold secrets).
"""

from __future__ import annotations

import datetime
import json
import logging
import sys

from .config import Settings
from .tracing import CALLER_NAME, TRACING_ID, printable

TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(fatman_context)s%(message)s"
ACCESS = logging.getLogger("fatman_wrapper.access")
# The logger tree Racetrack 2.x samples log to (getLogger('racetrack')): DEBUG, as there.
RACETRACK_LOGGER = "racetrack"


def context_prefix(caller_name: bool) -> str:
    """``[<tracing id>] `` (and ``[caller: <name>] ``) while a request runs, else ""."""
    tracing_id = TRACING_ID.get()
    if tracing_id is None:
        return ""
    caller = CALLER_NAME.get() if caller_name else None
    return f"[{tracing_id}] [caller: {caller}] " if caller else f"[{tracing_id}] "


class TextFormatter(logging.Formatter):
    """The wrapper's text lines, with the request's tracing id (and caller) after the logger name."""

    def __init__(self, caller_name: bool = False) -> None:
        super().__init__(TEXT_FORMAT)
        self.caller_name = caller_name

    def format(self, record: logging.LogRecord) -> str:
        record.fatman_context = context_prefix(self.caller_name)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring for the fields)."""

    def __init__(self, caller_name: bool = False) -> None:
        super().__init__()
        self.caller_name = caller_name

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        body: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "lvl": record.levelname,
            "msg": record.getMessage(),
            "logger": record.name,
        }
        tracing_id = TRACING_ID.get()
        if tracing_id is not None:
            body["tracing_id"] = tracing_id
        if self.caller_name:
            caller = CALLER_NAME.get()
            if caller is not None:
                body["caller_name"] = caller
        access = getattr(record, "fatman_access", None)
        if isinstance(access, dict):
            body.update(access)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            body["cause"] = f"{type(exc).__name__}: {exc}"
            body["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            body["traceback"] = record.exc_text
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return json.dumps(body, default=str)


def make_formatter(structured: bool, caller_name: bool) -> logging.Formatter:
    return JsonFormatter(caller_name) if structured else TextFormatter(caller_name)


def configure(settings: Settings) -> logging.Formatter:
    """Set up the process's logging as ``run`` serves with it: root at INFO on stderr with the
    wrapper's formatter (unless logging was set up before), ``racetrack`` at DEBUG. Returns the
    formatter, for gunicorn's own log lines."""
    formatter = make_formatter(settings.log_structured, settings.log_caller_name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger(RACETRACK_LOGGER).setLevel(logging.DEBUG)
    return formatter


def log_access(method: str, path: str, status: int, seconds: float, quiet: bool) -> None:
    """The access line of one request (``quiet``: at DEBUG, for probes and metrics)."""
    level = logging.DEBUG if quiet else logging.INFO
    if not ACCESS.isEnabledFor(level):
        return
    milliseconds = round(seconds * 1000, 1)
    # A record made directly, not with ACCESS.log: that walks the stack for the caller's file and
    # line (which no access line shows), a third of the line's cost, on every request.
    record = ACCESS.makeRecord(
        ACCESS.name,
        level,
        __file__,
        0,
        "%s %s %d %.1f ms",
        (printable(method, 20), printable(path, 2000), status, milliseconds),
        None,
        extra={
            "fatman_access": {"method": method, "path": path, "status": status, "duration_ms": milliseconds}
        },
    )
    ACCESS.handle(record)
