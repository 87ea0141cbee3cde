"""Fixtures shared by every test suite: real git repositories on disk and a local git daemon, and
the rule that puts the markers on tests.

Kept small and free of docker: suites that need the engine bring their own fixtures. The helpers
behind these fixtures live in ``tests/gitrepos.py`` (documented there).

Markers are given by what a test uses, not by hand per module, so none is missed: a test that needs
the ``docker_client`` fixture (directly or through another fixture) is ``docker``; every test of the
integration suite, and every ``docker`` one, is ``slow``. The fast part is
``pytest -m "not docker and not slow"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from racetrack_builder.reporting import reporting_to
from tests import gitrepos
from tests.gitrepos import Files, GitDaemon
from tests.reporter import Recorded

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses_engine = "docker_client" in getattr(item, "fixturenames", ())
        if uses_engine:
            item.add_marker(pytest.mark.docker)
        if uses_engine or Path(str(item.path)).is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def own_serving_records(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The records of ``serve`` and ``run`` (serving.py) in a folder of each test's: a job a
    developer serves on this machine, or another test, never answers a test's ``call``."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime")))


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


@pytest.fixture
def reported() -> Iterator[Recorded]:
    """What the code under test reports (progress, warnings, build steps), recorded."""
    with reporting_to(Recorded()) as recorder:
        assert isinstance(recorder, Recorded)
        yield recorder
