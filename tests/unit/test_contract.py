"""The image contract written once in contract.py agrees with the base image that provides it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from racetrack_builder import contract

BASE = Path(__file__).resolve().parents[2] / "base-images" / "python3"
DOCKERFILE = (BASE / "Dockerfile").read_text()


def test_the_base_image_creates_the_user_and_folders_jobs_rely_on() -> None:
    assert f"groupadd --gid {contract.GID} {contract.USER}" in DOCKERFILE
    assert f"useradd --uid {contract.UID} --gid {contract.GID}" in DOCKERFILE
    assert f"mkdir -p {contract.JOB_SITE_PACKAGES} {contract.JOB_BIN} {contract.JOB_ROOT}" in DOCKERFILE
    assert f"WORKDIR {contract.JOB_ROOT}\n" in DOCKERFILE
    assert f"USER {contract.USER}\n" in DOCKERFILE
    assert f"EXPOSE {contract.PORT}\n" in DOCKERFILE


def test_the_base_image_environment_puts_the_job_packages_first() -> None:
    env = DOCKERFILE[DOCKERFILE.index("ENV VIRTUAL_ENV="):]
    assert f"VIRTUAL_ENV={contract.WRAPPER_VENV}" in env
    assert f"PATH={contract.JOB_BIN}:{contract.WRAPPER_VENV}/bin:$PATH" in env
    assert f"PYTHONPATH={contract.JOB_SITE_PACKAGES}" in env
    assert re.search(rf"FATMAN_PORT={contract.PORT}\b", env)
    assert f"'{contract.PORT}'" in DOCKERFILE  # the HEALTHCHECK's default port


def test_the_wrapper_script_and_port_are_the_wrappers_own() -> None:
    from fatman_wrapper.config import DEFAULT_PORT

    scripts = tomllib.loads((BASE / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(contract.WRAPPER_SCRIPT).name in scripts
    assert contract.WRAPPER_SCRIPT.startswith(contract.WRAPPER_VENV + "/bin/")
    assert DEFAULT_PORT == contract.PORT
