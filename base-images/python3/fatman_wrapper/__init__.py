"""fatman_wrapper: serves a Racetrack python3 job (a class with ``perform``) over HTTP.

``create_app`` builds the Flask app (see ``app.py``); ``fatman-wrapper run`` serves it
with gunicorn (``server.py``). Importing this package has no side effects and imports neither
Flask nor prometheus_client: the server must set up the metrics directory before the latter loads.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so `fatman-wrapper run` can prepare PROMETHEUS_MULTIPROC_DIR before the app's
    # modules import prometheus_client (which reads that variable once, at import).
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'fatman_wrapper' has no attribute {name!r}")
