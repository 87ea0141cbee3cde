"""Helpers shared by the wrapper's tests (a module with a unique name: tests/ is no package)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

JOBS = Path(__file__).parent / "jobs"


def job_path(name: str) -> Path:
    """The folder of a scenario job under tests/jobs/."""
    path = JOBS / name
    assert path.is_dir(), f"no scenario job {name}"
    return path


# Racetrack 2.x's variables the wrapper reads, beside FATMAN_* and JOB_*.
WRAPPER_VARIABLES = frozenset(
    {
        "PROMETHEUS_MULTIPROC_DIR",
        "LOG_STRUCTURED",
        "LOG_CALLER_NAME",
        "REQUEST_TRACING_HEADER",
        "CALLER_NAME_HEADER",
        "GIT_VERSION",
        "DEPLOYED_BY_RACETRACK_VERSION",
        "PUB_URL",
        "AUTH_TOKEN",
    }
)


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a real server subprocess: no inherited FATMAN_*, JOB_*, logging or
    metrics settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FATMAN_", "JOB_")) and k.upper() not in WRAPPER_VARIABLES
    }
    env.update(extra)
    return env


class BufferedClient(FlaskClient):
    """A test client reading every answer whole, so streamed files are closed at once."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)
