"""The wrapper's two error families.

``ApiError`` is the one exception every HTTP-facing failure becomes: it carries the status code and
knows its JSON shape (``to_dict``), and one Flask error handler turns it into a response.

``JobLoadError`` is raised while finding, importing or initialising the user's entrypoint. It is not
an HTTP error by itself: the app keeps it as the job's state and answers 503 naming it, and the
``check`` command prints it and exits non-zero.
"""

from __future__ import annotations

import re
from typing import Any

# An absolute file path of two or more segments ("/src/fatman/model.pkl"), not the path part of a
# URL ("http://host/x": preceded by "/" or a word character). Summaries keep only its last segment.
# The wrapper's own routes (/api/v1/..., /pub/fatman/..., /pub/job/...) are not file paths and stay whole.
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.:/~-])/(?!api/v1/|pub/fatman/|pub/job/)(?:[^\s/'\"`:;,()\[\]{}<>]+/)+([^\s/'\"`:;,()\[\]{}<>]*)"
)
SUMMARY_LIMIT = 300


def without_paths(text: str) -> str:
    """``text`` with every absolute file path cut to ``.../<last segment>``."""
    return _ABSOLUTE_PATH.sub(lambda m: ".../" + m.group(1), text)


class ApiError(Exception):
    """An error answered to an HTTP client as ``{"error": ..., "type": ...}`` with ``status``.

    ``error_type`` is a short machine-readable name (for user exceptions: their class name);
    ``fields`` lists per-field problems of a request body as ``{"field": ..., "problem": ...}``;
    ``fields_omitted`` counts the problems past the ones listed (see ``signature.MAX_PROBLEMS``);
    ``headers`` are sent with the answer (the ``Allow`` of a 405). ``detail``: the message again
    under Racetrack 2.x's key, for the answers 2.x gives as ``{"detail": ...}`` (422, 429).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "Error",
        fields: list[dict[str, str]] | None = None,
        fields_omitted: int = 0,
        headers: dict[str, str] | None = None,
        detail: bool = False,
    ) -> None:
        super().__init__(message)
        self.detail = detail
        self.status = status
        self.message = message
        self.error_type = error_type
        self.fields = fields or []
        self.fields_omitted = fields_omitted
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        body: dict[str, Any] = {"error": self.message, "type": self.error_type, "status": self.status}
        if self.fields:
            body["fields"] = self.fields
        if self.fields_omitted:
            body["fields_omitted"] = self.fields_omitted
        if self.detail:
            body["detail"] = self.message
        return body


class JobLoadError(Exception):
    """The job cannot be served: its entrypoint is missing, broken, ambiguous or failed to start.

    ``hint`` says how to fix it; ``user_traceback`` holds the user's own traceback when their code
    raised (import or ``__init__``), and is ``None`` when the problem is the job's shape.
    ``public_message``: the message without the text of the user's exception, for answers anyone
    may read (an exception's text can hold a secret: a password in a connection string).
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        user_traceback: str | None = None,
        public_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.user_traceback = user_traceback
        self.public_message = public_message

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message

    def summary(self) -> str:
        """A short reason safe for anyone to read: the message without the user's exception text,
        the hint, the traceback or absolute file paths, at most ``SUMMARY_LIMIT`` characters."""
        text = without_paths(self.public_message or self.message)
        if len(text) > SUMMARY_LIMIT:
            text = text[: SUMMARY_LIMIT - 3] + "..."
        return text
