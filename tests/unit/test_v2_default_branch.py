"""A job.yaml without git.branch (Racetrack 2.x: the remote's default branch): the clone's messages
name the remote's default branch, never "branch None", and --local does not warn about it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from racetrack_builder.manifest import Manifest, parse_manifest
from racetrack_builder.source import open_source
from tests import gitrepos
from tests.reporter import Recorded

pytestmark = pytest.mark.usefixtures("hermetic_git")

JOB_YAML = """\
name: adder
owner_email: owner@example.com
jobtype: python3:latest
git:
  remote: https://git.example.com/adder.git
  directory: jobs/adder
jobtype_extra:
  entrypoint_path: adder.py
"""

FILES = {
    "jobs/adder/job.yaml": JOB_YAML,
    "jobs/adder/adder.py": ("class Adder:\n"
                            "    def perform(self, a: float, b: float) -> float:\n"
                            "        return a + b\n"),
}


def no_branch_manifest(remote: str | None = None) -> Manifest:
    manifest = parse_manifest(JOB_YAML, "job.yaml")
    assert manifest.git.branch is None
    if remote is not None:
        # job.yaml takes https:// remotes only; the test's remote is a file:// one on this machine.
        manifest = manifest.model_copy(update={"git": manifest.git.model_copy(update={"remote": remote})})
    return manifest


def test_clone_without_branch_names_the_remotes_default_branch(
        bare_repo_factory: Callable[..., Path], tmp_path: Path, reported: Recorded) -> None:
    remote = bare_repo_factory("adder.git", FILES, branch="trunk")
    manifest_path = tmp_path / "client" / "job.yaml"
    manifest_path.parent.mkdir()
    manifest_path.write_text(JOB_YAML)
    with open_source(no_branch_manifest(remote.as_uri()), manifest_path) as src:
        assert src.files == ("adder.py", "job.yaml")
        assert src.branch == "trunk"  # the default branch, as the clone named it
        assert src.where == f"{remote.as_uri()}@trunk"
    assert reported.messages[0] == f"cloning {remote.as_uri()} (the remote's default branch)"
    cloned = f"cloned {remote.as_uri()}@trunk (the remote's default branch) at "
    assert reported.messages[1].startswith(cloned), reported.messages
    assert not [m for m in reported.messages if "None" in m], reported.messages
    assert reported.warnings == []


def test_local_without_branch_does_not_warn(git_repo_factory: Callable[..., Path],
                                            reported: Recorded) -> None:
    work = git_repo_factory("work", FILES, branch="feature")
    gitrepos.git("remote", "add", "origin", "https://git.example.com/adder.git", cwd=work)  # never fetched
    with open_source(no_branch_manifest(), work / "jobs/adder/job.yaml", local=True) as src:
        assert src.branch == "feature"
    assert reported.warnings == []
    assert not [m for m in reported.messages if "None" in m], reported.messages
