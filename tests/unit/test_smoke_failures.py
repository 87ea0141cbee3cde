"""The smoke test against a real HTTP server on 127.0.0.1 that misbehaves: an example that gets no
answer, or one past the time limit, is a BuildFailed naming the example, the fix and the job's log
(audit finding 8: RemoteDisconnected and TimeoutError ended the build in a raw traceback). Only the
container handle is a stand-in."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from racetrack_builder import smoke
from racetrack_builder.errors import BuildFailed

OPENAPI = {"paths": {
    "/api/v1/perform": {"post": {"requestBody": {"content": {"application/json": {"example": {"x": 1}}}}}},
    "/api/v1/explain": {"post": {"requestBody": {"content": {"application/json": {"example": {"y": 2}}}}}},
}}
JOB_LOG = ["[9] [CRITICAL] WORKER TIMEOUT (pid:9)", "[9] [ERROR] Worker (pid:9) was sent SIGKILL!"]


class FakeContainer:
    """engine.Container's shape, for a job served by the test's own server."""

    name = "racetrack-job-test"

    def __init__(self, port: int) -> None:
        self.published = port
        self.removed = False

    def status(self) -> str:
        return "running"

    def exit_code(self) -> int | None:
        return None

    def port(self) -> int | None:
        return self.published

    def logs(self, tail: int = 30) -> list[str]:
        return JOB_LOG[-tail:]

    def follow_logs(self) -> Iterator[str]:
        yield from JOB_LOG

    def remove(self) -> None:
        self.removed = True


class FakeEngine:
    """Just what smoke_test uses of engine.Engine: run and remove_container."""

    def __init__(self, container: FakeContainer) -> None:
        self.container = container

    def run(self, image: str, *, environment: Mapping[str, str], name: str,
            host_port: int | None = None) -> FakeContainer:
        return self.container

    def remove_container(self, name: str) -> None:
        pass


class _Job(http.server.BaseHTTPRequestHandler):
    """Answers GET /openapi.json and /ready; what POSTs get is the server's ``mode``: "ok", "close"
    (read the request, close without a byte) or "hang" (never answer)."""

    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        if self.server.mode == "garbage":
            self.wfile.write(b"not http at all\r\n\r\n")
            return
        if self.server.mode == "close":
            self.close_connection = True
            return
        if self.path == "/ready" and self.server.mode in ("failed-503", "failed-500"):
            payload = json.dumps({"ready": False, "status": "failed", "type": "JobLoadError",
                                  "error": "JobEntrypoint.__init__ raised RuntimeError (boom)"}).encode()
            self.send_response(int(self.server.mode[-3:]))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if self.path == "/health" and self.server.mode == "named":
            payload = json.dumps({"status": "ready", "job_name": "adder", "job_version": "1.2.3"}).encode()
        else:
            payload = json.dumps(OPENAPI if self.path == "/openapi.json" else {"status": "ready"}).encode()
        self._answer(payload)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.posts += 1
        if self.server.mode == "close" or (self.server.mode == "close-second" and self.server.posts == 2):
            self.close_connection = True
            return
        if self.server.mode == "hang":
            self.server.release.wait(30)
            return
        self._answer(b'{"result": 1}')

    def _answer(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Job)
        self.mode = "ok"
        self.posts = 0
        self.release = threading.Event()


@pytest.fixture
def job() -> Iterator[Server]:
    server = Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _url(server: Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_an_example_answered_by_a_closed_connection(job: Server) -> None:
    job.mode = "close-second"
    with pytest.raises(BuildFailed) as info:
        smoke.call_examples(_url(job), FakeContainer(job.server_address[1]))
    error = info.value
    assert error.message == ("documented example 2 of 2 (POST /api/v1/explain) got no answer: the job closed "
                             "the connection without answering")
    assert error.hint and "its log below says why" in error.hint
    assert error.log_tail == JOB_LOG and error.log_title == smoke.JOB_LOG_TITLE


def test_an_example_past_the_time_limit(job: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smoke, "REQUEST_TIMEOUT", 0.5)
    job.mode = "hang"
    with pytest.raises(BuildFailed) as info:
        smoke.call_examples(_url(job), FakeContainer(job.server_address[1]))
    assert info.value.message == ("documented example 1 of 2 (POST /api/v1/perform) got no answer: no answer "
                                  "within 0.5s")
    assert info.value.hint == ("the smoke test waits 0.5s for each example: give docs_input_example(s) an "
                               "input the job answers quickly, or make the job faster")
    assert info.value.log_tail == JOB_LOG


def test_the_whole_smoke_test_ends_in_build_failed_and_removes_the_container(
        job: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    job.mode = "close-second"
    container = FakeContainer(job.server_address[1])
    with pytest.raises(BuildFailed, match=r"example 2 of 2 \(POST /api/v1/explain\) got no answer"):
        smoke.smoke_test(FakeEngine(container), "adder:0.0.1", {}, ready_timeout=5)  # type: ignore[arg-type]
    assert container.removed


def test_openapi_without_an_answer(job: Server) -> None:
    job.mode = "close"
    with pytest.raises(BuildFailed, match=r"did not answer GET /openapi.json: the job closed the connection"):
        smoke.call_examples(_url(job), FakeContainer(job.server_address[1]))


@pytest.mark.parametrize("mode", ["close", "garbage"])
def test_a_job_that_never_answers_ready_is_not_ready(job: Server, mode: str) -> None:
    job.mode = mode
    with pytest.raises(BuildFailed, match=r"was not ready after 1s \(last answer: ") as info:
        smoke.wait_ready(_url(job), FakeContainer(job.server_address[1]), timeout=1)
    assert info.value.log_tail == JOB_LOG


@pytest.mark.parametrize("mode", ["close", "garbage"])
def test_job_endpoints_of_a_job_without_answers_is_empty(job: Server, mode: str) -> None:
    job.mode = mode
    assert smoke.job_endpoints(_url(job)) == []


@pytest.mark.parametrize("mode", ["failed-503", "failed-500"])  # the fatman era's, Racetrack 2.x's
def test_a_job_that_failed_to_load_fails_the_wait_at_once_with_its_error(job: Server, mode: str) -> None:
    job.mode = mode
    with pytest.raises(BuildFailed, match=r"the job failed to start: .*__init__ raised RuntimeError"):
        smoke.wait_ready(_url(job), FakeContainer(job.server_address[1]), timeout=30)


def test_the_gateway_prefixes_come_from_the_name_and_version_health_reports(job: Server) -> None:
    job.mode = "named"
    assert smoke.gateway_prefixes(_url(job)) == ["/pub/job/adder/1.2.3", "/pub/fatman/adder/1.2.3"]
    job.mode = "ok"  # an image built without a name and version: no prefix to name
    assert smoke.gateway_prefixes(_url(job)) == []
    job.mode = "garbage"
    assert smoke.gateway_prefixes(_url(job)) == []


def test_a_refused_connection_is_no_answer() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert smoke.job_endpoints(f"http://127.0.0.1:{port}") == []
    assert smoke.gateway_prefixes(f"http://127.0.0.1:{port}") == []
    with pytest.raises(BuildFailed, match="the connection was refused"):
        smoke.call_examples(f"http://127.0.0.1:{port}", FakeContainer(port))
