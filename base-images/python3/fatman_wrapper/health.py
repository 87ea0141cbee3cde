"""The bodies of ``/health`` and ``/live``: the wrapper's own fields and Racetrack 2.x's beside them.

``/health`` keeps its fields (``status``: ``ready``/``starting``/``failed``, ``name``, ``version``,
``wrapper_version``, ``entrypoint_class``, and ``type``/``error`` after a failure) and adds the
Racetrack fields: ``service`` (``"fatman"`` with ``fatman_name`` and ``fatman_version``, as the
fatman era's images answer; ``"job"`` with Racetrack 2.x's answers), and 2.x's
``job_name``, ``job_version``, ``live``, ``ready``, ``job_type_version``,
``git_version``, ``deployed_by_racetrack_version`` and ``deployment_timestamp``. 2.x's
``status: pass/fail`` is taken over only with Racetrack 2.x's answers (``FATMAN_CONTRACT=2``, set
by job.yaml images): then ``status`` is ``pass`` (live and ready) or ``fail``, and ``error`` is null or
the name of the failure's type (``FileNotFoundError`` for an ``__init__`` that raised it, never its
text: the probes answer anyone, and the text can hold a secret); the short reason stays in ``/ready``.
Otherwise ``status`` keeps its meaning here, and ``ready`` says the same.
``job_type_version`` is ``JOB_TYPE_VERSION`` (set by the image), else the wrapper's own version (the
job type is this base image's wrapper); the other 2.x values are null while unset.

``/live`` answers ``{"status": "alive"}``; when the infrastructure sets ``JOB_DEPLOYMENT_TIMESTAMP``
(Racetrack 2.x does, and waits for ``/live`` to report it after a deployment) it adds ``live: true``
and ``deployment_timestamp``. With Racetrack 2.x's answers (``FATMAN_CONTRACT=2``) the body always
has ``live`` and ``deployment_timestamp`` (null while unset), and a job that failed to load makes it
500 ``{"live": false, ..., "error": <type name>}``, as 2.x's deployment waits on it: a job whose
``__init__`` raised is not live there. The fatman era kept ``/live`` 200 for as long as the server
answers, and so does this wrapper outside 2.x.
"""

from __future__ import annotations

from typing import Any

from . import __version__
from .config import Settings
from .errors import JobLoadError
from .loader import Job


def _timestamp(raw: str) -> int | str | None:
    if not raw:
        return None
    return int(raw) if raw.isdigit() else raw


def error_type(error: JobLoadError) -> str:
    """The type name of what made the job fail to load: the user's exception (``ImportError``,
    ``FileNotFoundError``...) when one did, else ``JobLoadError`` (no class, a bad signature)."""
    cause = error.__cause__
    return type(cause).__name__ if cause is not None else type(error).__name__


def health_body(
    status: dict[str, Any], job: Job | None, settings: Settings, error: JobLoadError | None = None
) -> dict[str, Any]:
    """``status`` (``JobHolder.status()``) with every field of ``/health``; ``error``: the load
    failure, named by its type in Racetrack 2.x's ``error`` (``settings.v2``)."""
    body = dict(status)
    if settings.v2:
        body["status"] = "pass" if job is not None else "fail"
        body["error"] = error_type(error) if error is not None else None
    body.update(
        name=settings.name or None,
        version=settings.version or None,
        wrapper_version=__version__,
        entrypoint_class=job.class_name if job else None,
        service="job" if settings.v2 else "fatman",
        job_name=settings.name or None,
        job_version=settings.version or None,
        # Racetrack 2.x: a job whose load failed is not live (its /live is 500 too).
        live=not (settings.v2 and error is not None),
        ready=job is not None,
        job_type_version=settings.job_type_version or __version__,
        git_version=settings.git_version or None,
        deployed_by_racetrack_version=settings.deployed_by_racetrack_version or None,
        deployment_timestamp=_timestamp(settings.deployment_timestamp),
    )
    if not settings.v2:
        body.update(fatman_name=settings.name or None, fatman_version=settings.version or None)
    return body


def live_body(settings: Settings, error: JobLoadError | None = None) -> tuple[dict[str, Any], int]:
    """The body of ``/live`` and its status code; ``error``: the load failure, if the job failed."""
    body: dict[str, Any] = {"status": "alive"}
    if settings.v2:
        if error is not None:
            return {"live": False, "error": error_type(error),
                    "deployment_timestamp": _timestamp(settings.deployment_timestamp)}, 500
        body.update(live=True, deployment_timestamp=_timestamp(settings.deployment_timestamp))
    elif settings.deployment_timestamp:
        body.update(live=True, deployment_timestamp=_timestamp(settings.deployment_timestamp))
    return body, 200
