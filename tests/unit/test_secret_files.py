"""A secret .env file that does not parse: the error names the line and the problem, never the text
(audit finding 2: a pasted token alone on a line, or the second line of an unquoted value, was echoed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from racetrack_builder.errors import SecretsError
from racetrack_builder.manifest import Manifest
from racetrack_builder.secrets import read_secret_env

TOKEN = "ghp_AbCdEf0123456789AbCdEf0123456789abcd"
LIVE = "sk-live-51Habc-DEF0123456789"

MANIFEST = """\
name: adder
owner_email: owner@example.com
lang: python3
git:
  remote: https://example.com/adder.git
python:
  entrypoint_path: adder.py
secret_build_env_file: .env.build
"""


def _read(tmp_path: Path, text: str) -> str:
    manifest = tmp_path / "fatman.yaml"
    manifest.write_text(MANIFEST)
    (tmp_path / ".env.build").write_text(text)
    model = Manifest.model_validate({
        "name": "adder", "owner_email": "owner@example.com", "lang": "python3",
        "git": {"remote": "https://example.com/adder.git"}, "python": {"entrypoint_path": "adder.py"},
        "secret_build_env_file": ".env.build",
    })
    with pytest.raises(SecretsError) as info:
        read_secret_env(model, manifest, "build")
    return str(info.value)


def test_a_pasted_token_alone_on_a_line_is_not_echoed(tmp_path: Path) -> None:
    message = _read(tmp_path, f"{TOKEN}\n")
    assert message == ("secret_build_env_file: '.env.build' is not a valid .env file:\n"
                       "  line 1: has no '=' and no value (write NAME=value, or NAME= for an empty one)")


def test_the_second_line_of_an_unquoted_value_is_not_echoed(tmp_path: Path) -> None:
    head, tail = LIVE[:12], LIVE[12:]
    message = _read(tmp_path, f"OK=1\nSTRIPE_KEY={head}\n{tail}-x\n")
    assert "line 3: the name is not a valid environment variable name" in message
    assert "put quotes around a value that spans several lines" in message
    assert head not in message and tail not in message


@pytest.mark.parametrize("text", [f"{TOKEN}\n", f"A=1\n{LIVE}\n", f"1{TOKEN}=x\n", f"{LIVE}=x\n",
                                  f"X=1\n'{TOKEN}'\n", f"{TOKEN} {LIVE}\n"])
def test_no_part_of_a_bad_line_reaches_the_message(tmp_path: Path, text: str) -> None:
    message = _read(tmp_path, text)
    for secret in (TOKEN, LIVE, TOKEN[:10], LIVE[:10]):
        assert secret not in message
    assert "line " in message


def test_build_json_never_holds_the_token(tmp_path: Path) -> None:
    """End to end: the console script, --json on stdout and the human report on stderr."""
    (tmp_path / "fatman.yaml").write_text(MANIFEST)
    (tmp_path / ".env.build").write_text(f"GOOD=1\n{TOKEN}\n")
    env = {**os.environ, "NO_COLOR": "1", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    command = [sys.executable, "-m", "racetrack_builder", "build", str(tmp_path / "fatman.yaml"), "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert report["error"] == "SecretsError"
    assert "line 2: has no '='" in report["message"]
    assert TOKEN not in result.stdout + result.stderr
    assert TOKEN[:10] not in result.stdout + result.stderr
