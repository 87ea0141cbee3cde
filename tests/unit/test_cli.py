"""The command line: command shape, output styles and exit codes (0 ok, 1 build, 2 input, 3 environment)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from racetrack_builder.cli import main

ENTRY = "class FatmanEntrypoint:\n    def perform(self, x: float, y: float) -> float:\n        return x + y\n"
MANIFEST = """\
name: adder
owner_email: owner@example.com
lang: python3:latest
git:
  remote: {remote}
  directory: {directory}
python:
  entrypoint_path: entrypoint.py
  requirements_path: requirements.txt
secret_build_env_file: .env.build
"""


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The console script's code path in a real process: exit codes and streams as users see them."""
    import os

    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "racetrack_builder", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def job_repo(git_repo_factory, tmp_path: Path) -> Path:
    """A repository holding a job in jobs/adder with its manifest beside it, and a remote clone of it."""
    repo = git_repo_factory(
        "work",
        {
            "jobs/adder/entrypoint.py": ENTRY,
            "jobs/adder/requirements.txt": "idna\n",
            "jobs/adder/.env.build.dist": "INDEX_TOKEN=\n",
            "jobs/adder/fatman.yaml": MANIFEST.format(remote=tmp_path / "work", directory="jobs/adder"),
            ".gitignore": ".env.build\n",
        },
    )
    (repo / "jobs/adder/.env.build").write_text('INDEX_TOKEN="s3cret-value"\n')
    return repo


def test_validate_prints_a_summary_and_exits_0(job_repo: Path) -> None:
    result = run_cli("validate", str(job_repo / "jobs/adder/fatman.yaml"))
    assert result.returncode == 0, result.stderr
    assert "valid: adder 0.0.1 (python3:latest, Python 3.11)" in result.stderr


def test_validate_lists_every_problem_with_positions_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "fatman.yaml"
    bad.write_text(
        "name: Bad Name\nowner_email: nope\nlang: golang\n"
        "git:\n  remote: x\npython:\n  entrypoint_pth: a.py\n"
    )
    result = run_cli("validate", str(bad))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: ")
    assert any(line.startswith(f"{bad}:1:7: name: ") for line in lines), result.stderr
    assert any(": lang: " in line and "python3" in line for line in lines), result.stderr
    assert any("entrypoint_pth" in line and "did you mean 'entrypoint_path'" in line for line in lines), (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_validate_json_is_machine_readable(tmp_path: Path) -> None:
    bad = tmp_path / "fatman.yaml"
    bad.write_text("name: ok-name\n")
    result = run_cli("validate", "--json", str(bad))
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert {p["field"] for p in report["problems"]} >= {"owner_email", "lang", "git", "python"}


def test_validate_json_names_the_secret_files_a_pipeline_writes(tmp_path: Path) -> None:
    good = tmp_path / "fatman.yaml"
    good.write_text(MANIFEST.format(remote="https://git.example.com/adder.git", directory="."))
    result = run_cli("validate", "--json", str(good))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["secret_build_env_file"], report["secret_runtime_env_file"]) == (".env.build", None)


