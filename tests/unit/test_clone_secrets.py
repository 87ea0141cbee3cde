"""A secret env file the repository commits stays out of a clone's image wherever the manifest sits
(audit finding 3: with fatman.yaml at the repository root and ``git.directory: job``, a committed
``job/.env.build`` named by ``secret_build_env_file`` went into the image), and clone and --local agree."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from racetrack_builder.manifest import Manifest
from racetrack_builder.source import open_source
from tests.reporter import Recorded

pytestmark = pytest.mark.usefixtures("hermetic_git")

ENTRY = "class FatmanEntrypoint:\n    def perform(self, x: float) -> float:\n        return x\n"
SECRET = "TOKEN=c0mmitted-s3cret\n"


def _manifest(remote: str, directory: str, **secrets: str) -> Manifest:
    return Manifest.model_validate({
        "name": "adder", "owner_email": "owner@example.com", "lang": "python3",
        "git": {"remote": remote, "directory": directory},
        "python": {"entrypoint_path": "entrypoint.py"}, **secrets,
    })


def _left_out(reported: Recorded, name: str) -> bool:
    return any(m.startswith(f"warning: left out the secret env file(s) {name}") for m in reported.messages)


def test_manifest_at_the_repository_root_outside_any_checkout(
        tmp_path: Path, bare_repo_factory: Callable[..., Path], reported: Recorded) -> None:
    """The auditor's case: the manifest's folder stands for the repository root."""
    remote = bare_repo_factory("job.git", {"job/entrypoint.py": ENTRY, "job/.env.build": SECRET,
                                           "job/.env.build.dist": "TOKEN=\n"})
    manifest_path = tmp_path / "client" / "fatman.yaml"
    manifest_path.parent.mkdir()
    manifest_path.write_text("name: adder\n")
    manifest = _manifest(remote.as_uri(), "job", secret_build_env_file="job/.env.build")
    with open_source(manifest, manifest_path) as src:
        assert src.files == (".env.build.dist", "entrypoint.py")
    assert _left_out(reported, ".env.build")


def test_manifest_in_git_directory_outside_any_checkout(
        tmp_path: Path, bare_repo_factory: Callable[..., Path], reported: Recorded) -> None:
    remote = bare_repo_factory("job.git", {"job/entrypoint.py": ENTRY, "job/.env.runtime": SECRET})
    manifest_path = tmp_path / "client" / "fatman.yaml"
    manifest_path.parent.mkdir()
    manifest_path.write_text("name: adder\n")
    manifest = _manifest(remote.as_uri(), "job", secret_runtime_env_file=".env.runtime")
    with open_source(manifest, manifest_path) as src:
        assert src.files == ("entrypoint.py",)
    assert _left_out(reported, ".env.runtime")


@pytest.mark.parametrize(("manifest_at", "directory", "secret"), [
    ("fatman.yaml", "job", "job/.env.build"),                       # the auditor's layout
    ("job/fatman.yaml", "job", ".env.build"),                       # the usual one
    ("jobs/fatman.yaml", "jobs/adder", "adder/.env.build"),         # neither root nor git.directory
    ("jobs/adder/deploy/fatman.yaml", "jobs/adder", "../.env.build"),  # a '..' inside the job
])
def test_clone_and_local_leave_out_the_same_files(
        git_repo_factory: Callable[..., Path], manifest_at: str, directory: str, secret: str) -> None:
    """The manifest in a checkout of the repository it names: its folder stands for the same folder
    of the clone, so a clone builds from the same files as --local."""
    secret_in_repo = os.path.normpath(os.path.join(os.path.dirname(manifest_at), secret))
    repo = git_repo_factory("work", {
        f"{directory}/entrypoint.py": ENTRY,
        secret_in_repo: SECRET,
        f"{directory}/other.env.build": "NOT=secret\n",
        manifest_at: "name: adder\n",
    })
    manifest = _manifest(str(repo), directory, secret_build_env_file=secret)
    with open_source(manifest, repo / manifest_at, local=True) as local:
        local_files = local.files
    with open_source(manifest, repo / manifest_at) as clone:
        clone_files = clone.files
    assert clone_files == local_files
    job_rel = os.path.relpath(secret_in_repo, directory)
    assert job_rel not in clone_files
    assert "other.env.build" in clone_files and "entrypoint.py" in clone_files


def test_a_secret_file_elsewhere_leaves_the_job_alone(
        tmp_path: Path, bare_repo_factory: Callable[..., Path], reported: Recorded) -> None:
    """An absolute secret path outside the manifest's folder names nothing in the repository."""
    remote = bare_repo_factory("job.git", {"job/entrypoint.py": ENTRY, "job/settings.env.build": "A=1\n"})
    manifest_path = tmp_path / "client" / "fatman.yaml"
    manifest_path.parent.mkdir()
    manifest_path.write_text("name: adder\n")
    manifest = _manifest(remote.as_uri(), "job", secret_build_env_file=str(tmp_path / "elsewhere" / ".env"))
    with open_source(manifest, manifest_path) as src:
        assert src.files == ("entrypoint.py", "settings.env.build")
    assert not _left_out(reported, "")


def test_render_context_of_a_clone_never_holds_the_committed_secret(
        tmp_path: Path, bare_repo_factory: Callable[..., Path]) -> None:
    """End to end: ``render -o`` of a clone, the auditor's layout."""
    text = ("name: adder\nowner_email: owner@example.com\nlang: python3\n"
            "git:\n  remote: {remote}\n  directory: job\npython:\n  entrypoint_path: entrypoint.py\n"
            "secret_build_env_file: job/.env.build\n")
    remote = bare_repo_factory("job.git", {"job/entrypoint.py": ENTRY, "job/.env.build": SECRET})
    client = tmp_path / "client"
    (client / "job").mkdir(parents=True)
    (client / "fatman.yaml").write_text(text.format(remote=remote.as_uri()))
    (client / "job" / ".env.build").write_text("TOKEN=local-value\n")
    out = tmp_path / "ctx"
    env: dict[str, Any] = {**os.environ, "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "racetrack_builder", "render", str(client / "fatman.yaml"),
                             "-o", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["Dockerfile", "job/entrypoint.py"]
    assert "left out the secret env file(s) .env.build" in result.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert "s3cret" not in path.read_text() and "local-value" not in path.read_text()
