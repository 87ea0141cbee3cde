"""Path traversal against the real server: raw request lines, no client-side normalisation.

Every attempt to leave a served folder (static endpoints, the webview's static/ folder, Swagger UI's
assets) answers 404, whatever the encoding: the test client of Flask cleans some paths up before
they reach the app, so these go over a plain socket exactly as written.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from wrapper_server import Server, running_server
from wrapper_support import job_path

pytestmark = pytest.mark.slow

SECRETS = (b"top secret", b"do not serve", b"root:", b"class StaticEntrypoint", b"class WebviewEntrypoint")

# Ways to write "one folder up" and "/": each is combined with each target below.
UP = [
    "../",
    "..%2f",
    "..%2F",
    "%2e%2e/",
    "%2E%2E%2F",
    ".%2e/",
    "%2e./",
    "....//",
    "...//",
    "..\\",
    "..%5c",
    "%2e%2e%5c",
    "%252e%252e%252f",  # doubled encoding
    "%25%32%65%25%32%65/",
    "%c0%ae%c0%ae/",  # overlong UTF-8 dots
    "..%c0%af",
    "..;/",
    "./../",
    "..%00/",
    "%2e%2e%00/",
]
TARGETS = ["secret_dir/secret.txt", "../outside_secret.txt", "fatman_entrypoint.py", "etc/passwd"]
# Whole paths under a served prefix that are not "up" sequences.
OTHERS = [
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "%252fetc%252fpasswd",
    "\\etc\\passwd",
    "%5cetc%5cpasswd",
    "C:%5cwindows%5cwin.ini",
    "style.css%00.txt",
    "style.css%00",
    "escape.txt",
    "escape_dir/secret.txt",
    "sub/../../secret_dir/secret.txt",
    "sub/%2e%2e/%2e%2e/secret_dir/secret.txt",
    "sub%2f..%2f..%2fsecret_dir%2fsecret.txt",
    "file:///etc/passwd",
]


def raw_get(url: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """Send ``GET target`` exactly as given over a new connection; returns status, headers, body."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode("latin-1")
        )
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def assert_not_served(url: str, target: str) -> None:
    """404, possibly after redirects that merely tidy the path (followed up to 3 times)."""
    for _ in range(4):
        status, headers, body = raw_get(url, target)
        assert not any(secret in body for secret in SECRETS), (target, body[:200])
        if status in (301, 302, 307, 308):
            location = urlsplit(headers["location"])
            target = location.path + (f"?{location.query}" if location.query else "")
            continue
        assert status == 404, (target, status, body[:200])
        return
    pytest.fail(f"{target}: too many redirects")


def attempts(prefix: str) -> list[str]:
    found = [prefix + up * depth + target for up in UP for depth in (1, 2, 3) for target in TARGETS]
    return found + [prefix + other for other in OTHERS]


@pytest.fixture(scope="module")
def traversal_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static and webview jobs side by side, with a secret beside them and symlinks leading out."""
    base = tmp_path_factory.mktemp("traversal")
    (base / "outside_secret.txt").write_text("top secret\n")
    for name in ("static", "webview"):
        shutil.copytree(job_path(name), base / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(base / "static" / "secret_dir", base / "webview" / "secret_dir")
    for served in (base / "static" / "assets", base / "webview" / "static"):
        os.symlink(base / "outside_secret.txt", served / "escape.txt")
        os.symlink(served.parent / "secret_dir", served / "escape_dir")
    return base


@pytest.fixture(scope="module")
def static_server(traversal_root: Path) -> Iterator[Server]:
    with running_server(traversal_root / "static", env={"FATMAN_WORKERS": "1"}) as server:
        yield server


@pytest.fixture(scope="module")
def webview_server(traversal_root: Path) -> Iterator[Server]:
    with running_server(traversal_root / "webview", env={"FATMAN_WORKERS": "1"}) as server:
        yield server


def test_served_files_are_reachable(static_server, webview_server):
    # the same raw requests do reach what is meant to be served, so the 404s below mean something
    assert raw_get(static_server.url, "/api/v1/assets/style.css")[0] == 200
    assert raw_get(static_server.url, "/api/v1/assets/sub/data.txt")[0] == 200
    assert raw_get(webview_server.url, "/api/v1/webview/static/style.css")[0] == 200
    assert raw_get(webview_server.url, "/webview/static/style.css")[0] == 200
    assert raw_get(webview_server.url, "/docs/static/swagger-ui.css")[0] == 200


def test_static_endpoint_traversal(static_server):
    tried = attempts("/api/v1/assets/") + attempts("/api/v1/xrai/") + attempts("/api/v1/")
    for target in tried:
        assert_not_served(static_server.url, target)
    assert len(tried) > 700


def test_webview_static_traversal(webview_server):
    tried = attempts("/api/v1/webview/static/") + attempts("/webview/static/") + attempts("/docs/static/")
    for target in tried:
        assert_not_served(webview_server.url, target)
    assert len(tried) > 600
