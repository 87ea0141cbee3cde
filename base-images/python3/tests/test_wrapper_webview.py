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
