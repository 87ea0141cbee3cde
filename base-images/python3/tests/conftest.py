"""Shared fixtures: scenario job folders under tests/jobs/ and apps built from them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest
from flask import Flask
from wrapper_support import BufferedClient, job_path

from fatman_wrapper import create_app
from fatman_wrapper.config import Settings


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Flask]:
    """Build the app of a scenario job, working directory in its root as the server would set it."""

    def make(job: str, class_name: str | None = None, root: Path | None = None, **settings: object) -> Flask:
        job_root = root or job_path(job)
        monkeypatch.chdir(job_root)
        app = create_app("fatman_entrypoint.py", class_name, root=job_root, settings=Settings(**settings))
        app.test_client_class = BufferedClient
        return app

    return make


@pytest.fixture
def copied_job(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a scenario job into a temporary folder (for tests that add files or symlinks)."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(job_path(name), target, ignore=shutil.ignore_patterns("__pycache__"))
        return target

    return copy
