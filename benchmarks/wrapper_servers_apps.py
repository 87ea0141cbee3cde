"""The apps wrapper_servers.py serves besides ``fatman-wrapper run`` itself, as granian factories.

* ``raw``: the adder's multiply in plain WSGI and nothing else (``json.loads`` the body, multiply,
  ``json.dumps``): the floor of what a server spends per request.
* ``raw_burn``: the cpu_burn job's call in plain WSGI (``json.loads`` the body, spin until this
  thread has used that much CPU time, answer): the floor for the 50 ms CPU job.
* ``wrapper_flask_only``: the wrapper's app with the job's calls left to Flask (``fast_path=False``),
  to show what the plain-WSGI path saves on the same server.

The bare Flask app is ``wrapper_throughput_bare.create_app``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any


def raw() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """POST /api/v1/perform of the adder in plain WSGI."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length))
        out = json.dumps(float(body["x"]) * float(body["y"])).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]

    return app


def raw_burn() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """POST /api/v1/perform of the cpu_burn job (``{"milliseconds": 50}``) in plain WSGI."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length))
        end = time.thread_time() + float(body["milliseconds"]) / 1000.0
        while time.thread_time() < end:
            pass
        out = json.dumps(float(body["milliseconds"])).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]

    return app


def wrapper_flask_only() -> Any:
    """The wrapper's app over the job in ``FATMAN_BENCH_JOB`` with every request going through Flask."""
    from fatman_wrapper.app import create_app

    return create_app("fatman_entrypoint.py", root=os.environ["FATMAN_BENCH_JOB"], fast_path=False)
