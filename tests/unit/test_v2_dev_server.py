"""serve's environment for a job.yaml: the image's ENV block (templates/job.Dockerfile.j2), so the
job identity under Racetrack 2.x's names (JOB_NAME, JOB_VERSION) and what the manifest sets for the
wrapper (wrapper_env: job type version, /pub/job prefix, limits, home page)."""

from __future__ import annotations

from pathlib import Path

from racetrack_builder.dev_server import job_environment
from racetrack_builder.job import load_job

JOB_YAML = """\
name: envy
owner_email: owner@example.com
jobtype: python3:2.15.1
version: 1.2.3
git:
  remote: https://git.example.com/envy.git
jobtype_extra:
  entrypoint_path: entry.py
  max_concurrency: 4
  max_concurrency_queue: 8
  home_page: /api/v1/webview/
runtime_env:
  MODE: plain
"""


def test_serve_sets_the_job_yaml_images_variables(tmp_path: Path) -> None:
    (tmp_path / "entry.py").write_text("class Entry:\n    def perform(self) -> int:\n        return 1\n")
    (tmp_path / "job.yaml").write_text(JOB_YAML)
    spec = load_job(tmp_path / "job.yaml", build="no", runtime="required")
    env = job_environment(spec, {"EXTRA": "x"})
    assert (env["JOB_NAME"], env["JOB_VERSION"]) == ("envy", "1.2.3")
    assert (env["FATMAN_NAME"], env["FATMAN_VERSION"]) == ("envy", "1.2.3")
    wrapper_env = dict(spec.manifest.wrapper_env())
    assert wrapper_env, "a job.yaml sets variables for the wrapper"
    # VENV_PACKAGES_PATH names the job's packages: in the image its folder, here this environment's.
    import sysconfig

    wrapper_env["VENV_PACKAGES_PATH"] = sysconfig.get_paths()["purelib"]
    assert {name: env[name] for name in wrapper_env} == wrapper_env
    assert (env["JOB_TYPE_VERSION"], env["FATMAN_PUB_PREFIX"]) == ("2.15.1", "/pub/job")
    assert (env["FATMAN_MAX_CONCURRENCY"], env["FATMAN_MAX_QUEUE"]) == ("4", "8")
    assert env["FATMAN_HOME_PAGE"] == "/api/v1/webview/"
    assert (env["MODE"], env["EXTRA"]) == ("plain", "x")


def test_serve_overrides_win_over_the_wrapper_variables(tmp_path: Path) -> None:
    (tmp_path / "entry.py").write_text("class Entry:\n    def perform(self) -> int:\n        return 1\n")
    (tmp_path / "job.yaml").write_text(JOB_YAML)
    spec = load_job(tmp_path / "job.yaml", build="no", runtime="required")
    assert job_environment(spec, {"FATMAN_MAX_CONCURRENCY": "1"})["FATMAN_MAX_CONCURRENCY"] == "1"
