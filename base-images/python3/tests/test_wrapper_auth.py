"""Access control: a configured token guards every route but the probes and public endpoints."""

from __future__ import annotations

import os

import pytest

from fatman_wrapper.auth import TokenGuard
from fatman_wrapper.config import parse_public_endpoints

TOKEN = "s3cret-token"


@pytest.fixture
def client(make_app):
    return make_app(
        "webview",
        name="ui",
        version="1.0.0",
        auth_token=TOKEN,
        public_endpoints=parse_public_endpoints("/api/v1/webview/, /api/v1/parameters"),
    ).test_client()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/perform",
        "/metrics",
        "/docs",
        "/openapi.json",
        "/",
        "/pub/fatman/ui/1.0.0/api/v1/perform",
        "/api/v1/webviewer",
    ],
)
def test_token_required(client, path):
    response = client.post(path, json={"x": 1}) if path.endswith("perform") else client.get(path)
    assert response.status_code == 401, path
    body = response.get_json()
    assert body["type"] == "Unauthorized" and "X-Racetrack-Auth" in body["error"]


def test_wrong_token_refused(client):
    for headers in (
        {"X-Racetrack-Auth": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"X-Racetrack-Auth": ""},
    ):
        assert client.post("/api/v1/perform", json={"x": 1}, headers=headers).status_code == 401


def test_right_token_in_either_header(client):
    for headers in ({"X-Racetrack-Auth": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}):
        response = client.post("/api/v1/perform", json={"x": 2}, headers=headers)
        assert response.status_code == 200
        assert response.get_json() == 2.0
        assert client.get("/pub/fatman/ui/1.0.0/metrics", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/live",
        "/ready",
        "/pub/fatman/ui/1.0.0/ready",
        "/api/v1/webview/",
        "/api/v1/webview/static/style.css",
        "/pub/fatman/ui/1.0.0/api/v1/webview/",
        "/api/v1/parameters",
        "/pub/fatman/ui/1.0.0/api/v1/parameters",
    ],
)
def test_probes_and_public_endpoints_are_open(client, path):
    assert client.get(path).status_code == 200, path


def test_without_token_everything_is_open(make_app):
    client = make_app("adder").test_client()
    assert client.post("/api/v1/perform", json={"x": 1}).status_code == 200
    assert client.get("/metrics").status_code == 200


def test_public_prefix_matching():
    guard = TokenGuard("t", ["/foo", "/api/v1/perform"])
    assert guard.is_exempt("/foo") and guard.is_exempt("/foo/x")
    assert not guard.is_exempt("/foobar")
    assert not guard.is_exempt("/foo/../metrics")
    assert not guard.is_exempt("/api/v1/performance")
    assert guard.is_exempt("/api/v1/perform")
    # "/" opens the job's whole API, not the wrapper's own pages (see test_wrapper_audit.py).
    assert TokenGuard("t", ["/"]).is_exempt("/api/v1/anything")
    assert not TokenGuard("t", ["/"]).is_exempt("/metrics")
    assert parse_public_endpoints(" /a/ ,, b ") == ("/a", "/b")


def _failing_job(root, init_body: str) -> None:
    root.mkdir(exist_ok=True)
    (root / "fatman_entrypoint.py").write_text(
        f"class E:\n    def __init__(self):\n        {init_body}\n    def perform(self):\n        return 1\n"
    )


@pytest.mark.parametrize("token", [TOKEN, ""], ids=["token", "no-token"])
@pytest.mark.parametrize("probe", ["/ready", "/health"])
def test_probes_give_only_a_short_reason(tmp_path, make_app, probe, token, caplog):
    # Probes are open to anyone, token or not: they must not hand out the job's traceback, the
    # server's file layout or the text of the user's exception (it can hold a secret, such as a
    # password in a connection string); the log keeps it all.
    _failing_job(tmp_path / "job", "open('/nonexistent/models/model.pkl')")
    client = make_app("", root=tmp_path / "job", auth_token=token).test_client()
    response = client.get(probe)
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "failed"
    assert "traceback" not in body
    text = response.get_data(as_text=True)
    assert "FileNotFoundError" in body["error"] and "in the job's log" in body["error"]
    assert "model.pkl" not in text and str(tmp_path) not in text and "Traceback" not in text
    assert "open('/nonexistent/models/model.pkl')" in caplog.text  # the log keeps the traceback


def test_a_secret_in_an_exception_never_leaves_by_http(tmp_path, make_app, caplog):
    (tmp_path / "fatman_entrypoint.py").write_text(
        "import os\n"
        "class Job:\n"
        "    def __init__(self):\n"
        "        raise ValueError('login failed for password ' + os.environ['DB_PASSWORD'])\n"
        "    def perform(self):\n"
        "        return 1\n"
    )
    os.environ["DB_PASSWORD"] = "hunter2-SECRET"
    try:
        client = make_app("", root=tmp_path).test_client()
        answers = [client.get(p) for p in ("/ready", "/health", "/openapi.json")]
        answers.append(client.post("/api/v1/perform"))
    finally:
        del os.environ["DB_PASSWORD"]
    for answer in answers:
        assert "hunter2" not in answer.get_data(as_text=True), answer.request.path
    assert "hunter2-SECRET" in caplog.text  # where the operator can read it


def test_import_failure_names_no_path(tmp_path, make_app):
    (tmp_path / "fatman_entrypoint.py").write_text("import module_that_does_not_exist_anywhere\n")
    client = make_app("", root=tmp_path, auth_token=TOKEN).test_client()
    body = client.get("/ready").get_json()
    assert "ModuleNotFoundError" in body["error"] and "fatman_entrypoint.py" in body["error"]
    assert "traceback" not in body and str(tmp_path) not in body["error"]
    # A job endpoint says no more without the token (401) and the same short reason with it.
    assert client.post("/api/v1/perform").status_code == 401
    answer = client.post("/api/v1/perform", headers={"X-Racetrack-Auth": TOKEN})
    assert answer.status_code == 503 and str(tmp_path) not in answer.get_data(as_text=True)
