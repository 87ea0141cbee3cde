"""Git LFS files of the job (racetrack_builder/lfs.py) with real git and real git-lfs: a clone or a
--local build fetches those of git.directory only; a missing git-lfs is an error only for a job that
needs it; objects that cannot be fetched leave pointers, named with git-lfs's own (masked) words."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from racetrack_builder.errors import EnvironmentFailure
from racetrack_builder.lfs import is_lfs_pointer
from racetrack_builder.manifest import Manifest
from racetrack_builder.source import open_source
from tests import gitrepos
from tests.reporter import Recorded

pytestmark = [
    pytest.mark.slow,  # some ten seconds in all: every test makes a remote and pushes LFS objects
    pytest.mark.usefixtures("hermetic_git"),
    pytest.mark.skipif(shutil.which("git-lfs") is None,
                       reason="needs git-lfs (scripts/setup.sh installs it)"),
]

MODEL = b"the job's model weights\n" * 40
HUGE = b"an unrelated huge data set\n" * 40
ADDER = "class AdderEntrypoint:\n    def perform(self, a: float, b: float) -> float:\n        return a + b\n"
FILES: dict[str, str | bytes | gitrepos.Symlink] = {
    "jobs/adder/adder.py": ADDER,
    "jobs/adder/fatman.yaml": "name: adder\n",
    "jobs/adder/model.bin": MODEL,
    # A sibling whose name starts like git.directory: "--include jobs/adder" must not take it.
    "jobs/adder-data/huge.bin": HUGE,
}
TOKEN = "s3cret-token"


def make_manifest(remote: str = "unused", *, directory: str = "jobs/adder") -> Manifest:
    return Manifest.model_validate({
        "name": "adder",
        "owner_email": "owner@example.com",
        "lang": "python3:latest",
        "git": {"remote": remote, "branch": "master", "directory": directory},
        "python": {"entrypoint_path": "adder.py", "entrypoint_class": "AdderEntrypoint"},
    })


@pytest.fixture
def manifest_path(tmp_path: Path) -> Path:
    path = tmp_path / "client" / "fatman.yaml"
    path.parent.mkdir()
    path.write_text("name: adder\n")
    return path


@pytest.fixture
def lfs_remote(tmp_path: Path) -> Path:
    return gitrepos.make_lfs_bare_repo(tmp_path / "remotes" / "adder.git", FILES, lfs=["*.bin"])


@pytest.fixture
def without_git_lfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH holding git and nothing else, as on a host where git-lfs was never installed."""
    bin_dir = tmp_path / "git-only-bin"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git is not None
    (bin_dir / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.fixture
def users_lfs_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A global git configuration as `git lfs install` leaves it: every checkout runs git-lfs."""
    config = tmp_path / "user.gitconfig"
    config.write_text('[filter "lfs"]\n' + "".join(
        f"\t{key.removeprefix('filter.lfs.')} = {value}\n" for key, value in gitrepos.LFS_FILTER.items()))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    return config


def lfs_warnings(reported: Recorded) -> list[str]:
    return [w for w in reported.warnings if "Git LFS pointer" in w]


def local_clone(remote: Path, dest: Path) -> Path:
    """A working tree cloned without git-lfs set up (GIT_ENV hides any global filter): pointers."""
    gitrepos.git("clone", "--quiet", remote.as_uri(), str(dest), cwd=dest.parent)
    assert is_lfs_pointer(dest / "jobs/adder/model.bin")
    return dest


# --- a clone --------------------------------------------------------------------------------------


@pytest.mark.parametrize("user_config", [False, True], ids=["no-lfs-config", "users-git-lfs-install"])
def test_clone_fetches_the_lfs_files_of_git_directory_only(
        lfs_remote: Path, manifest_path: Path, reported: Recorded, user_config: bool,
        request: pytest.FixtureRequest) -> None:
    if user_config:
        request.getfixturevalue("users_lfs_config")  # a smudging clone would fetch huge.bin too
    with open_source(make_manifest(lfs_remote.as_uri()), manifest_path) as src:
        assert (src.job_root / "model.bin").read_bytes() == MODEL
        assert "model.bin" in src.files
        outside = src.repo_root / "jobs/adder-data/huge.bin"
        assert is_lfs_pointer(outside)
        assert gitrepos.lfs_object(src.repo_root / ".git", MODEL).is_file()
        assert not gitrepos.lfs_object(src.repo_root / ".git", HUGE).exists()  # never downloaded
    assert f"fetching 1 Git LFS file of jobs/adder from {lfs_remote.as_uri()}" in reported.messages
    assert any(m.startswith("fetched 1 Git LFS file (") for m in reported.messages), reported.messages
    assert reported.warnings == []


def test_repository_root_as_git_directory_fetches_every_lfs_file(lfs_remote: Path, manifest_path: Path,
                                                                 reported: Recorded) -> None:
    with open_source(make_manifest(lfs_remote.as_uri(), directory="."), manifest_path) as src:
        assert (src.job_root / "jobs/adder/model.bin").read_bytes() == MODEL
        assert (src.job_root / "jobs/adder-data/huge.bin").read_bytes() == HUGE
    assert "fetching 2 Git LFS files of . from " + lfs_remote.as_uri() in reported.messages


# --- --local --------------------------------------------------------------------------------------


def test_local_tree_holding_pointers_gets_them_fetched_and_stays_clean(
        lfs_remote: Path, tmp_path: Path, reported: Recorded) -> None:
    work = local_clone(lfs_remote, tmp_path / "work")
    with open_source(make_manifest(lfs_remote.as_uri()), work / "jobs/adder/fatman.yaml", local=True) as src:
        assert (work / "jobs/adder/model.bin").read_bytes() == MODEL  # checked out in the tree itself
        assert is_lfs_pointer(work / "jobs/adder-data/huge.bin")
        assert src.dirty is False  # the fetched file matches its pointer in HEAD
    assert "fetching 1 Git LFS file of jobs/adder into the working tree (git lfs pull --include " \
           "jobs/adder)" in reported.messages
    assert lfs_warnings(reported) == []
    # Cloned without git-lfs set up: plain `git status` would show model.bin modified.
    (setup,) = reported.warnings
    assert "run `git lfs install` once" in setup


def test_local_tree_with_content_already_needs_no_fetch(lfs_remote: Path, tmp_path: Path,
                                                         reported: Recorded) -> None:
    work = local_clone(lfs_remote, tmp_path / "work")
    gitrepos.enable_lfs(work, [])
    gitrepos.git("lfs", "pull", cwd=work)
    with open_source(make_manifest(lfs_remote.as_uri()), work / "jobs/adder/fatman.yaml", local=True) as src:
        assert src.dirty is False
    assert not any("Git LFS" in m for m in reported.messages), reported.messages


# --- git-lfs missing ------------------------------------------------------------------------------


def _assert_names_the_install(err: EnvironmentFailure) -> None:
    assert err.exit_code == 3
    assert "git-lfs is not installed" in err.message
    assert err.hint is not None
    assert "apt-get install git-lfs" in err.hint and "brew install git-lfs" in err.hint
    assert "git lfs install" in err.hint


def test_missing_git_lfs_fails_a_clone_naming_the_install(lfs_remote: Path, manifest_path: Path,
                                                          without_git_lfs: None) -> None:
    with pytest.raises(EnvironmentFailure) as caught, \
            open_source(make_manifest(lfs_remote.as_uri()), manifest_path):
        pass
    _assert_names_the_install(caught.value)
    assert "'jobs/adder' holds Git LFS files (model.bin)" in caught.value.message


def test_missing_git_lfs_with_the_users_lfs_config_fails_the_clone_alike(
        lfs_remote: Path, manifest_path: Path, users_lfs_config: Path, without_git_lfs: None) -> None:
    # git itself runs git-lfs on checkout then, and fails before we look at any file.
    with pytest.raises(EnvironmentFailure) as caught, \
            open_source(make_manifest(lfs_remote.as_uri()), manifest_path):
        pass
    _assert_names_the_install(caught.value)


def test_missing_git_lfs_fails_a_local_build_naming_the_install(lfs_remote: Path, tmp_path: Path,
                                                                without_git_lfs: None) -> None:
    work = local_clone(lfs_remote, tmp_path / "work")
    with pytest.raises(EnvironmentFailure) as caught, \
            open_source(make_manifest(), work / "jobs/adder/fatman.yaml", local=True):
        pass
    _assert_names_the_install(caught.value)


def test_lfs_attributes_alone_need_git_lfs(bare_repo_factory: Callable[..., Path], manifest_path: Path,
                                           without_git_lfs: None) -> None:
    remote = bare_repo_factory("attrs.git", {**FILES, "jobs/adder/.gitattributes": "*.bin filter=lfs\n"})
    with pytest.raises(EnvironmentFailure) as caught, \
            open_source(make_manifest(remote.as_uri()), manifest_path):
        pass
    _assert_names_the_install(caught.value)
    assert "(model.bin)" in caught.value.message


def test_a_repository_without_lfs_needs_no_git_lfs(bare_repo_factory: Callable[..., Path], tmp_path: Path,
                                                   manifest_path: Path, without_git_lfs: None,
                                                   reported: Recorded) -> None:
    # LFS outside git.directory does not count either.
    files = {**FILES, "jobs/adder/model.bin": MODEL, ".gitattributes": "jobs/adder-data/** filter=lfs\n"}
    remote = bare_repo_factory("plain.git", files)
    with open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        assert (src.job_root / "model.bin").read_bytes() == MODEL
    work = gitrepos.init_repo(tmp_path / "work", files)
    with open_source(make_manifest(), work / "jobs/adder/fatman.yaml", local=True) as src:
        assert "model.bin" in src.files
    assert reported.warnings == []
    assert not any("LFS" in m for m in reported.messages)


# --- objects that cannot be fetched ---------------------------------------------------------------


def test_objects_missing_on_the_remote_leave_pointers_named_with_git_lfs_words(
        tmp_path: Path, manifest_path: Path, reported: Recorded) -> None:
    remote = gitrepos.make_lfs_bare_repo(tmp_path / "remotes" / "unpushed.git", FILES, lfs=["*.bin"],
                                         push_objects=False)
    with open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        assert is_lfs_pointer(src.job_root / "model.bin")
        assert "model.bin" in src.files
    (warning,) = lfs_warnings(reported)
    assert warning.startswith("model.bin: Git LFS pointer file(s), not their content; the image holds the "
                              "pointers (commit the files themselves, or fetch them in the job at start)")
    assert f"git lfs pull from {remote.as_uri()} failed: " in warning
    assert "remote missing object" in warning  # git-lfs's own words
    assert "`git lfs push --all <remote>`" in warning
    assert warning.count(remote.as_uri() + "'") == 1  # git-lfs's quotes kept


def _lfs_config_remote(tmp_path: Path, lfs_url: str) -> Path:
    # .lfsconfig sends git-lfs to another server than git.remote, as many hosted setups do.
    files = {**FILES, ".lfsconfig": f"[lfs]\n\turl = {lfs_url}\n"}
    return gitrepos.make_lfs_bare_repo(tmp_path / "remotes" / "elsewhere.git", files, lfs=["*.bin"],
                                       push_objects=False)


def test_unreachable_lfs_server_is_named_with_credentials_masked(tmp_path: Path, manifest_path: Path,
                                                                 reported: Recorded) -> None:
    port = gitrepos.closed_port()
    remote = _lfs_config_remote(tmp_path, f"http://ci:{TOKEN}@127.0.0.1:{port}/adder.git/info/lfs")
    with open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        assert is_lfs_pointer(src.job_root / "model.bin")
    (warning,) = lfs_warnings(reported)
    assert "connection refused" in warning
    assert f"http://***@127.0.0.1:{port}" in warning
    assert "check your network or VPN" in warning
    assert not any(TOKEN in m for m in reported.messages)


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="lfs"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture
def refusing_lfs_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("credentials", [True, False], ids=["refused-token", "no-credentials"])
def test_lfs_server_refusing_credentials_names_the_fix_never_the_token(
        tmp_path: Path, manifest_path: Path, reported: Recorded, refusing_lfs_server: int,
        credentials: bool) -> None:
    auth = f"ci:{TOKEN}@" if credentials else ""
    remote = _lfs_config_remote(tmp_path, f"http://{auth}127.0.0.1:{refusing_lfs_server}/adder.git/info/lfs")
    with open_source(make_manifest(remote.as_uri()), manifest_path) as src:  # never prompts
        assert is_lfs_pointer(src.job_root / "model.bin")
    (warning,) = lfs_warnings(reported)
    assert "git lfs pull from " in warning
    assert "git credential helper" in warning
    assert not any(TOKEN in m for m in reported.messages)
