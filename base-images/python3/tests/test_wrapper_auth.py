"""Access control: a configured token guards every route but the probes and public endpoints."""

from __future__ import annotations

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
    assert TokenGuard("t", ["/"]).is_exempt("/anything")
    assert parse_public_endpoints(" /a/ ,, b ") == ("/a", "/b")


def _failing_job(root, init_body: str) -> None:
    root.mkdir(exist_ok=True)
    (root / "fatman_entrypoint.py").write_text(
        f"class E:\n    def __init__(self):\n        {init_body}\n    def perform(self):\n        return 1\n"
    )


@pytest.mark.parametrize("probe", ["/ready", "/health"])
def test_probes_give_only_a_short_reason_when_a_token_is_set(tmp_path, make_app, probe, caplog):
    # Probes are open to anyone: with a token set they must not hand out the job's traceback or
    # the server's file layout; the log keeps the detail.
    _failing_job(tmp_path / "job", "open('/nonexistent/models/model.pkl')")
    client = make_app("", root=tmp_path / "job", auth_token=TOKEN).test_client()
    response = client.get(probe)
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "failed"
    assert "traceback" not in body
    text = response.get_data(as_text=True)
    assert "FileNotFoundError" in body["error"] and "model.pkl" in body["error"]
    assert "/nonexistent" not in text and str(tmp_path) not in text and "Traceback" not in text
    assert "open('/nonexistent/models/model.pkl')" in caplog.text  # the log keeps the traceback


def test_import_failure_with_a_token_names_no_path(tmp_path, make_app):
    (tmp_path / "fatman_entrypoint.py").write_text("import module_that_does_not_exist_anywhere\n")
    client = make_app("", root=tmp_path, auth_token=TOKEN).test_client()
    body = client.get("/ready").get_json()
    assert "ModuleNotFoundError" in body["error"] and "module_that_does_not_exist_anywhere" in body["error"]
    assert "traceback" not in body and str(tmp_path) not in body["error"]
    # A job endpoint says no more without the token (401) and the same short reason with it.
    assert client.post("/api/v1/perform").status_code == 401
    answer = client.post("/api/v1/perform", headers={"X-Racetrack-Auth": TOKEN})
    assert answer.status_code == 503 and str(tmp_path) not in answer.get_data(as_text=True)


def test_probes_keep_the_detail_without_a_token(tmp_path, make_app):
    _failing_job(tmp_path / "job", "open('/nonexistent/models/model.pkl')")
    body = make_app("", root=tmp_path / "job").test_client().get("/ready").get_json()
    assert "/nonexistent/models/model.pkl" in body["error"]
    assert any("open('/nonexistent/models/model.pkl')" in line for line in body["traceback"])
