"""X-Request-Tracing-Id on every request and answer, X-Caller-Name, access lines, JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Callable

import pytest
from wrapper_server import running_server
from wrapper_support import job_path

from fatman_wrapper.config import Settings
from fatman_wrapper.errors import JobLoadError
from fatman_wrapper.logs import make_formatter
from fatman_wrapper.server import default_server
from fatman_wrapper.tracing import printable

TRACE = "X-Request-Tracing-Id"


@pytest.fixture
def log_lines() -> Iterator[Callable]:
    """Capture what the root logger writes, formatted as ``run`` would: ``lines(structured, caller)``
    installs the formatter and returns the list of lines logged so far (read it after the calls)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines(structured: bool = False, caller_name: bool = False) -> Callable[[], list[str]]:
        handler.setFormatter(make_formatter(structured, caller_name))
        return lambda: stream.getvalue().splitlines()

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


def test_the_tracing_id_of_the_request_is_answered(make_app):
    client = make_app("adder").test_client()
    response = client.post("/api/v1/perform", json={"x": 1}, headers={TRACE: "abc-123"})
    assert response.headers[TRACE] == "abc-123"


def test_a_tracing_id_is_made_when_absent_or_unusable(make_app):
    client = make_app("adder").test_client()
    made = client.post("/api/v1/perform", json={"x": 1}).headers[TRACE]
    assert _is_uuid4(made)
    assert client.get("/live").headers[TRACE] != made  # one per request
    for bad in ("x" * 200, "has space", "caf\u00e9"):
        answered = client.get("/live", headers={TRACE: bad}).headers[TRACE]
        assert _is_uuid4(answered), bad


def test_refused_and_failed_answers_carry_the_tracing_id_too(make_app):
    client = make_app("adder", auth_token="t", max_concurrency=1, max_queue=0).test_client()
    assert client.post("/api/v1/perform", json={"x": 1}, headers={TRACE: "t-401"}).headers[TRACE] == "t-401"
    assert client.get("/nothing", headers={TRACE: "t-404", "X-Racetrack-Auth": "t"}).headers[TRACE] == "t-404"


def test_the_tracing_header_name_is_configurable(make_app):
    client = make_app("v2_context", tracing_header="X-Trace", caller_header="X-Who").test_client()
    response = client.post("/api/v1/perform", json={"x": 1}, headers={"X-Trace": "tr-7"})
    assert response.headers["X-Trace"] == "tr-7" and TRACE not in response.headers
    settings = Settings.from_env({"REQUEST_TRACING_HEADER": "X-Trace", "CALLER_NAME_HEADER": "X-Who"})
    assert (settings.tracing_header, settings.caller_header) == ("X-Trace", "X-Who")
    assert Settings.from_env({}).tracing_header == TRACE
    with pytest.raises(JobLoadError, match="REQUEST_TRACING_HEADER"):
        Settings.from_env({"REQUEST_TRACING_HEADER": "not a header"})


def test_text_lines_carry_the_tracing_id_and_the_caller(make_app, log_lines):
    lines = log_lines(structured=False, caller_name=True)
    client = make_app("v2_context").test_client()
    client.post("/api/v1/perform", json={"x": 1}, headers={TRACE: "tr-1", "X-Caller-Name": "alice"})
    client.post("/api/v1/fail", headers={TRACE: "tr-2"})
    text = lines()
    job_line = next(line for line in text if "perform called" in line)
    assert "racetrack: [tr-1] [caller: alice] perform called with x=1" in job_line
    access = next(line for line in text if "fatman_wrapper.access" in line and "tr-1" in line)
    assert access.endswith(" ms") and "[tr-1] [caller: alice] POST /api/v1/perform 200 " in access
    error = next(line for line in text if "raised RuntimeError" in line)
    assert "[tr-2] /api/v1/fail raised RuntimeError" in error
    assert any("[tr-2] POST /api/v1/fail 500" in line for line in text)
    assert any("RuntimeError: the model is gone" in line for line in text)  # the traceback follows


def test_the_caller_is_left_out_unless_asked_for(make_app, log_lines):
    lines = log_lines(structured=False, caller_name=False)
    client = make_app("adder").test_client()
    client.post("/api/v1/perform", json={"x": 1}, headers={TRACE: "tr-3", "X-Caller-Name": "alice"})
    access = [line for line in lines() if "tr-3" in line]
    assert access and not any("alice" in line for line in access)


