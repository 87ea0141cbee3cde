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
