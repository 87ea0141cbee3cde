"""Credentials in git URLs are found by parsing the URL, whatever characters the password holds
(audit finding 1: ``'``, ``"`` and an unencoded ``@`` let them through to labels, messages and --json)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from racetrack_builder import git_urls
from racetrack_builder.manifest import Manifest
from racetrack_builder.render import image_labels
from racetrack_builder.source_files import credential_warnings
from tests import gitrepos

QUOTE = "https://deploy:p4ss'w0rd@host/x.git"
DOUBLE = 'https://deploy:p4ss"w0rd@host/x.git'
AT = "https://deploy:p4ss@w0rd@host/x.git"


@pytest.mark.parametrize(("text", "masked"), [
    (QUOTE, "https://***@host/x.git"),
    (DOUBLE, "https://***@host/x.git"),
    (AT, "https://***@host/x.git"),
    ("https://tok'en@host/x.git", "https://***@host/x.git"),
    ("https://deploy:p#ss?w@host:8443/x.git", "https://***@host:8443/x.git"),
    ("ssh://git:p4ss'w@0rd@host/r.git", "ssh://git:***@host/r.git"),
    ("ssh://git@host/r.git", "ssh://git@host/r.git"),
    # Free text: git's own messages, quoting the URL.
    (f"fatal: unable to access '{AT}/': Could not resolve host: host",
     "fatal: unable to access 'https://***@host/x.git/': Could not resolve host: host"),
    ("fatal: unable to access 'https://deploy:p4ss'w0rd@host': x",
     "fatal: unable to access 'https://***@host': x"),
    ("from https://a:b'c@h/x and http://d:e@f@g/y", "from https://***@h/x and http://***@g/y"),
    # An '@' in the path is not userinfo.
    ("https://host/team/@scope/x.git", "https://host/team/@scope/x.git"),
    ("https://host", "https://host"),
])
def test_mask_credentials_parses_the_url(text: str, masked: str) -> None:
    assert git_urls.mask_credentials(text) == masked


@pytest.mark.parametrize(("remote", "secret"), [
    (QUOTE, "p4ss'w0rd"),
    (DOUBLE, 'p4ss"w0rd'),
    (AT, "p4ss@w0rd"),
    ("https://ghp_t'oken@host/x.git", "ghp_t'oken"),
    ("ssh://git@host/x.git", None),
    ("https://host/x.git", None),
])
def test_url_secret_finds_the_whole_password(remote: str, secret: str | None) -> None:
    assert git_urls.url_secret(remote) == secret


def _manifest(remote: str) -> Manifest:
    return Manifest.model_validate({
        "name": "adder", "owner_email": "owner@example.com", "lang": "python3",
        "git": {"remote": remote}, "python": {"entrypoint_path": "adder.py"},
    })


@pytest.mark.parametrize("remote", [QUOTE, DOUBLE, AT])
def test_image_source_label_never_holds_the_password(remote: str) -> None:
    labels = dict(image_labels(_manifest(remote), None))
    assert labels["org.opencontainers.image.source"] == "https://***@host/x.git"


@pytest.mark.parametrize("remote", [QUOTE, DOUBLE, AT])
def test_manifest_holding_the_credentials_is_warned_about(remote: str, tmp_path: Path) -> None:
    (tmp_path / "fatman.yaml").write_text(f"git:\n  remote: {remote}\n")
    warnings = credential_warnings(tmp_path, ("fatman.yaml",), remote)
    assert warnings and "fatman.yaml hold(s) the credentials" in warnings[0]


# --- end to end: the console script over a real HTTP git server on 127.0.0.1 ----------------------

PASSWORD = "p4ss'w\"0rd"
ENTRY = "class FatmanEntrypoint:\n    def perform(self, x: float) -> float:\n        return x\n"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "racetrack_builder", *args], capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1", "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
                          timeout=120)


def test_render_and_build_json_of_a_clone_never_show_the_password(
    tmp_path: Path, hermetic_git: None, bare_repo_factory: Callable[..., Path]
) -> None:
    base = tmp_path / "remotes"
    base.mkdir()
    with gitrepos.GitHttpServer(base, username="deploy", password=PASSWORD) as server:
        url = server.url("adder.git", credentials=True)
        manifest = (f"name: adder\nowner_email: owner@example.com\nlang: python3\n"
                    f"git:\n  remote: {url}\npython:\n  entrypoint_path: entrypoint.py\n")
        bare_repo_factory("adder.git", {"entrypoint.py": ENTRY, "fatman.yaml": manifest})
        local = tmp_path / "fatman.yaml"
        local.write_text(manifest)

        rendered = _cli("render", str(local))
        assert rendered.returncode == 0, rendered.stderr
        assert f'"org.opencontainers.image.source"="http://***@127.0.0.1:{server.port}/adder.git"' \
            in rendered.stdout
        assert f"cloning http://***@127.0.0.1:{server.port}/adder.git" in rendered.stderr
        assert "fatman.yaml hold(s) the credentials written in git.remote" in rendered.stderr

        # A failing clone (no such repository): the error and the JSON document.
        local.write_text(manifest.replace("adder.git", "missing.git"))
        failed = _cli("build", str(local), "--json")
        assert failed.returncode != 0
        report = json.loads(failed.stdout)
        assert report["ok"] is False
    for output in (rendered.stdout, rendered.stderr, failed.stdout, failed.stderr):
        for fragment in (PASSWORD, "p4ss", "0rd"):
            assert fragment not in output, output


@pytest.mark.parametrize(("remote", "https"), [
    ("https://github.com/you/x.git", "https://github.com/you/x.git"),
    ("git@github.com:you/x.git", "https://github.com/you/x.git"),
    ("ssh://git@gitlab.com:2222/grp/sub/x.git", "https://gitlab.com/grp/sub/x.git"),
    ("ssh://gitlab.com/x", "https://gitlab.com/x"),
    (".", None),
    ("../other", None),
    ("/srv/git/x.git", None),
    ("file:///srv/git/x.git", None),
    ("http://git.example.com/x.git", None),
    ("git@github.com:", None),
])
def test_https_form_of_a_remote(remote: str, https: str | None) -> None:
    assert git_urls.https_form(remote) == https
