"""call: targets, inputs typed by the job's own parameters, answers and errors, token auth.

Real servers on 127.0.0.1: the wrapper's app (``create_app``) under Werkzeug's server in a thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from racetrack_builder import call as calling
from racetrack_builder.errors import JobAnswerError, JobUnreachable, UsageError

fatman_wrapper = pytest.importorskip("fatman_wrapper")
werkzeug_serving = pytest.importorskip("werkzeug.serving")

ENTRY = '''
from typing import Optional


class Entry:
    def perform(self, x: float, items: list, name: str = "n", when: Optional[str] = None,
                mode: str = "a") -> dict:
        """Echo the arguments with their types."""
        return {"x": [x, type(x).__name__], "items": items, "name": name, "when": when, "mode": mode}

    def auxiliary_endpoints(self):
        return {"/explain": self.explain, "/loose": self.loose}

    def explain(self, label: str, weight: int) -> dict:
        return {"label": label, "weight": weight}

    def loose(self, **options: str) -> dict:
        return options
'''

MANIFEST = """\
name: echo
owner_email: owner@example.com
lang: python3:latest
git:
  remote: https://git.example.com/echo.git
python:
  entrypoint_path: entry.py
"""


class Server:
    def __init__(self, url: str, job: Path) -> None:
        self.url = url
        self.job = job


def _serve(job: Path, **settings: object) -> Iterator[Server]:
    from fatman_wrapper.config import Settings

    app = fatman_wrapper.create_app("entry.py", root=job, settings=Settings(**settings))  # type: ignore[arg-type]
    server = werkzeug_serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{server.server_port}", job)
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def job(tmp_path: Path) -> Path:
    (tmp_path / "entry.py").write_text(ENTRY)
    (tmp_path / "fatman.yaml").write_text(MANIFEST)
    return tmp_path


@pytest.fixture
def server(job: Path) -> Iterator[Server]:
    yield from _serve(job, name="echo", version="0.0.1")


@pytest.fixture
def guarded(job: Path) -> Iterator[Server]:
    yield from _serve(job, name="echo", version="0.0.1", auth_token="t0ken-value")


def client_for(url: str, endpoint: str | None = None, token: str | None = None) -> calling.Client:
    return calling.Client(calling.resolve_target(url, endpoint=endpoint), token)


# ---- targets -----------------------------------------------------------------------------------------


def test_targets_from_urls_and_manifests(job: Path) -> None:
    t = calling.resolve_target("http://127.0.0.1:7000/")
    assert (t.base_url, t.endpoint) == ("http://127.0.0.1:7000", "/api/v1/perform")
    t = calling.resolve_target("http://gw.example/pub/fatman/echo/0.0.1/api/v1/explain")
    assert (t.base_url, t.endpoint) == ("http://gw.example/pub/fatman/echo/0.0.1", "/api/v1/explain")
    t = calling.resolve_target("http://h:1/pub/fatman/echo/0.0.1", endpoint="explain")
    assert t.url == "http://h:1/pub/fatman/echo/0.0.1/api/v1/explain"
    t = calling.resolve_target(str(job / "fatman.yaml"), port=7123)
    assert (t.base_url, t.expected) == ("http://127.0.0.1:7123", ("echo", "0.0.1"))
    assert calling.resolve_target(str(job)).base_url == "http://127.0.0.1:7000"  # a folder: its fatman.yaml
    with pytest.raises(UsageError, match="neither a URL nor a manifest"):
        calling.resolve_target("nowhere")
    with pytest.raises(UsageError, match="--port goes with a manifest"):
        calling.resolve_target("http://h:1", port=2)


# ---- inputs ------------------------------------------------------------------------------------------


def test_values_are_typed_by_the_jobs_parameters(server: Server) -> None:
    client = client_for(server.url)
    params = calling.parameters_of(client, calling.PERFORM)
    assert params is not None and params.text == {"name", "when", "mode"}
    inputs = calling.typed_inputs(
        [("x", "1.5"), ("items", "[1,2]"), ("name", "42"), ("when", "null"), ("mode", "b")], params
    )
    assert inputs == {"x": 1.5, "items": [1, 2], "name": "42", "when": "null", "mode": "b"}
    answer = calling.call(client, inputs)
    assert json.loads(answer.body)["x"] == [1.5, "float"]


def test_no_inputs_is_a_post_without_a_body(server: Server) -> None:
    # A Racetrack 2.x job answers a bodiless POST with its docs example; this fatman-era job reads
    # it as no arguments: its required x is missing (a GET would have been 405).
    with pytest.raises(JobAnswerError, match=r"(?s)answered 400 .*x: missing required argument") as caught:
        calling.call(client_for(server.url), None)
    assert str(caught.value.hint).startswith("give its arguments with -i NAME=VALUE or --input FILE")
    with pytest.raises(JobAnswerError) as given:  # with arguments given, the usual hint alone
        calling.call(client_for(server.url), {"y": 1})
    assert str(given.value.hint).startswith("check the inputs")


def test_input_document_under_the_pairs() -> None:
    params = calling.Parameters(names=("x", "y"), text=frozenset(), open=False)
    base = calling.read_input('{"x": 1, "y": 2}', "in.json")
    assert calling.typed_inputs([("y", "3")], params, base) == {"x": 1, "y": 3}
    with pytest.raises(UsageError, match="not an object"):
        calling.read_input("[1]", "-")
    with pytest.raises(UsageError, match="not JSON"):
        calling.read_input("{", "-")


def test_an_unknown_name_is_refused_with_a_suggestion() -> None:
    params = calling.Parameters(names=("numbers", "scale"), text=frozenset(), open=False)
    with pytest.raises(UsageError, match=r"no argument 'number' \(did you mean 'numbers'\?\)") as err:
        calling.typed_inputs([("number", "1")], params)
    assert err.value.exit_code == 2
    with pytest.raises(UsageError, match="is not NAME=VALUE"):
        calling.parse_pair("x")


def test_words_that_are_not_json_are_sent_as_text() -> None:
    assert calling.typed_inputs([("kind", "fast"), ("n", "3")], None) == {"kind": "fast", "n": 3}


def test_auxiliary_endpoints_are_typed_by_the_openapi_document(server: Server) -> None:
    client = client_for(server.url, endpoint="/explain")
    params = calling.parameters_of(client, client.target.endpoint)
    assert params is not None and params.text == {"label"} and not params.open
    inputs = calling.typed_inputs([("label", "7"), ("weight", "3")], params)
    assert json.loads(calling.call(client, inputs).body) == {"label": "7", "weight": 3}
    loose = calling.parameters_of(client_for(server.url, endpoint="loose"), "/api/v1/loose")
    assert loose is not None and loose.open and loose.extra_text
    assert calling.typed_inputs([("anything", "1")], loose) == {"anything": "1"}


# ---- answers -----------------------------------------------------------------------------------------


def test_a_non_2xx_answer_is_the_jobs_error(server: Server) -> None:
    client = client_for(server.url)
    with pytest.raises(JobAnswerError) as err:
        calling.call(client, {"x": "a"})
    assert err.value.exit_code == 1 and err.value.status == 400
    assert "answered 400 ValidationError" in err.value.message
    assert "\n  x: expected float, got string" in err.value.message
    assert "\n  items: missing required argument" in err.value.message


def test_pretty_on_a_terminal_raw_otherwise() -> None:
    answer = calling.Answer(200, '{"a":[1,2]}\n', "application/json")
    assert calling.format_result(answer, pretty=False) == '{"a":[1,2]}'
    assert calling.format_result(answer, pretty=True) == '{\n  "a": [\n    1,\n    2\n  ]\n}'


def test_token_through_option_or_environment(guarded: Server) -> None:
    with pytest.raises(JobAnswerError, match="answered 401 Unauthorized") as err:
        calling.parameters_of(client_for(guarded.url), calling.PERFORM)
    assert "FATMAN_AUTH_TOKEN" in (err.value.hint or "")
    client = client_for(guarded.url, token="t0ken-value")
    assert calling.call(client, {"x": 1, "items": []}).ok


def test_nothing_listening_is_an_environment_failure() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(JobUnreachable, match=f"nothing answers at http://127.0.0.1:{port}") as err:
        client_for(f"http://127.0.0.1:{port}").request("/health")
    assert err.value.exit_code == 3


def test_a_manifest_target_must_be_the_job_answering(server: Server, job: Path) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    calling.check_identity(calling.Client(calling.resolve_target(str(job / "fatman.yaml"), port=port)))
    (job / "other.yaml").write_text(MANIFEST.replace("name: echo", "name: other"))
    with pytest.raises(JobUnreachable, match="serves echo 0.0.1, not other 0.0.1"):
        calling.check_identity(calling.Client(calling.resolve_target(str(job / "other.yaml"), port=port)))


# ---- the command -------------------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "racetrack_builder", *args], capture_output=True, text=True,
                          input=stdin, env={**os.environ, "NO_COLOR": "1", **(env or {})}, timeout=60)


def test_the_command(guarded: Server, job: Path) -> None:
    port = guarded.url.rsplit(":", 1)[1]
    token = {"FATMAN_AUTH_TOKEN": "t0ken-value"}
    ok = cli("call", str(job / "fatman.yaml"), "--port", port, "-i", "x=1.5", "-i", "items=[1,2]", env=token)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["items"] == [1, 2] and ok.stdout.count("\n") == 1  # raw: not a terminal
    piped = cli("call", guarded.url + "/pub/fatman/echo/0.0.1", "--input", "-", "--token", "t0ken-value",
                stdin='{"x": 2, "items": []}')
    assert piped.returncode == 0 and json.loads(piped.stdout)["x"] == [2.0, "float"]
    bad = cli("call", guarded.url, "-i", "x=a", "-i", "items=[]", env=token)
    assert bad.returncode == 1
    assert "Error: POST /api/v1/perform answered 400 ValidationError" in bad.stderr
    refused = cli("call", guarded.url, "-i", "x=1", "-i", "items=[]", env={"FATMAN_AUTH_TOKEN": ""})
    assert refused.returncode == 1 and "401" in refused.stderr
    assert "t0ken-value" not in bad.stderr + bad.stdout
