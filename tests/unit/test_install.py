"""The install step's host side (install.py): its cache key, what it hands the container, what it
reuses, and how a failed install is reported."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from racetrack_builder.contract import DIAGNOSIS_MARKER
from racetrack_builder.engine import CommitResult, CommitRun
from racetrack_builder.errors import AuthenticationRefused, BuildFailed
from racetrack_builder.failures import install_failure
from racetrack_builder.install import (
    CACHE_REPOSITORY,
    InstallRequest,
    install_key,
    install_requirements,
)
from racetrack_builder.requirements import RequirementsPlan


def _request(tmp_path: Path, **changes: object) -> InstallRequest:
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    (tmp_path / "job.py").write_text("class Job: ...\n")
    request = InstallRequest(
        job_name="adder",
        system_image="sha256:" + "a" * 64,
        tools_volume="racetrack-build-tools-1",
        requirements_path="requirements.txt",
        plan=RequirementsPlan(files=("requirements.txt",), needs_source=False),
        job_root=tmp_path,
        job_files=("job.py", "requirements.txt"),
        python_version="3.11",
        build_env={"PIP_DEFAULT_TIMEOUT": "30"},
        secrets={"TOKEN": "s3cr3t-one"},
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def test_the_key_follows_requirements_and_secrets_but_not_the_code(tmp_path: Path) -> None:
    request = _request(tmp_path)
    key = install_key(request, request.tools_volume)
    (tmp_path / "job.py").write_text("class Job:\n    pass\n")
    assert install_key(request, request.tools_volume) == key
    assert install_key(replace(request, secrets={"TOKEN": "s3cr3t-two"}), request.tools_volume) != key
    assert install_key(replace(request, system_image="sha256:" + "b" * 64), request.tools_volume) != key
    assert install_key(request, "racetrack-build-tools-2") != key
    (tmp_path / "requirements.txt").write_text("six==1.17.0\n")
    assert install_key(request, request.tools_volume) != key
    assert "s3cr3t" not in key


class FakeEngine:
    def __init__(self, exit_code: int = 0, lines: list[str] | None = None, cached: bool = False) -> None:
        self.runs: list[CommitRun] = []
        self.exit_code, self.lines, self.cached = exit_code, lines or [], cached
        # Four earlier installs of this job, and one of another job whose name starts the same.
        self.tags = [(f"{CACHE_REPOSITORY}:adder-{str(i) * 32}", i) for i in range(4)]
        self.tags.append((f"{CACHE_REPOSITORY}:adder-two-{'9' * 32}", 0))
        self.untagged: list[str] = []

    def image_id(self, ref: str) -> str | None:
        return "sha256:cached" if self.cached else None

    def run_and_commit(self, request: CommitRun) -> CommitResult:
        self.runs.append(request)
        return CommitResult(self.exit_code, self.lines, "sha256:new" if self.exit_code == 0 else None)

    def tags_of(self, repository: str) -> list[tuple[str, int]]:
        return self.tags

    def untag(self, ref: str) -> None:
        self.untagged.append(ref)


def test_the_container_gets_the_files_and_secrets_as_a_tar_and_the_tools_read_only(tmp_path: Path) -> None:
    engine = FakeEngine()
    ref = install_requirements(engine, _request(tmp_path))  # type: ignore[arg-type]
    (run,) = engine.runs
    assert ref == run.ref and ref.startswith(f"{CACHE_REPOSITORY}:adder-")
    assert run.volumes == {"racetrack-build-tools-1": "/mnt"}
    assert "s3cr3t-one" not in json.dumps(run.command) and "TOKEN" not in json.dumps(run.command)
    with tarfile.open(fileobj=io.BytesIO(run.files)) as tar:
        names = tar.getnames()
        secrets = json.load(tar.extractfile("tmp/racetrack-install/secrets.json"))  # type: ignore[arg-type]
        mode = tar.getmember("tmp/racetrack-install/secrets.json").mode
    assert sorted(names) == [
        "tmp/racetrack-install/job/requirements.txt",
        "tmp/racetrack-install/plan.json",
        "tmp/racetrack-install/secrets.json",
    ]  # the code is not sent: it is not an input
    assert secrets == {"TOKEN": "s3cr3t-one"} and mode == 0o600
    # The newest installs of the job stay tagged, with the one just made: three in all.
    assert engine.untagged == [f"{CACHE_REPOSITORY}:adder-{'1' * 32}", f"{CACHE_REPOSITORY}:adder-{'0' * 32}"]


def test_the_same_inputs_reuse_the_install(tmp_path: Path) -> None:
    engine = FakeEngine(cached=True)
    install_requirements(engine, _request(tmp_path))  # type: ignore[arg-type]
    assert engine.runs == []
    install_requirements(engine, _request(tmp_path, nocache=True))  # type: ignore[arg-type]
    assert len(engine.runs) == 1


def test_a_failure_leads_with_the_diagnosis_and_carries_it_for_json(tmp_path: Path) -> None:
    diagnosis = {
        "requirement": "psycopg2==2.9.9",
        "where": "requirements.txt:3",
        "kind": "source-build",
        "cause": "building it from source needs PostgreSQL's client library",
        "fix": "add libpq-dev, gcc to system_dependencies",
        "packages": ["libpq-dev", "gcc"],
    }
    lines = [
        '  File "setup.py", line 1',
        "Error: pg_config executable not found.",
        "hint: This usually indicates a problem with the package, not uv",
        DIAGNOSIS_MARKER + json.dumps(diagnosis),
    ]
    engine = FakeEngine(exit_code=1, lines=lines)
    with pytest.raises(BuildFailed) as caught:
        install_requirements(engine, _request(tmp_path))  # type: ignore[arg-type]
    err = caught.value
    assert err.message == (
        "the job's requirements could not be installed: psycopg2==2.9.9 (requirements.txt:3): "
        "building it from source needs PostgreSQL's client library"
    )
    assert err.hint == "add libpq-dev, gcc to system_dependencies"
    assert err.log_tail == ["Error: pg_config executable not found."]  # no traceback, no uv hint
    assert err.details["packages"] == ["libpq-dev", "gcc"]


def test_refused_credentials_are_exit_3(tmp_path: Path) -> None:
    line = DIAGNOSIS_MARKER + json.dumps(
        {
            "kind": "auth",
            "cause": "the package index refused the credentials",
            "fix": "check the values of TOKEN",
        }
    )
    err = install_failure([line])
    assert isinstance(err, AuthenticationRefused) and err.exit_code == 3
