"""Chain calls (``racetrack_job_wrapper.call``): two jobs served for real on 127.0.0.1, the caller's
PUB_URL pointed at the callee, the callee checking the caller's token and seeing its tracing id."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from racetrack_job_wrapper import call

TRACE = "X-Request-Tracing-Id"
TOKEN = "caller-t0ken"


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free port of 127.0.0.1 in a thread; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


@pytest.fixture
def chain(make_app, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The callee (name "callee", version 1.0.0, token required) and the caller, both served; the
    caller's PUB_URL and AUTH_TOKEN point at the callee. Yields the caller's URL."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    callee = make_app("v2_chain_callee", name="callee", version="1.0.0", auth_token=TOKEN)
    caller = make_app("v2_chain_caller", name="caller", version="2.0.0")
    with serving(callee) as callee_url, serving(caller) as caller_url:
        monkeypatch.setenv("PUB_URL", callee_url + "/pub")
        monkeypatch.setenv("AUTH_TOKEN", TOKEN)
        monkeypatch.setenv("JOB_NAME", "caller")
        yield caller_url


def test_a_chain_call_carries_the_token_tracing_id_and_caller(chain):
    headers = {TRACE: "trace-chain-1", "X-Caller-Name": "alice"}
    status, body, answer = post(chain + "/pub/job/caller/2.0.0/api/v1/perform", {"x": 2, "y": 3}, headers)
    assert status == 200, body
    assert body == {"callee": {"sum": 5.0, "tracing_id": "trace-chain-1", "caller": "alice", "auth": TOKEN}}
    assert answer[TRACE] == "trace-chain-1"


def test_the_tracing_id_made_for_a_request_goes_down_the_chain(chain):
    status, body, answer = post(chain + "/api/v1/perform", {"x": 1, "y": 1})
    assert status == 200, body
    assert body["callee"]["tracing_id"] == answer[TRACE] and len(answer[TRACE]) == 36
    assert body["callee"]["caller"] == ""  # '' when the request named no caller, as Racetrack sends


def test_latest_reaches_the_callee_straight(chain):
    status, body, _ = post(chain + "/api/v1/perform", {"x": 1, "y": 2, "version": "latest"})
    assert status == 200 and body["callee"]["sum"] == 3.0, body


def test_call_job_coroutine_keeps_the_request_context(chain):
    status, body, _ = post(chain + "/api/v1/coroutine", {"x": 4, "y": 4}, {TRACE: "trace-async"})
    assert status == 200, body
    assert body["callee"]["sum"] == 8.0 and body["callee"]["tracing_id"] == "trace-async"


def test_a_refused_chain_call_is_a_runtime_error_naming_both_jobs(chain, monkeypatch):
    monkeypatch.setenv("AUTH_TOKEN", "wrong")
    status, body, _ = post(chain + "/api/v1/perform", {"x": 1, "y": 1})
    assert status == 500 and body["type"] == "RuntimeError"
    assert 'failed to call job "callee 1.0.0" by caller' in body["error"] and "401" in body["error"]


def test_unknown_version_and_missing_pub_url(chain, monkeypatch):
    status, body, _ = post(chain + "/api/v1/perform", {"x": 1, "y": 1, "version": "9.9.9"})
    assert status == 500 and "404" in body["error"]
    monkeypatch.delenv("PUB_URL")
    status, body, _ = post(chain + "/api/v1/perform", {"x": 1, "y": 1})
    assert status == 500 and "PUB_URL is not set" in body["error"]


def test_outside_a_request_the_headers_are_empty(monkeypatch):
    monkeypatch.setenv("AUTH_TOKEN", "t")
    monkeypatch.delenv("REQUEST_TRACING_HEADER", raising=False)
    monkeypatch.delenv("CALLER_NAME_HEADER", raising=False)
    assert call.outgoing_headers(object()) == {"X-Racetrack-Auth": "t", TRACE: "", "X-Caller-Name": ""}
    monkeypatch.delenv("AUTH_TOKEN")
    monkeypatch.setenv("REQUEST_TRACING_HEADER", "X-Trace")
    assert call.outgoing_headers() == {"X-Trace": "", "X-Caller-Name": ""}


def test_async_job_call_polls_the_gateway(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    polls: list[str] = []

    @Request.application
    def pub(request: Request) -> Response:
        if request.method == "POST" and request.path == "/pub/async/new/job/callee/latest/api/v1/perform":
            assert request.headers["X-Racetrack-Auth"] == "t" and request.get_json() == {"x": 1}
            return Response(json.dumps({"task_id": "task-1"}), status=201, mimetype="application/json")
        if request.path == "/pub/async/task/task-1/poll":
            polls.append(request.path)
            if len(polls) < 3:
                return Response(status=202 if len(polls) == 1 else 408)
            return Response(json.dumps({"done": True}), mimetype="application/json")
        return Response(status=404)

    with serving(pub) as url:
        monkeypatch.setenv("PUB_URL", url + "/pub")
        monkeypatch.setenv("AUTH_TOKEN", "t")
        assert call.async_job_call(object(), "callee", payload={"x": 1}) == {"done": True}
    assert len(polls) == 3


def test_redirects_are_not_followed(monkeypatch):
    @Request.application
    def elsewhere(request: Request) -> Response:
        return Response(status=307, headers={"Location": "http://127.0.0.1:9/steal"})

    with serving(elsewhere) as url:
        monkeypatch.setenv("PUB_URL", url + "/pub")
        with pytest.raises(RuntimeError, match="307"):
            call.call_job(object(), "callee")
