"""Warnings about valid manifests: public endpoints that open everything, or nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from racetrack_builder.job import load_job
from racetrack_builder.manifest import parse_manifest
from racetrack_builder.manifest.advice import manifest_advice, public_endpoint_advice
from racetrack_builder.reporting import Silent, reporting_to

MANIFEST = """\
name: adder
owner_email: owner@example.com
lang: python3:latest
git:
  remote: https://github.com/example/adder
python:
  entrypoint_path: entrypoint.py
"""


def _manifest(public: list[str]) -> str:
    return MANIFEST + "public_endpoints:\n" + "".join(f"  - '{p}'\n" for p in public)


@pytest.mark.parametrize("endpoint", ["/", "/api", "/api/", "/api/v1", "/api/v1/"])
def test_a_path_above_the_api_is_said_to_open_every_endpoint(endpoint: str) -> None:
    advice = public_endpoint_advice(endpoint)
    assert advice is not None and "opens every endpoint of the job" in advice
    assert repr(endpoint) in advice


@pytest.mark.parametrize("endpoint,meant", [("/perform", "/api/v1/perform"), ("/webview", "/api/v1/webview")])
def test_a_path_the_job_does_not_serve_is_said_to_open_nothing(endpoint: str, meant: str) -> None:
    advice = public_endpoint_advice(endpoint)
    assert advice is not None and "opens nothing" in advice and repr(meant) in advice


@pytest.mark.parametrize(
    "endpoint",
    [
        "/api/v1/perform",
        "/api/v1/webview",
        "/api/v1/explain/more",
        "/webview/static",
        "/webview/static/css",
        "/docs",
        "/openapi.json",
        "/metrics",
    ],
)
def test_paths_that_open_what_they_name_need_no_advice(endpoint: str) -> None:
    assert public_endpoint_advice(endpoint) is None


def test_manifest_advice_lists_each_endpoint_in_order() -> None:
    manifest = parse_manifest(_manifest(["/api/v1/perform", "/", "/perform"]))
    advice = manifest_advice(manifest)
    assert len(advice) == 2
    assert "'/'" in advice[0] and "'/perform'" in advice[1]
    assert manifest_advice(parse_manifest(MANIFEST)) == []


class _Recorder(Silent):
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)


def test_load_job_warns_through_the_reporter(tmp_path: Path) -> None:
    path = tmp_path / "fatman.yaml"
    path.write_text(_manifest(["/"]))
    with reporting_to(_Recorder()) as recorder:
        load_job(path, build="no")
    assert len(recorder.warnings) == 1 and "opens every endpoint" in recorder.warnings[0]


def test_validate_prints_the_warning_and_still_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "fatman.yaml"
    path.write_text(_manifest(["/api/v1"]))
    result = subprocess.run(
        [sys.executable, "-m", "racetrack_builder", "validate", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning: public_endpoints: '/api/v1' opens every endpoint of the job" in result.stderr
    assert "valid: adder" in result.stderr
