"""Static endpoints serve what the job named and nothing else."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

import pytest


@pytest.fixture
def client(make_app, copied_job, tmp_path):
    root = copied_job("static")
    outside = tmp_path / "outside_secret.txt"
    outside.write_text("top secret")
    # symlinks leading out of the served directory and out of the job root
    os.symlink(outside, root / "assets" / "escape.txt")
    os.symlink(root / "secret_dir", root / "assets" / "linked_dir")
    os.symlink(root / "assets" / "style.css", root / "assets" / "inside_link.css")
    return make_app("static", root=root).test_client()


def test_named_files(client):
    response = client.get("/api/v1/xrai")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "explanation: xrai\n"
    manifest = client.get("/api/v1/manifest")
    assert manifest.mimetype == "application/x-yaml"
    assert manifest.get_data(as_text=True).startswith("name: static")
    readme = client.get("/api/v1/docs/readme")
    assert readme.status_code == 200 and readme.get_data(as_text=True) == "# Static job\n"


def test_directory_served_recursively(client):
    css = client.get("/api/v1/assets/style.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert client.get("/api/v1/assets/sub/data.txt").get_data(as_text=True) == "nested file\n"
    assert "index" in client.get("/api/v1/assets/").get_data(as_text=True)
    assert client.get("/api/v1/assets/inside_link.css").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/assets/../secret_dir/secret.txt",
        "/api/v1/assets/%2e%2e/secret_dir/secret.txt",
        "/api/v1/assets/%2E%2E/%2E%2E/etc/passwd",
        "/api/v1/assets/..%2fsecret_dir%2fsecret.txt",
        "/api/v1/assets/sub/../../fatman_entrypoint.py",
        "/api/v1/assets//etc/passwd",
        "/api/v1/assets/%2Fetc%2Fpasswd",
        "/api/v1/assets/..\\secret_dir\\secret.txt",
        "/api/v1/assets/escape.txt",
        "/api/v1/assets/linked_dir/secret.txt",
        "/api/v1/assets/sub/nothing.txt",
        "/api/v1/assets/sub",
        "/api/v1/xrai/extra",
        "/api/v1/missing",
        "/api/v1/secret_dir/secret.txt",
    ],
)
def test_nothing_outside_can_be_read(client, path):
    response = client.get(path)
    assert response.status_code in (404, 308), path
    if response.status_code == 308:  # werkzeug merged slashes: follow it once
        response = client.get(response.headers["Location"])
    assert response.status_code == 404, path
    assert b"do not serve" not in response.get_data() and b"top secret" not in response.get_data()
    assert b"root:" not in response.get_data()


def test_static_target_outside_job_root_is_refused(tmp_path, make_app):
    (tmp_path / "job").mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "job" / "fatman_entrypoint.py").write_text(
        "class E:\n    def perform(self):\n        return 1\n"
        "    def static_endpoints(self):\n        return {'/a': '../secret.txt', '/b': '/etc/passwd'}\n"
    )
    client = make_app("", root=tmp_path / "job").test_client()
    assert client.get("/api/v1/a").status_code == 404
    assert client.get("/api/v1/b").status_code == 404


def test_post_to_static_path_is_not_a_static_read(client):
    response = client.post("/api/v1/xrai", json={})
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert b"explanation" not in response.get_data()


def test_folder_bare_path_redirects_to_its_index_and_openapi_agrees(make_app, copied_job):
    # Like a web server's directory slash: the bare folder path sends the browser to "assets/", so
    # relative links in its index.html (style.css) resolve inside the folder.
    root = copied_job("static")
    (root / "no_index").mkdir()
    (root / "no_index" / "a.txt").write_text("a")
    (root / "fatman_entrypoint.py").write_text(
        (root / "fatman_entrypoint.py")
        .read_text()
        .replace('"/assets": "assets",', '"/assets": "assets", "/plain": "no_index",')
    )
    client = make_app("static", root=root, name="st", version="2").test_client()
    for prefix in ("", "/pub/fatman/st/2"):
        bare = client.get(prefix + "/api/v1/assets?x=1")
        assert bare.status_code == 308
        # Werkzeug before 2.1 makes Location absolute (http://localhost/...): compare path and query.
        location = urlsplit(bare.headers["Location"])
        assert (location.path, location.query) == (prefix + "/api/v1/assets/", "x=1")
        index = client.get(prefix + "/api/v1/assets/")
        assert index.status_code == 200 and "index" in index.get_data(as_text=True)
    # A sub-folder without index.html, and a folder endpoint without one: 404 with or without slash.
    for path in ("/api/v1/assets/sub", "/api/v1/assets/sub/", "/api/v1/plain", "/api/v1/plain/"):
        assert client.get(path).status_code == 404, path
    assert client.get("/api/v1/plain/a.txt").get_data(as_text=True) == "a"
    assert client.get("/api/v1/xrai/").status_code == 404  # a file is no folder
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "/api/v1/assets" not in paths and "/api/v1/plain" not in paths
    assert "get" in paths["/api/v1/assets/"] and "/api/v1/plain/" not in paths
    for folder in ("assets", "plain"):
        operation = paths[f"/api/v1/{folder}/{{path}}"]["get"]
        assert operation["parameters"][0]["name"] == "path"
    assert "/api/v1/xrai" in paths


def test_bad_static_targets_are_warned_about_once_and_left_out_of_openapi(tmp_path, make_app, caplog):
    (tmp_path / "job").mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "job" / "here.txt").write_text("here")
    (tmp_path / "job" / "fatman_entrypoint.py").write_text(
        "class E:\n    def perform(self):\n        return 1\n"
        "    def static_endpoints(self):\n"
        "        return {'/here': 'here.txt', '/missing': 'nope.txt', '/later': 'made_later.txt',\n"
        "                '/up': '../secret.txt', '/abs': '/etc/passwd'}\n"
    )
    with caplog.at_level(logging.WARNING, logger="fatman_wrapper"):
        client = make_app("", root=tmp_path / "job").test_client()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for endpoint, target, fix in (
        ("/missing", "nope.txt", "does not exist"),
        ("/later", "made_later.txt", "does not exist"),
        ("/up", "../secret.txt", "outside the job root"),
        ("/abs", "/etc/passwd", "outside the job root"),
    ):
        about = [w for w in warnings if f"static endpoint '{endpoint}'" in w]
        assert len(about) == 1, (endpoint, warnings)
        assert f"'{target}'" in about[0] and fix in about[0]
        assert "relative to the job's root" in about[0]
    assert not any("'/here'" in w for w in warnings)
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "/api/v1/here" in paths
    for endpoint in ("missing", "later", "up", "abs"):
        assert f"/api/v1/{endpoint}" not in paths
    assert client.get("/api/v1/here").status_code == 200
    # Existence is still checked per request: a file made after the load is served then.
    assert client.get("/api/v1/later").status_code == 404
    (tmp_path / "job" / "made_later.txt").write_text("made later")
    assert client.get("/api/v1/later").get_data(as_text=True) == "made later"
    assert client.get("/api/v1/up").status_code == 404
    assert client.get("/api/v1/abs").status_code == 404
