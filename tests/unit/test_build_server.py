"""The build server's own logic: what tells a client of other code, and its refusal."""

from __future__ import annotations

import marshal
import os
import signal
import socket
from pathlib import Path

import pytest

from racetrack_builder import build_server


def test_the_fingerprint_follows_every_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    module = tmp_path / "sub" / "mod.py"
    module.write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not code")
    monkeypatch.setattr(build_server, "_PACKAGE", str(tmp_path))
    before = build_server.fingerprint()
    assert build_server.fingerprint() == before
    (tmp_path / "notes.txt").write_text("still not code")
    assert build_server.fingerprint() == before
    module.write_text("x = 22\n")
    assert build_server.fingerprint() != before


def test_a_client_of_other_code_is_refused_before_anything_runs() -> None:
    client, server = socket.socketpair()
    ours = build_server.fingerprint()
    request = marshal.dumps({"argv": ["validate"], "env": {"PATH": os.environ.get("PATH", "")}, "cwd": "/",
                             "umask": 0o022, "fingerprint": ours + "\n/x/edited.py 1 2"})
    with open(os.devnull) as null, client, server:
        socket.send_fds(client, [len(request).to_bytes(4, "big") + request], [null.fileno()] * 3)
        handled = (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
        saved = {s: signal.getsignal(s) for s in handled}
        try:
            assert build_server._child(server, ours, ()) == 0
        finally:
            for s, handler in saved.items():
                signal.signal(s, handler)
        answer = client.makefile("rb").readline()
    assert answer.startswith(b"refused it runs another copy of racetrack-build, or one of its modules")


def test_a_refusal_names_the_python_when_it_differs() -> None:
    ours = build_server.fingerprint()
    theirs = "/usr/bin/python3\n3.11.2 (main, ...)\n" + ours.split("\n", 2)[2]
    said = build_server._refusal(theirs, ours)
    assert said.endswith("this command on /usr/bin/python3: start one with this command's Python to use it")


def test_without_the_switch_or_for_the_server_itself_nothing_is_handed_over(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RACETRACK_BUILD_SERVER", raising=False)
    assert build_server.hand_over(["validate"]) is None
    monkeypatch.setenv("RACETRACK_BUILD_SERVER", "1")
    assert build_server.hand_over(["server"]) is None
    assert build_server.hand_over(["validate"]) is None  # no server listens in this test's folder
