"""The switch between the eras' answers: an image built from a job.yaml sets FATMAN_CONTRACT=2 (the
wrapper then answers as Racetrack 2.x: 307 for "/", 400 for a ValueError, /health pass/fail and 500),
one built from a fatman.yaml sets nothing (the fatman era's answers, unchanged). Fast: no Docker."""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_builder.errors import ManifestError
from racetrack_builder.manifest import parse_manifest
from racetrack_builder.render import RenderOptions, render_dockerfile
from racetrack_builder.source import JobSource

JOB_YAML = """\
name: adder
owner_email: owner@example.com
jobtype: python3:2.15.1
git:
  remote: https://github.com/example/adder
jobtype_extra:
  entrypoint_path: entrypoint.py
"""
FATMAN_YAML = """\
name: adder
owner_email: owner@example.com
lang: python3:latest
git:
  remote: https://github.com/example/adder
  branch: main
python:
  entrypoint_path: entrypoint.py
"""


def _source(root: Path) -> JobSource:
    (root / "entrypoint.py").write_text("class E:\n    def perform(self, x: float) -> float:\n"
                                        "        return x\n")
    return JobSource(repo_root=root, job_root=root, files=("entrypoint.py",), commit="0" * 40,
                     remote="https://github.com/example/adder", branch="main", dirty=False)


def test_a_job_yaml_sets_the_switch() -> None:
    env = dict(parse_manifest(JOB_YAML, "job.yaml").wrapper_env())
    assert env["FATMAN_CONTRACT"] == "2"


def test_a_fatman_yaml_does_not() -> None:
    manifest = parse_manifest(FATMAN_YAML, "fatman.yaml")
    assert "FATMAN_CONTRACT" not in dict(manifest.wrapper_env())


def test_only_the_job_yaml_image_carries_it(tmp_path: Path) -> None:
    source, options = _source(tmp_path), RenderOptions(manifest_file="manifest")
    job_dockerfile = render_dockerfile(parse_manifest(JOB_YAML, "job.yaml"), source, options)
    fatman_dockerfile = render_dockerfile(parse_manifest(FATMAN_YAML, "fatman.yaml"), source, options)
    assert 'FATMAN_CONTRACT="2"' in job_dockerfile or "FATMAN_CONTRACT=2" in job_dockerfile
    assert "FATMAN_CONTRACT" not in fatman_dockerfile


def test_runtime_env_of_a_job_yaml_cannot_set_it() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(JOB_YAML + "runtime_env:\n  FATMAN_CONTRACT: '1'\n", "job.yaml")
    problems = [p.format(caught.value.filename) for p in caught.value.problems]
    assert problems == ["job.yaml:9:3: runtime_env.FATMAN_CONTRACT: 'FATMAN_CONTRACT' is set by the image "
                        "of a job.yaml (choose another name)"]