def test_a_failed_build_with_json_still_prints_a_document(tmp_path: Path) -> None:
    """Pipelines parse stdout of `build --json` whatever happened; stderr keeps the human report."""
    bad = tmp_path / "fatman.yaml"
    bad.write_text("name: ok-name\n")
    result = run_cli("build", str(bad), "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["exit_code"] == 2
    assert report["error"] == "ManifestError"
    assert {p["field"] for p in report["problems"]} >= {"owner_email", "lang", "git", "python"}
    assert "owner_email" in result.stderr


def test_run_refuses_to_override_what_the_image_sets() -> None:
    result = run_cli("run", "some-image:1", "--env", "PUB_URL=http://x")
    assert result.returncode == 2
    assert "--env PUB_URL is set by the image" in result.stderr


def test_missing_manifest_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_unknown_option_is_a_usage_error() -> None:
    result = run_cli("validate", "--bogus", "x.yaml")
    assert result.returncode == 2
    assert "No such option" in result.stderr
    assert result.stdout == ""  # no --json: nothing for a pipeline on stdout


@pytest.mark.parametrize("command", ["build", "validate"])
def test_options_refused_before_a_json_command_runs_still_give_a_document(command: str) -> None:
    result = run_cli(command, "fatman.yaml", "--json", "--smoke-tests")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert (report["ok"], report["exit_code"], report["error"]) == (False, 2, "UsageError")
    assert "No such option '--smoke-tests'" in report["message"]
    assert report["hint"] == f"see racetrack-build {command} --help"
    assert "No such option" in result.stderr  # the human report is unchanged


def test_json_after_a_double_dash_is_not_an_option() -> None:
    result = run_cli("validate", "--bogus", "--", "--json")
    assert result.returncode == 2 and result.stdout == ""


def test_schema_is_json_schema() -> None:
    result = run_cli("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert "json-schema.org" in schema["$schema"]
    assert "name" in schema["properties"] and "git" in schema["properties"]


def test_render_prints_the_dockerfile_from_a_clone_with_secret_names_only(job_repo: Path) -> None:
    result = run_cli("render", str(job_repo / "jobs/adder/fatman.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Generated by racetrack-build")
    assert "--mount=type=secret,id=racetrack-build-env" in result.stdout
    assert "INDEX_TOKEN" not in result.stdout
    assert "s3cret-value" not in result.stdout + result.stderr


def test_render_output_folder_is_a_complete_context_without_secrets(job_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    result = run_cli("render", str(job_repo / "jobs/adder/fatman.yaml"), "--local", "-o", str(out))
    assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        "Dockerfile",
        "job/.env.build.dist",
        "job/entrypoint.py",
        "job/fatman.yaml",
        "job/requirements.txt",
        "racetrack-install/job/requirements.txt",
        "racetrack-install/plan.json",
    ]
    secret_file = job_repo / "jobs/adder/.env.build"
    assert f"--secret id=racetrack-build-env,src={secret_file}" in result.stderr
    assert "BuildKit reads them from .env.build as a secret" in result.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert "s3cret-value" not in path.read_text()


def test_bare_manifest_argument_means_build_and_an_absent_engine_exits_3(job_repo: Path) -> None:
    result = run_cli(
        str(job_repo / "jobs/adder/fatman.yaml"),
        "--local",
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert result.returncode == 3, result.stderr
    assert "no Docker engine answers" in result.stderr
    assert "DOCKER_HOST" in result.stderr


def test_missing_secret_file_points_to_the_template(job_repo: Path, tmp_path: Path) -> None:
    (job_repo / "jobs/adder/.env.build").unlink()
    manifest = str(job_repo / "jobs/adder/fatman.yaml")
    result = run_cli("build", manifest, "--local")
    assert result.returncode == 2
    assert ".env.build.dist" in result.stderr
    # render writes a context for another builder, which is given the file: it need not be here.
    rendered = run_cli("render", manifest, "--local", "-o", str(tmp_path / "ctx"))
    assert rendered.returncode == 0, rendered.stderr
    assert "'.env.build' does not exist here; a build will need it" in rendered.stderr
    assert ".env.build.dist" in rendered.stderr
    assert f"--secret id=racetrack-build-env,src={job_repo / 'jobs/adder/.env.build'}" in rendered.stderr
    assert "--mount=type=secret,id=racetrack-build-env" in (tmp_path / "ctx" / "Dockerfile").read_text()


def test_validate_passes_without_the_secret_file_but_warns_what_will_need_it(job_repo: Path) -> None:
    (job_repo / "jobs/adder/.env.build").unlink()
    result = run_cli("validate", str(job_repo / "jobs/adder/fatman.yaml"))
    assert result.returncode == 0, result.stderr
    warning = "Warning: secret_build_env_file: '.env.build' does not exist here; a build will need it"
    assert warning in result.stderr
    assert ".env.build.dist" in result.stderr


def test_missing_branch_exits_2_and_unreachable_remote_exits_3(job_repo: Path, tmp_path: Path) -> None:
    manifest = job_repo / "jobs/adder/fatman.yaml"
    manifest.write_text(manifest.read_text().replace("  directory:", "  branch: nope\n  directory:"))
    result = run_cli("render", str(manifest))
    assert result.returncode == 2, result.stderr
    assert "nope" in result.stderr
    manifest.write_text(MANIFEST.format(remote="http://127.0.0.1:9/none.git", directory="jobs/adder"))
    result = run_cli("render", str(manifest))
    assert result.returncode == 3, result.stderr


def test_plain_output_when_not_a_tty_has_no_escape_codes(job_repo: Path) -> None:
    result = run_cli("render", str(job_repo / "jobs/adder/fatman.yaml"), "--local", env={"NO_COLOR": ""})
    assert "\x1b[" not in result.stderr + result.stdout


def test_main_maps_errors_to_exit_codes_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "fatman.yaml"
    bad.write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(bad)])
    assert exc.value.code == 2
    assert "empty" in capsys.readouterr().err


def test_the_cli_names_the_manifest_formats_the_manifest_package_knows() -> None:
    from racetrack_builder.cli import _FORMATS
    from racetrack_builder.manifest.formats import FORMATS

    assert tuple(_FORMATS.choices) == FORMATS
