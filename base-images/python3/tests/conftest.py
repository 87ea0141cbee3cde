"""Shared fixtures: scenario job folders under tests/jobs/ and apps built from them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest
from flask import Flask

from fatman_wrapper import create_app
from fatman_wrapper.config import Settings

JOBS = Path(__file__).parent / "jobs"


def job_path(name: str) -> Path:
    """The folder of a scenario job."""
    path = JOBS / name
    assert path.is_dir(), f"no scenario job {name}"
    return path


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Flask]:
    """Build the app of a scenario job, working directory in its root as the server would set it."""

    def make(job: str, class_name: Optional[str] = None, root: Optional[Path] = None,
             **settings: object) -> Flask:
        job_root = root or job_path(job)
        monkeypatch.chdir(job_root)
        return create_app("fatman_entrypoint.py", class_name, root=job_root, settings=Settings(**settings))

    return make


@pytest.fixture
def copied_job(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a scenario job into a temporary folder (for tests that add files or symlinks)."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(job_path(name), target, ignore=shutil.ignore_patterns("__pycache__"))
        return target

    return copy


def server_env(**extra: str) -> Dict[str, str]:
    """The environment for a real server subprocess: no inherited FATMAN_* or metrics settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FATMAN_") and k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(extra)
    return env
