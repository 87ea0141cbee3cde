"""The job's WSGI webview app, mounted at /api/v1/webview with its static/ folder."""

from __future__ import annotations


def test_webview_index_gets_its_base_url(make_app):
    client = make_app("webview").test_client()
    response = client.get("/api/v1/webview/")
    assert response.status_code == 200
    assert "Webview at /api/v1/webview" in response.get_data(as_text=True)


def test_webview_post(make_app):
    client = make_app("webview").test_client()
    response = client.post("/api/v1/webview/postme", json={"a": 1})
    assert response.get_json() == {"hello": {"a": 1}}


def test_webview_without_slash_redirects(make_app):
    client = make_app("webview").test_client()
    response = client.get("/api/v1/webview")
    assert response.status_code in (301, 308)
    assert response.headers["Location"].endswith("/api/v1/webview/")


def test_webview_static_folder(make_app):
    client = make_app("webview").test_client()
    response = client.get("/api/v1/webview/static/style.css")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "h1 { color: blue; }\n"
    assert client.get("/api/v1/webview/static/../fatman_entrypoint.py").status_code == 404
    assert client.get("/api/v1/webview/static/%2e%2e/fatman_entrypoint.py").status_code == 404


def test_webview_under_pub_prefix(make_app):
    client = make_app("webview", name="ui", version="0.1.0").test_client()
    prefix = "/pub/fatman/ui/0.1.0"
    page = client.get(prefix + "/api/v1/webview/")
    assert page.status_code == 200
    assert f"Webview at {prefix}/api/v1/webview" in page.get_data(as_text=True)
    assert f'href="{prefix}/api/v1/webview/static/style.css"' in page.get_data(as_text=True)
    assert client.get(prefix + "/api/v1/webview/static/style.css").status_code == 200
    # reached at the root too, with the same app
    assert client.get("/api/v1/webview/").status_code == 200
    assert client.post(prefix + "/api/v1/webview/postme", json=[1]).get_json() == {"hello": [1]}


def test_job_without_webview(make_app):
    client = make_app("adder").test_client()
    response = client.get("/api/v1/webview/")
    assert response.status_code == 404
    assert "webview_app" in response.get_json()["error"]


def test_static_folder_also_at_webview_static_as_the_spec_says(make_app):
    # Racetrack's python3 job-type documentation promises /webview/static/; /api/v1/webview/static/
    # keeps working too.
    client = make_app("webview", name="ui", version="0.1.0").test_client()
    for prefix in ("", "/pub/fatman/ui/0.1.0"):
        response = client.get(prefix + "/webview/static/style.css")
        assert response.status_code == 200, prefix
        assert response.get_data(as_text=True) == "h1 { color: blue; }\n"
        assert response.mimetype == "text/css"
        assert client.head(prefix + "/webview/static/style.css").status_code == 200
    for path in (
        "/webview/static/../fatman_entrypoint.py",
        "/webview/static/%2e%2e/fatman_entrypoint.py",
        "/webview/static/nothing.css",
        "/webview/static/",
        "/webview/static",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["type"] == "NotFound"
    post = client.post("/webview/static/style.css")
    assert post.status_code == 405 and "GET" in post.headers["Allow"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'endpoint="/webview/static",status="200"' in metrics


def test_webview_static_needs_a_webview_like_its_api_path(make_app):
    client = make_app("adder").test_client()
    assert client.get("/webview/static/style.css").status_code == 404
    assert client.get("/api/v1/webview/static/style.css").status_code == 404


def test_webview_static_is_public_when_the_webview_is(make_app):
    # The same files under another path: as open, and as closed, as /api/v1/webview/static.
    from fatman_wrapper.config import parse_public_endpoints

    token = "t0ken"
    open_app = make_app(
        "webview", auth_token=token, public_endpoints=parse_public_endpoints("/api/v1/webview")
    )
    assert open_app.test_client().get("/webview/static/style.css").status_code == 200
    closed = make_app(
        "webview", auth_token=token, public_endpoints=parse_public_endpoints("/api/v1/perform")
    ).test_client()
    assert closed.get("/webview/static/style.css").status_code == 401
    assert closed.get("/webview/static/style.css", headers={"X-Racetrack-Auth": token}).status_code == 200
    static_only = make_app(
        "webview", auth_token=token, public_endpoints=parse_public_endpoints("/api/v1/webview/static")
    ).test_client()
    assert static_only.get("/webview/static/style.css").status_code == 200
    assert static_only.get("/api/v1/webview/").status_code == 401
