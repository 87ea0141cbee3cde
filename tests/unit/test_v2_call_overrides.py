"""``call MANIFEST -e KEY=VALUE``: the manifest's overrides apply as they do for every other command,
so the identity ``call`` checks is that of the job ``serve``/``run`` started with the same ``-e``."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from racetrack_builder import call as calling
from racetrack_builder.errors import ManifestError, UsageError

JOB_YAML = """\
name: adder
owner_email: owner@example.com
jobtype: python3:latest
version: 1.0.0
git:
  remote: https://git.example.com/adder.git
jobtype_extra:
  entrypoint_path: adder.py
"""


@pytest.fixture
def job(tmp_path: Path) -> Path:
    (tmp_path / "job.yaml").write_text(JOB_YAML)
    return tmp_path


def test_overrides_change_the_expected_identity(job: Path) -> None:
    plain = calling.resolve_target(str(job / "job.yaml"))
    assert plain.expected == ("adder", "1.0.0")
    target = calling.resolve_target(str(job / "job.yaml"), overrides=["version=2.0.0", "name=adder-dev"])
    assert target.expected == ("adder-dev", "2.0.0")
    assert target.base_url == "http://127.0.0.1:7000"


def test_a_folder_holding_a_job_yaml_is_its_manifest(job: Path) -> None:
    assert calling.resolve_target(str(job), overrides=["version=3.0.0"]).expected == ("adder", "3.0.0")


def test_a_bad_override_is_the_manifests_error(job: Path) -> None:
    with pytest.raises(ManifestError) as info:
        calling.resolve_target(str(job / "job.yaml"), overrides=["version=not-semver"])
    assert "version" in str(info.value)


def test_overrides_need_a_manifest() -> None:
    with pytest.raises(UsageError, match="-e goes with a manifest"):
        calling.resolve_target("http://127.0.0.1:7000", overrides=["version=2.0.0"])


def test_the_call_command_takes_e(job: Path) -> None:
    """Through the CLI: -e is accepted (nothing listens on the port, so the call fails as an
    environment failure, exit 3), and a malformed one is a usage error (exit 2)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "racetrack_builder", "call", str(job / "job.yaml"), "-e", "version=2.0.0",
         "--port", str(port)],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    assert "no such option" not in proc.stderr, proc.stderr
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    bad = subprocess.run(
        [sys.executable, "-m", "racetrack_builder", "call", str(job / "job.yaml"), "-e", "noequals"],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    assert bad.returncode == 2, (bad.returncode, bad.stderr)
