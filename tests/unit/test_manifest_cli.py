"""The command line with job.yaml: a folder's manifest, -e on the commands, schema per format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_cli import run_cli

JOB = """\
name: adder
owner_email: owner@example.com
jobtype: python3:latest
version: 1.0.0
git:
  remote: https://github.com/example/adder
jobtype_extra:
  entrypoint_path: adder.py
"""
FATMAN = """\
name: adder
owner_email: owner@example.com
lang: python3:latest
git:
  remote: https://github.com/example/adder
python:
  entrypoint_path: adder.py
"""


def test_validate_finds_the_job_yaml_of_a_folder_and_takes_overrides(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(JOB)
    result = run_cli("validate", str(tmp_path), "-e", "version=2.0.0", "--extra-vars", "name=sub")
    assert result.returncode == 0, result.stderr
    summary = f"{tmp_path / 'job.yaml'}: valid: sub 2.0.0 (python3:latest, Python 3.11), entrypoint adder.py"
    assert summary in result.stderr


def test_a_folder_with_both_manifests_is_a_usage_error_naming_both(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(JOB)
    (tmp_path / "fatman.yaml").write_text(FATMAN)
    for command in ("validate", "render", "build", "serve"):
        result = run_cli(command, str(tmp_path))
        assert result.returncode == 2, (command, result.stderr)
        assert f"holds both {tmp_path / 'job.yaml'} and {tmp_path / 'fatman.yaml'}" in result.stderr


def test_a_bad_override_value_is_reported_against_the_override(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(JOB)
    result = run_cli("validate", str(tmp_path / "job.yaml"), "-e", "replicas=99", "--json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    message = "is 99 (Racetrack 2.x allows at most 50 replicas)"
    assert document["problems"] == [
        {"field": "replicas", "message": message, "line": None, "column": None, "source": "-e replicas=99"}]
    text = run_cli("validate", str(tmp_path / "job.yaml"), "-e", "replicas=99")
    assert "-e replicas=99: replicas: is 99 (Racetrack 2.x allows at most 50 replicas)" in text.stderr


def test_a_malformed_override_stops_the_command(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(JOB)
    result = run_cli("validate", str(tmp_path), "-e", "version")
    assert result.returncode == 2
    assert "-e 'version' has no '='" in result.stderr


def test_deprecation_warnings_are_printed(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(JOB.replace("jobtype:", "lang:"))
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 0, result.stderr
    warning = f"{tmp_path / 'job.yaml'}:3:1: lang: is deprecated. Use jobtype: instead."
    assert warning in result.stderr
    (tmp_path / "job.yaml").write_text(JOB.replace("jobtype: python3:latest", "lang: python3:2.15.1"))
    summary = json.loads(run_cli("validate", str(tmp_path), "--json").stdout)  # --json carries it too
    assert summary["warnings"] == [warning] and summary["problems"] == []
    assert summary["job_type"] == summary["lang"] == "python3:2.15.1", summary  # as written, not the base's


@pytest.mark.parametrize("args, title", [
    ((), "fatman.yaml"),
    (("--format", "job"), "job.yaml"),
    (("--format", "fatman"), "fatman.yaml"),
    (("services/x/job.yaml",), "job.yaml"),
    (("fatman.yaml",), "fatman.yaml"),
])
def test_schema_per_format(args: tuple[str, ...], title: str) -> None:
    result = run_cli("schema", *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["title"] == title


def test_schema_of_a_folder_and_a_disagreement(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(JOB)
    assert json.loads(run_cli("schema", str(tmp_path)).stdout)["title"] == "job.yaml"
    result = run_cli("schema", "--format", "fatman", "job.yaml")
    assert result.returncode == 2
    assert "--format fatman and job.yaml (job.yaml) disagree" in result.stderr


def test_validate_names_the_jobtype_as_written_and_the_python(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        "name: typed\nowner_email: a@example.com\njobtype: python3:2.15.*\n"
        "git:\n  remote: https://github.com/example/adder\n"
        "jobtype_extra:\n  entrypoint_path: adder.py\n  python_version: '3.9'\n"
    )
    result = run_cli("validate", str(tmp_path / "job.yaml"))
    assert result.returncode == 0, result.stderr
    assert "(python3:2.15.*, Python 3.9)" in result.stderr
    report = json.loads(run_cli("validate", str(tmp_path / "job.yaml"), "--json").stdout)
    assert (report["job_type"], report["python_version"]) == ("python3:2.15.*", "3.9")
