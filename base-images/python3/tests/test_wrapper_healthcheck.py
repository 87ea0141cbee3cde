"""The base image's HEALTHCHECK: its own command, run against real servers on 127.0.0.1.

Docker marks a container healthy when the command exits 0. It must probe readiness, not liveness:
a job whose ``__init__`` failed keeps the server (and ``/live``) up, and must not show as healthy.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from wrapper_server import running_server
from wrapper_support import job_path, server_env

pytestmark = pytest.mark.slow

DOCKERFILE = Path(__file__).resolve().parent.parent / "Dockerfile"


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK instruction's options and its exec-form command."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.startswith("HEALTHCHECK "))
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", line))
    command = json.loads(line.split(" CMD ", 1)[1])
    return options, command


def probe(port: str, **env: str) -> subprocess.CompletedProcess:
    """Run the image's health command as Docker would, with the test's Python for `python`."""
    _, command = healthcheck()
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]],
        env=server_env(FATMAN_PORT=port, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthcheck_probes_readiness_with_room_for_slow_model_loads():
    options, command = healthcheck()
    assert "/ready" in command[-1] and "/live" not in command[-1]
    # A model may take minutes to load: failures in the start period do not count, and the first
    # success ends it, so a long period costs a fast job nothing.
    assert int(options["start-period"].rstrip("s")) >= 120
    assert int(options["timeout"].rstrip("s")) < int(options["interval"].rstrip("s"))


def test_healthy_when_the_job_is_ready_even_with_a_token():
    with running_server(job_path("adder"), env={"FATMAN_AUTH_TOKEN": "s3cret"}) as server:
        result = probe(server.url.rsplit(":", 1)[1])
        assert result.returncode == 0, result.stderr


def test_unhealthy_when_init_failed():
    with running_server(job_path("failing_init"), ready_status=503) as server:
        result = probe(server.url.rsplit(":", 1)[1])
        assert result.returncode != 0
        assert "503" in result.stderr