def test_structured_lines_are_json(make_app, log_lines):
    lines = log_lines(structured=True, caller_name=True)
    client = make_app("v2_context").test_client()
    headers = {TRACE: "tr-4", "X-Caller-Name": "bob"}
    client.post("/api/v1/perform?token=secret", json={"x": 1}, headers=headers)
    client.post("/api/v1/fail", headers={TRACE: "tr-5"})
    records = [json.loads(line) for line in lines()]  # every line is one JSON object
    job = next(r for r in records if r["msg"].startswith("perform called"))
    assert job["lvl"] == "INFO" and job["logger"] == "racetrack" and job["time"].endswith("Z")
    assert (job["tracing_id"], job["caller_name"]) == ("tr-4", "bob")
    access = next(r for r in records if r["logger"] == "fatman_wrapper.access" and r["tracing_id"] == "tr-4")
    assert (access["method"], access["path"], access["status"]) == ("POST", "/api/v1/perform", 200)
    assert isinstance(access["duration_ms"], float) and "secret" not in json.dumps(access)
    error = next(r for r in records if r["lvl"] == "ERROR" and r["tracing_id"] == "tr-5")
    assert error["cause"] == "RuntimeError: the model is gone"
    assert "Traceback" in error["traceback"] and "caller_name" not in error


def test_probes_log_their_access_at_debug(make_app, log_lines):
    lines = log_lines()
    client = make_app("adder").test_client()
    client.get("/ready", headers={TRACE: "tr-probe"})
    client.get("/metrics", headers={TRACE: "tr-probe"})
    assert not [line for line in lines() if "tr-probe" in line]


def test_the_access_log_can_be_turned_off(make_app, log_lines):
    lines = log_lines()
    client = make_app("adder", access_log=False).test_client()
    client.post("/api/v1/perform", json={"x": 1}, headers={TRACE: "tr-off"})
    assert not [line for line in lines() if "tr-off" in line]
    assert Settings.from_env({"FATMAN_ACCESS_LOG": "false"}).access_log is False
    assert Settings.from_env({}).access_log is True


def test_a_path_cannot_forge_a_log_line(make_app, log_lines):
    lines = log_lines()
    client = make_app("adder").test_client()
    client.get("/x%0A2026-01-01 [INFO] forged", headers={TRACE: "tr-forge"})
    logged = [line for line in lines() if "forged" in line]
    assert len(logged) == 1 and "tr-forge" in logged[0] and "\\n2026" in logged[0]
    assert printable("a\nb\x1bc") == "a\\nb\\x1bc"


@pytest.mark.parametrize(("raw", "on"), [("true", True), ("T", True), ("yes", True), ("y", True), ("1", True),
                                         ("false", False), ("", False), ("on", False)])
def test_log_flags_read_as_racetrack_reads_them(raw, on):
    settings = Settings.from_env({"LOG_STRUCTURED": raw, "LOG_CALLER_NAME": raw})
    assert settings.log_structured is on and settings.log_caller_name is on


@pytest.mark.slow
def test_the_real_server_logs_json_only(tmp_path):
    log_path = tmp_path / "server.log"
    env = {"LOG_STRUCTURED": "true", "LOG_CALLER_NAME": "true", "JOB_NAME": "ctx", "JOB_VERSION": "1.0.0",
           "FATMAN_WORKERS": "1"}
    with running_server(job_path("v2_context"), env=env, log_path=log_path) as server:
        request = urllib.request.Request(
            server.url + "/pub/job/ctx/1.0.0/api/v1/perform",
            data=b'{"x": 5}',
            headers={"Content-Type": "application/json", TRACE: "tr-real", "X-Caller-Name": "carol"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers[TRACE] == "tr-real"
            assert json.loads(response.read())["x"] == 5
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    # The server's own lines too (granian's, or gunicorn's on Python 3.9).
    server_logger = "_granian" if default_server() == "granian" else "gunicorn.error"
    assert any(r["logger"] == server_logger for r in records)
    job = next(r for r in records if r["msg"] == "perform called with x=5.0")
    assert (job["tracing_id"], job["caller_name"]) == ("tr-real", "carol")
    assert any(r.get("path") == "/pub/job/ctx/1.0.0/api/v1/perform" and r["tracing_id"] == "tr-real"
               for r in records)

