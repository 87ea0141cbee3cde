"""Fixtures shared by every test suite: real git repositories on disk and a local git daemon.

Kept small and free of docker: suites that need the engine bring their own fixtures. The helpers
behind these fixtures live in ``tests/gitrepos.py`` (documented there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import gitrepos
import pytest
from gitrepos import Files, GitDaemon


@pytest.fixture
def hermetic_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the code under test's git with no system/global configuration, like the fixtures' own git.

    A developer's ``url.insteadOf``, credential helpers or ``core.sshCommand`` must not change what a
    test sees.
    """
    for key, value in gitrepos.GIT_ENV.items():
        if key.startswith("GIT_CONFIG") or key == "GIT_TERMINAL_PROMPT":
            monkeypatch.setenv(key, value)
    for key in ("GIT_SSH_COMMAND", "GIT_SSH", "GIT_ASKPASS", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def git_repo_factory(tmp_path: Path, hermetic_git: None) -> Callable[..., Path]:
    """``make(name, files=None, branch="master") -> Path``: a working repository under ``tmp_path``.

    With ``files`` it has one commit holding them; without, no commit at all.
    """

    def make(name: str, files: Files | None = None, *, branch: str = "master") -> Path:
        return gitrepos.init_repo(tmp_path / name, files, branch=branch)

    return make


@pytest.fixture
def bare_repo_factory(tmp_path: Path, hermetic_git: None) -> Callable[..., Path]:
    """``make(name, files, branch="master", branches=None) -> Path``: a bare repository (a remote)
    at ``tmp_path / "remotes" / name``; see :func:`gitrepos.make_bare_repo`.

    All of them sit in one folder, so the ``git_daemon`` fixture serves them by name.
    """

    def make(name: str, files: Files, *, branch: str = "master",
             branches: Mapping[str, Files] | None = None) -> Path:
        return gitrepos.make_bare_repo(tmp_path / "remotes" / name, files, branch=branch, branches=branches)

    return make


@pytest.fixture
def git_daemon(tmp_path: Path, hermetic_git: None) -> Iterator[GitDaemon]:
    """A ``git daemon`` on 127.0.0.1 serving ``tmp_path / "remotes"`` (where ``bare_repo_factory``
    puts repositories): ``git_daemon.url("adder.git")`` is a git:// URL to clone."""
    base = tmp_path / "remotes"
    base.mkdir(exist_ok=True)
    with GitDaemon(base) as daemon:
        yield daemon


@pytest.fixture
def git_http(tmp_path: Path, hermetic_git: None) -> Iterator[gitrepos.GitHttpServer]:
    """Smart HTTP (``git http-backend``) on 127.0.0.1 serving ``tmp_path / "remotes"``, behind basic
    auth as user ``ci`` with password ``s3cret-token``: ``git_http.url("adder.git", credentials=True)``."""
    base = tmp_path / "remotes"
    base.mkdir(exist_ok=True)
    with gitrepos.GitHttpServer(base, username="ci", password="s3cret-token") as server:
        yield server
