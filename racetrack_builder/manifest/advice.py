"""Advice on a valid manifest: things it allows that are probably not what its author meant.

Not problems (the manifest is valid and builds); warnings the CLI shows through
:func:`racetrack_builder.reporting.warn` when it validates a manifest.

``public_endpoints`` is matched by the python3 wrapper (``fatman_wrapper/auth.py``, whose module
docstring is the reference): an endpoint opens that exact path and every path under it among the
job's own paths (``/api/v1/...`` and ``/webview/static/...``), while the wrapper's own pages
(``/docs``, ``/openapi.json``, ``/metrics``) open only when named. So ``/``, ``/api`` and
``/api/v1`` open every endpoint of the job, and a path such as ``/perform`` opens nothing.
"""

from __future__ import annotations

from .model import Manifest

API = "/api/v1"
# The job's own paths and the wrapper's pages a public endpoint can open (see the module docstring).
_SERVED = (API, "/webview/static", "/docs", "/openapi.json", "/metrics")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def public_endpoint_advice(endpoint: str) -> str | None:
    """A warning about one public endpoint (as written in the manifest), or None when it is fine."""
    path = endpoint.rstrip("/")
    if path == "" or _under(API, path):
        return (
            f"public_endpoints: {endpoint!r} opens every endpoint of the job (perform, parameters and "
            "every auxiliary, static and webview endpoint) to anyone without a token; list only "
            f"the endpoints to open, e.g. '{API}/perform' (/docs, /openapi.json and /metrics stay "
            "guarded unless listed themselves)"
        )
    if not any(_under(path, served) for served in _SERVED):
        return (
            f"public_endpoints: {endpoint!r} opens nothing: the job's endpoints are under {API}/ "
            f"(did you mean '{API}{path}'?) and its static/ folder at /webview/static"
        )
    return None


def manifest_advice(manifest: Manifest) -> list[str]:
    """Warnings about a validated manifest, in the order of its fields; empty when there are none.

    First those found while reading it (a job.yaml's deprecated fields, located).
    """
    warnings = list(manifest.notices)
    for endpoint in manifest.public_endpoints:
        advice = public_endpoint_advice(endpoint)
        if advice is not None:
            warnings.append(advice)
    return warnings
