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


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a real server subprocess: no inherited FATMAN_* or metrics settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FATMAN_") and k.upper() != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(extra)
    return env


class BufferedClient(FlaskClient):
    """A test client reading every answer whole, so streamed files are closed at once."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)
