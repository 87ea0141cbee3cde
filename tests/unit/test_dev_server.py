"""serve: the environment checks, the job's environment as in its image, and a real server on
127.0.0.1 (the child process with the wrapper), stopped cleanly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from racetrack_builder import dev_server
from racetrack_builder.dev_child import job_files
from racetrack_builder.dev_server import DevServer, check_port_free, job_environment, plan_serve
from racetrack_builder.errors import EnvironmentFailure, SourceError, UsageError
from racetrack_builder.job import load_job

ENTRY = '''
import os


class Entry:
    def perform(self) -> dict:
        names = ("FATMAN_NAME", "FATMAN_VERSION", "FATMAN_PUBLIC_ENDPOINTS", "MODE", "TOKEN", "EXTRA")
        return {"env": {n: os.environ.get(n) for n in names}, "cwd": os.getcwd(),
                "data": open("./data.txt").read()}
'''

MANIFEST = """\
name: envy
owner_email: owner@example.com
lang: python3:latest
version: 1.2.3
git:
  remote: https://git.example.com/envy.git
python:
  entrypoint_path: entry.py
  requirements_path: requirements.txt
runtime_env:
  MODE: plain
  TOKEN: from-manifest
public_endpoints:
  - /api/v1/perform
secret_runtime_env_file: .env.runtime
"""


@pytest.fixture
def job(tmp_path: Path) -> Path:
    folder = tmp_path / "envy"
    folder.mkdir()
    (folder / "entry.py").write_text(ENTRY)
    (folder / "data.txt").write_text("hello")
    (folder / "fatman.yaml").write_text(MANIFEST)
    (folder / "requirements.txt").write_text("# none yet\nclick>=1\n")
    (folder / ".env.runtime").write_text("TOKEN=s3cret-runtime\n")
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spec_of(job: Path):  # noqa: ANN201
    return load_job(job / "fatman.yaml", build="no", runtime="required")


def test_the_job_environment_is_the_images(job: Path) -> None:
    env = job_environment(spec_of(job), {"EXTRA": "x"})
    assert env["FATMAN_NAME"] == "envy" and env["FATMAN_VERSION"] == "1.2.3"
    assert env["FATMAN_PUBLIC_ENDPOINTS"] == "/api/v1/perform"
    assert (env["MODE"], env["TOKEN"], env["EXTRA"]) == ("plain", "s3cret-runtime", "x")  # secrets win
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_the_job_root_is_git_directory_of_the_working_tree(job: Path, hermetic_git: None) -> None:
    repo = job.parent
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    with pytest.raises(SourceError, match="python.entrypoint_path: entry.py is not in"):
        plan_serve(spec_of(job), port=free_port(), reload=False, overrides={})  # root: the repo's top
    (job / "fatman.yaml").write_text(MANIFEST.replace("  remote:", "  directory: envy\n  remote:"))
    plan = plan_serve(spec_of(job), port=free_port(), reload=False, overrides={})
    assert plan.job_root == job.resolve()
    assert plan.environment["GIT_VERSION"] == ""  # no commit yet: /health says null, as an image would


def test_git_version_is_the_commit_marked_dirty_while_the_jobs_files_change(
    job: Path, hermetic_git: None
) -> None:
    repo = job.parent
    (job / "fatman.yaml").write_text(MANIFEST.replace("  remote:", "  directory: envy\n  remote:"))
    commit = ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x"]
    for args in (["init", "-q"], ["add", "-A"], commit):
        subprocess.run(["git", *args], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()
    env = plan_serve(spec_of(job), port=free_port(), reload=False, overrides={}).environment
    assert env["GIT_VERSION"] == head
    (job / "entry.py").write_text((job / "entry.py").read_text() + "\n# edited\n")
    env = plan_serve(spec_of(job), port=free_port(), reload=False, overrides={}).environment
    assert env["GIT_VERSION"] == f"{head}-dirty"
    overridden = plan_serve(spec_of(job), port=free_port(), reload=False, overrides={"GIT_VERSION": "v9"})
    assert overridden.environment["GIT_VERSION"] == "v9"  # --env wins


def test_missing_requirements_are_named(job: Path) -> None:
    (job / "requirements.txt").write_text(
        "-r more.txt\nclick>=1\nclick<1 ; python_version < '3'\n")  # a marker that does not apply
    (job / "more.txt").write_text("definitely-not-installed-pkg==1.0\nclick==0.1\n--index-url https://x\n")
    with pytest.raises(EnvironmentFailure) as err:
        plan_serve(spec_of(job), port=free_port(), reload=False, overrides={})
    message = err.value.message
    assert "definitely-not-installed-pkg==1.0 (not installed)" in message
    import importlib.metadata

    assert f"click==0.1 ({importlib.metadata.version('click')} installed)" in message
    assert "click>=1" not in message and "click<1" not in message
    assert err.value.exit_code == 3 and "-m pip install -r" in (err.value.hint or "")


def test_a_missing_server_stack_names_the_install(monkeypatch: pytest.MonkeyPatch, job: Path) -> None:
    monkeypatch.setitem(dev_server.SERVER_MODULES, "no_such_module_here", "No-Such-Dist")
    with pytest.raises(EnvironmentFailure, match="lacks No-Such-Dist") as err:
        plan_serve(spec_of(job), port=free_port(), reload=False, overrides={})
    hint = err.value.hint or ""
    assert f"{sys.executable} -m pip install" in hint and "'flask" in hint.lower()
    assert "racetrack-build[serve]" in hint


def test_the_serve_extra_is_what_the_hint_installs() -> None:
    names = {r.split(">")[0].split("<")[0].split("=")[0].lower() for r in dev_server.serve_requirements()}
    assert {"flask", "werkzeug", "prometheus-client", "swagger-ui-bundle", "packaging"} <= names


def test_a_busy_port_is_an_environment_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(EnvironmentFailure, match="is in use") as err:
            check_port_free(sock.getsockname()[1])
    assert err.value.exit_code == 3


def test_the_wrapper_comes_from_the_packaged_sources_when_not_installed(
        monkeypatch: pytest.MonkeyPatch, job: Path) -> None:
    real = dev_server.importlib.util.find_spec
    monkeypatch.setattr(dev_server.importlib.util, "find_spec",
                        lambda name: None if name == "fatman_wrapper" else real(name))
    plan = plan_serve(spec_of(job), port=free_port(), reload=True, overrides={},
                      base_environ={"PYTHONPATH": "/mine"})
    assert plan.environment["PYTHONPATH"].split(os.pathsep)[0] == "/mine"
    assert (Path(plan.environment["PYTHONPATH"].split(os.pathsep)[1]) / "fatman_wrapper" / "app.py").is_file()
    assert "--reload" in plan.command and str(job / "fatman.yaml") in plan.command  # --ignore MANIFEST


def test_watched_files_skip_caches_and_virtual_environments(tmp_path: Path) -> None:
    for rel in ("a.py", "static/index.html", ".git/config", "__pycache__/a.pyc", "env/pyvenv.cfg",
                "env/lib/x.py", "node_modules/m.js", "fatman.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    watched = job_files(str(tmp_path), [str(tmp_path / "fatman.yaml")])
    found = {Path(p).relative_to(tmp_path).as_posix() for p in watched}
    assert found == {"a.py", "static/index.html"}


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_a_real_server_serves_the_job_as_its_image_would(job: Path) -> None:
    """Without FATMAN_PORT as a user setting, under both prefixes, in the job's root, then stopped."""
    port = free_port()
    plan = plan_serve(spec_of(job), port=port, reload=False, overrides={"EXTRA": "given"})
    server = DevServer(plan)
    with server:
        server.wait_listening(timeout=30)
        status, body = get(f"{plan.url}/pub/fatman/envy/1.2.3/api/v1/perform")
        assert status == 405  # served under the gateway prefix too (perform takes POST)
        request = urllib.request.Request(f"{plan.url}/api/v1/perform", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    assert answer["env"] == {"FATMAN_NAME": "envy", "FATMAN_VERSION": "1.2.3",
                             "FATMAN_PUBLIC_ENDPOINTS": "/api/v1/perform", "MODE": "plain",
                             "TOKEN": "s3cret-runtime", "EXTRA": "given"}
    assert Path(answer["cwd"]) == job.resolve() and answer["data"] == "hello"
    assert not server.running()
    check_port_free(port)  # nothing left behind


def test_reserved_env_names_are_refused_by_the_command(job: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "racetrack_builder", "serve", str(job / "fatman.yaml"),
                             "--env", "FATMAN_NAME=x"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 2 and "--env FATMAN_NAME is set by the image" in result.stderr
    for bad in ("1BAD=x", "A-B=x"):  # runtime_env's rule for names, found missing by a new user
        refused = subprocess.run(
            [sys.executable, "-m", "racetrack_builder", "serve", str(job / "fatman.yaml"), "--env", bad],
            capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"},
        )
        assert refused.returncode == 2 and "is not a valid environment variable name" in refused.stderr
    assert UsageError.exit_code == 2
