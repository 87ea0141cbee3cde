"""The CLI on a machine without git, as on a slim CI image (issue 12): commands that need no git
work; the ones that read the job's source fail with exit 3, naming what to install. Real processes
with a PATH that holds no git (the interpreter is started by its absolute path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXIT_ENVIRONMENT = 3


def run_without_git(*args: str, cwd: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(PATH=str(bin_dir), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "racetrack_builder", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120, check=False)


@pytest.fixture
def no_git(tmp_path: Path) -> Path:
    """A PATH of one empty folder: no git, no git-lfs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return bin_dir


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A job written by `init` into a folder that is no git working tree."""
    folder = tmp_path / "adder"
    folder.mkdir()
    return folder


def test_init_validate_and_schema_work_without_git(job: Path, no_git: Path) -> None:
    made = run_without_git("init", str(job), cwd=job.parent, bin_dir=no_git)
    assert made.returncode == 0, made.stderr
    assert (job / "fatman.yaml").is_file()
    for args in (("validate", str(job / "fatman.yaml")), ("schema",)):
        result = run_without_git(*args, cwd=job, bin_dir=no_git)
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "what"), [
    (("render",), "cloning git.remote needs git"),
    (("render", "--local"), "reading the job's working tree (git ls-files) needs git"),
])
def test_reading_the_source_without_git_is_exit_3_naming_the_install(
    job: Path, no_git: Path, args: tuple[str, ...], what: str
) -> None:
    assert run_without_git("init", str(job), cwd=job.parent, bin_dir=no_git).returncode == 0
    result = run_without_git(*args, str(job / "fatman.yaml"), cwd=job, bin_dir=no_git)
    assert result.returncode == EXIT_ENVIRONMENT, result.stderr
    assert what in result.stderr and "apt-get install git" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Bad git executable" not in result.stderr
