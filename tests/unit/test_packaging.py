"""A normal (non-editable) install carries the templates and the base image sources."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from racetrack_builder.base_image import context_digest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_finds_its_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("racetrack_build-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # Dependencies come from this test run's environment; PYTHONPATH entries are not site dirs,
    # so the checkout's editable install is not active in the child and cannot shadow the wheel.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    probe = (
        "import racetrack_builder, racetrack_builder.resources as r;"
        "from racetrack_builder.base_image import context_digest as d;"
        "print(racetrack_builder.__file__); print(r.templates_dir()); print(r.base_images_dir());"
        "print(d(r.base_images_dir() / 'python3')); print(d(r.base_images_dir() / 'build-tools'))"
    )
    out = subprocess.run(
        [str(python), "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    ).stdout.splitlines()
    assert all(line.startswith(str(venv)) for line in out[:3]), out
    templates, base_images = Path(out[1]), Path(out[2])
    assert (templates / "job.Dockerfile.j2").is_file()
    assert (base_images / "python3" / "Dockerfile").is_file()
    assert (base_images / "python3" / "fatman_wrapper" / "__main__.py").is_file()
    assert not (base_images / "python3" / "tests").exists(), "the wrapper's tests do not ship"
    # The wheel's image sources are the checkout's: both tag the same base image and tools, so a
    # base published from one is found by builds from the other.
    assert out[3:5] == [context_digest(REPO / "base-images" / "python3"),
                        context_digest(REPO / "base-images" / "build-tools")]
    schema = subprocess.run(
        [str(venv / "bin" / "racetrack-build"), "schema"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert schema.returncode == 0 and '"title": "fatman.yaml"' in schema.stdout
