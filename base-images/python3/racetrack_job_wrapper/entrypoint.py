"""``JobEntrypoint``: the optional base class of a Racetrack 2.x job, with every optional method.

Subclassing it is optional (the wrapper takes any class with ``perform``); its defaults mean "none":
no auxiliary or static endpoints, no webview, no metrics, no docs examples. ``request_context`` and
``request_extra`` are set on the instance by the wrapper after ``__init__``.
"""

from __future__ import annotations

import contextvars
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, Callable

# A WSGI application: (environ, start_response) -> body chunks.
WsgiApplication = Callable[[Mapping[str, object], Callable[..., Any]], Iterable[bytes]]


class JobEntrypoint(ABC):
    """Racetrack 2.x's entrypoint base class."""

    request_context: contextvars.ContextVar[Any]
    request_extra: contextvars.ContextVar[dict[str, Any]]

    @abstractmethod
    def perform(self, **kwargs: Any) -> Any:
        """Call the job's main action."""
        raise NotImplementedError()

    def webview_app(self, base_url: str) -> WsgiApplication | None:
        """A WSGI app serving custom UI pages under ``base_url``; none by default."""
        return None

    def docs_input_examples(self) -> dict[str, dict[str, Any]]:
        """Example inputs per endpoint path (``/perform``, auxiliary ones)."""
        return {}

    def docs_input_example(self) -> dict[str, Any]:
        """Example input of ``/perform``."""
        return {}

    def auxiliary_endpoints(self) -> dict[str, Callable[..., Any]]:
        """Endpoint paths (besides ``/perform``) mapped to the methods answering them."""
        return {}

    def static_endpoints(self) -> dict[str, tuple[str, str] | str]:
        """Endpoint paths mapped to a file (or ``(file, mimetype)``) to serve."""
        return {}

    def metrics(self) -> list[dict[str, Any]]:
        """Current values of the job's own Prometheus gauges."""
        return []
