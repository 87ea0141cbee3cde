"""racetrack_builder.source against real git repositories (tests/gitrepos.py): clones through file://,
plain paths, a loopback git daemon and loopback HTTP servers, and --local working trees."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from racetrack_builder import git_transport, git_urls
from racetrack_builder.errors import AuthenticationRefused, RemoteUnreachable, SourceError
from racetrack_builder.job_files import check_job_files
from racetrack_builder.manifest import Manifest
from racetrack_builder.source import JobSource, open_source
from tests import gitrepos
from tests.gitrepos import GitDaemon, Symlink
from tests.reporter import Recorded

pytestmark = pytest.mark.usefixtures("hermetic_git")

ADDER = """\
class AdderEntrypoint:
    def perform(self, a: float, b: float) -> float:
        return a + b
"""

JOB_FILES: dict[str, str | bytes | Symlink] = {
    "README.md": "the repository's readme\n",
    "docs/guide.md": "a guide\n",
    "jobs/adder/fatman.yaml": "name: adder\n",
    "jobs/adder/adder.py": ADDER,
    "jobs/adder/requirements.txt": "numpy==1.26.4\n",
    "jobs/adder/data/model.txt": "weights\n",
    "jobs/other/other.py": "class Other: ...\n",
}


def make_manifest(remote: str = "unused", *, branch: str = "master", directory: str = "jobs/adder",
                  entrypoint_path: str = "adder.py", entrypoint_class: str | None = "AdderEntrypoint",
                  requirements_path: str | None = "requirements.txt", **extra: Any) -> Manifest:
    python: dict[str, Any] = {"entrypoint_path": entrypoint_path}
    if entrypoint_class is not None:
        python["entrypoint_class"] = entrypoint_class
    if requirements_path is not None:
        python["requirements_path"] = requirements_path
    manifest = Manifest.model_validate({
        "name": "adder",
        "owner_email": "owner@example.com",
        "lang": "python3:latest",
        "git": {"remote": "unused" if remote.startswith("git://") else remote,
                "branch": branch, "directory": directory},
        "python": python,
        **extra,
    })
    if remote.startswith("git://"):
        # The manifest accepts https, ssh, file:// and paths only; git:// from the loopback git daemon
        # is a test transport for "a remote over the network", so it bypasses that validation.
        manifest = manifest.model_copy(update={"git": manifest.git.model_copy(update={"remote": remote})})
    return manifest


@pytest.fixture
def workspace_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temp folder for the clone workspaces, so a test can see whether one is left behind."""
    folder = tmp_path / "workspaces"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def manifest_path(tmp_path: Path) -> Path:
    """Where the manifest sits on "this machine" (relative remotes and secret files start here)."""
    path = tmp_path / "client" / "fatman.yaml"
    path.parent.mkdir()
    path.write_text("name: adder\n")
    return path


@pytest.fixture
def remote(bare_repo_factory: Callable[..., Path]) -> Path:
    return bare_repo_factory("adder.git", JOB_FILES, branches={
        "dev": {"jobs/adder/adder.py": ADDER.replace("a + b", "b + a"), "jobs/adder/dev.txt": "dev only\n"},
    })


def is_shallow(repo_root: Path) -> bool:
    return gitrepos.git("rev-parse", "--is-shallow-repository", cwd=repo_root) == "true"


# --- clones ---------------------------------------------------------------------------------------


def test_clone_file_url_gives_job_files_commit_and_a_shallow_checkout(
        remote: Path, manifest_path: Path, workspace_tmp: Path, reported: Recorded) -> None:
    head = gitrepos.git("rev-parse", "master", cwd=remote)
    messages = reported.messages
    with open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        assert src.files == ("adder.py", "data/model.txt", "fatman.yaml", "requirements.txt")
        assert src.commit == head
        assert src.branch == "master"
        assert src.remote == remote.as_uri()
        assert src.job_root == (src.repo_root / "jobs" / "adder").resolve()
        assert src.directory == "jobs/adder"
        assert src.dirty is False and src.local is False
        assert src.repo_root.is_relative_to(workspace_tmp)
        assert src.repo_root.parent.name.startswith("racetrack-build-")
        assert (src.job_root / "adder.py").read_text() == ADDER
        assert is_shallow(src.repo_root)
        refs = gitrepos.git("for-each-ref", "--format=%(refname)", "refs/remotes", cwd=src.repo_root).split()
        assert [r for r in refs if not r.endswith("/HEAD")] == ["refs/remotes/origin/master"]  # single branch
        check_job_files(make_manifest(remote.as_uri()), src)
    assert list(workspace_tmp.iterdir()) == []
    assert messages[0] == f"cloning {remote.as_uri()} (branch master)"
    assert messages[1] == f"cloned {remote.as_uri()}@master at {head[:12]}"


def test_relative_local_path_is_relative_to_the_manifest_folder_and_still_shallow(
        remote: Path, manifest_path: Path) -> None:
    relative = os.path.relpath(remote, manifest_path.parent)
    assert relative.startswith("..")
    # Run from elsewhere: the path must not be taken relative to the process's working directory.
    with open_source(make_manifest(relative), manifest_path) as src:
        assert src.remote == relative
        assert src.commit == gitrepos.git("rev-parse", "master", cwd=remote)
        # A plain path would make git copy the whole object store; going through file:// keeps it shallow.
        assert is_shallow(src.repo_root)


def test_absolute_local_path_to_a_working_repository(git_repo_factory: Callable[..., Path],
                                                     manifest_path: Path) -> None:
    work = git_repo_factory("upstream", JOB_FILES)
    gitrepos.commit_files(work, {"jobs/adder/second.txt": "2\n"})
    with open_source(make_manifest(str(work)), manifest_path) as src:
        assert "second.txt" in src.files
        assert is_shallow(src.repo_root)
        assert gitrepos.git("rev-list", "--count", "HEAD", cwd=src.repo_root) == "1"


def test_branch_other_than_master(remote: Path, manifest_path: Path) -> None:
    dev_head = gitrepos.git("rev-parse", "dev", cwd=remote)
    with open_source(make_manifest(remote.as_uri(), branch="dev"), manifest_path) as src:
        assert src.commit == dev_head
        assert src.branch == "dev"
        assert "dev.txt" in src.files
        assert "b + a" in (src.job_root / "adder.py").read_text()


def test_clone_through_git_daemon(remote: Path, git_daemon: GitDaemon, manifest_path: Path) -> None:
    url = git_daemon.url("adder.git")
    assert url.startswith("git://127.0.0.1:")
    with open_source(make_manifest(url, branch="dev"), manifest_path) as src:
        assert src.commit == gitrepos.git("rev-parse", "dev", cwd=remote)
        assert src.remote == url
        assert is_shallow(src.repo_root)


def test_clone_over_http_with_a_token_in_the_url(remote: Path, git_http: gitrepos.GitHttpServer,
                                                 manifest_path: Path, reported: Recorded) -> None:
    url = git_http.url("adder.git", credentials=True)
    assert "s3cret-token@" in url
    messages = reported.messages
    with open_source(make_manifest(url), manifest_path) as src:
        assert src.commit == gitrepos.git("rev-parse", "master", cwd=remote)
        assert src.remote == f"http://***@127.0.0.1:{git_http.port}/adder.git"
        assert is_shallow(src.repo_root)
        assert "adder.py" in src.files
    assert messages and not any("s3cret" in m for m in messages)


@pytest.mark.parametrize("userinfo", ["", "ci:wrong-s3cret@"])
def test_http_remote_refusing_credentials(remote: Path, git_http: gitrepos.GitHttpServer,
                                          manifest_path: Path, workspace_tmp: Path, userinfo: str) -> None:
    url = f"http://{userinfo}127.0.0.1:{git_http.port}/adder.git"
    with pytest.raises(AuthenticationRefused) as info, open_source(make_manifest(url), manifest_path):
        pass
    shown = f"http://{'***@' if userinfo else ''}127.0.0.1:{git_http.port}/adder.git"
    what = "refused our credentials" if userinfo else "needs credentials and git may not prompt for them here"
    assert info.value.message.startswith(f"git.remote: {shown} {what}: fatal: ")
    assert "s3cret" not in str(info.value) and "s3cret" not in str(info.value.__cause__)
    assert git_http.requests <= 2  # no prompt, no retry loop
    assert list(workspace_tmp.iterdir()) == []


def test_http_remote_without_that_repository(git_http: gitrepos.GitHttpServer, manifest_path: Path) -> None:
    with pytest.raises(RemoteUnreachable, match="cannot reach"), \
            open_source(make_manifest(git_http.url("missing.git", credentials=True)), manifest_path):
        pass


def test_clone_sees_a_new_push(remote: Path, manifest_path: Path) -> None:
    sha = gitrepos.push_files(remote, {"jobs/adder/new.py": "x = 1\n"}, remove=("jobs/adder/data",))
    with open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        assert src.commit == sha
        assert src.files == ("adder.py", "fatman.yaml", "new.py", "requirements.txt")


def test_repository_root_as_job_root(remote: Path, manifest_path: Path) -> None:
    with open_source(make_manifest(remote.as_uri(), directory="."), manifest_path) as src:
        assert src.job_root == src.repo_root.resolve()
        assert src.directory == "."
        assert "README.md" in src.files and "jobs/adder/adder.py" in src.files
        assert not any(f.startswith(".git/") for f in src.files)


def test_missing_branch_lists_the_remote_branches(remote: Path, manifest_path: Path,
                                                 workspace_tmp: Path) -> None:
    with pytest.raises(SourceError) as info:
        with open_source(make_manifest(remote.as_uri(), branch="deve"), manifest_path):
            pytest.fail("must not get here")
    err = info.value
    assert err.exit_code == 2
    assert err.message == f"git.branch: branch 'deve' does not exist in {remote.as_uri()}"
    assert err.hint == "did you mean 'dev'? set git.branch to one of: dev, master"
    assert list(workspace_tmp.iterdir()) == []


def test_empty_repository_says_push_first(tmp_path: Path, manifest_path: Path) -> None:
    empty = tmp_path / "empty.git"
    gitrepos.git("init", "--quiet", "--bare", str(empty), cwd=tmp_path)
    with pytest.raises(SourceError) as info, open_source(make_manifest(empty.as_uri()), manifest_path):
        pass
    assert info.value.hint == "the repository has no branches yet: push a commit first"


@pytest.mark.parametrize(("directory", "expected_hint"), [
    ("jobs/addr", "did you mean 'jobs/adder'? directories in jobs: adder, other"),
    ("job", "did you mean 'jobs'? directories at the top: docs, jobs"),
    ("nothing/here", "directories at the top: docs, jobs"),
])
def test_missing_directory_names_what_exists(remote: Path, manifest_path: Path, directory: str,
                                             expected_hint: str) -> None:
    with pytest.raises(SourceError) as info, open_source(make_manifest(remote.as_uri(), directory=directory),
                                                         manifest_path):
        pass
    assert info.value.message == f"git.directory: {directory!r} does not exist in {remote.as_uri()}@master"
    assert info.value.hint == expected_hint


def test_directory_that_is_a_file(remote: Path, manifest_path: Path) -> None:
    with pytest.raises(SourceError, match="'README.md' .* is not a directory"), \
            open_source(make_manifest(remote.as_uri(), directory="README.md"), manifest_path):
        pass


def test_closed_port_is_remote_unreachable(manifest_path: Path, workspace_tmp: Path) -> None:
    url = f"git://127.0.0.1:{gitrepos.closed_port()}/adder.git"
    with pytest.raises(RemoteUnreachable) as info, open_source(make_manifest(url), manifest_path):
        pass
    assert info.value.exit_code == 3
    assert info.value.message.startswith(f"git.remote: cannot reach {url}: ")
    assert "Connection refused" in info.value.message
    assert "check the URL in git.remote" in (info.value.hint or "")
    assert list(workspace_tmp.iterdir()) == []


def test_missing_local_repository(manifest_path: Path) -> None:
    with pytest.raises(RemoteUnreachable, match=r"local repository '\.\./nowhere\.git' does not exist"), \
            open_source(make_manifest("../nowhere.git"), manifest_path):
        pass


def test_folder_that_is_not_a_repository(tmp_path: Path, manifest_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(RemoteUnreachable, match="does not appear to be a git repository"), \
            open_source(make_manifest((tmp_path / "plain").as_uri()), manifest_path):
        pass


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every request with 401, as a private https remote does without credentials."""

    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture
def refusing_http() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_refused_credentials_fail_at_once_and_never_prompt(refusing_http: int, manifest_path: Path) -> None:
    url = f"http://127.0.0.1:{refusing_http}/adder.git"
    with pytest.raises(AuthenticationRefused) as info, open_source(make_manifest(url), manifest_path):
        pass
    assert info.value.exit_code == 3
    assert "needs credentials and git may not prompt for them here" in info.value.message
    assert "terminal prompts disabled" in info.value.message
    assert "credential helper" in (info.value.hint or "")


@pytest.mark.parametrize("userinfo", ["alice:s3cr3t-token", "s3cr3t-token"])
def test_credentials_in_the_url_never_reach_messages(refusing_http: int, manifest_path: Path,
                                                     userinfo: str) -> None:
    url = f"http://{userinfo}@127.0.0.1:{refusing_http}/adder.git"
    with pytest.raises(AuthenticationRefused) as info, open_source(make_manifest(url), manifest_path):
        pass
    shown = f"http://***@127.0.0.1:{refusing_http}/adder.git"
    assert shown in info.value.message
    cause = info.value.__cause__
    assert cause is not None
    for text in (str(info.value), repr(info.value), str(cause), repr(cause), info.value.hint or ""):
        assert "s3cr3t" not in text


def test_unreachable_https_with_token_is_masked(manifest_path: Path) -> None:
    url = f"https://ghp_T0KEN@127.0.0.1:{gitrepos.closed_port()}/adder.git"
    with pytest.raises(RemoteUnreachable) as info, open_source(make_manifest(url), manifest_path):
        pass
    assert "T0KEN" not in str(info.value) and "T0KEN" not in str(info.value.__cause__)
    assert "https://***@127.0.0.1:" in str(info.value)


def test_ssh_closed_port_is_remote_unreachable(manifest_path: Path) -> None:
    url = f"ssh://git@127.0.0.1:{gitrepos.closed_port()}/adder.git"
    with pytest.raises(RemoteUnreachable, match="Connection refused"), \
            open_source(make_manifest(url), manifest_path):
        pass


@pytest.mark.parametrize(("ssh_says", "expected"), [
    ("git@127.0.0.1: Permission denied (publickey).", "refused our credentials"),
    ("Host key verification failed.", "the ssh host key of"),
])
def test_ssh_runs_in_batch_mode_with_the_users_command(tmp_path: Path, manifest_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       ssh_says: str, expected: str) -> None:
    # A stand-in for ssh that records how git runs it and fails the way real ssh does.
    record = tmp_path / "ssh-args"
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\necho '{ssh_says}' >&2\nexit 255\n")
    fake_ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", f"{fake_ssh} -i /keys/deploy")
    with pytest.raises(AuthenticationRefused, match=expected) as info, \
            open_source(make_manifest("git@127.0.0.1:team/adder.git"), manifest_path):
        pass
    assert info.value.exit_code == 3
    args = record.read_text().splitlines()
    assert args[:2] == ["-i", "/keys/deploy"]  # the user's own options first, so they win
    assert "BatchMode=yes" in args and any(a.startswith("ConnectTimeout=") for a in args)
    assert "git@127.0.0.1" in args


@pytest.mark.slow
def test_silent_remote_times_out_instead_of_hanging(manifest_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_transport, "LOW_SPEED_TIME", 1)
    with socket.socket() as listener:  # accepts connections and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/adder.git"
        with pytest.raises(RemoteUnreachable, match="Operation too slow"), \
                open_source(make_manifest(url), manifest_path):
            pass


# --- what goes into the image ---------------------------------------------------------------------


def test_symlinks_inside_the_job_are_kept(bare_repo_factory: Callable[..., Path],
                                          manifest_path: Path) -> None:
    remote = bare_repo_factory("links.git", {**JOB_FILES, "jobs/adder/model.txt": Symlink("data/model.txt"),
                                             "jobs/adder/data/up.py": Symlink("../adder.py")})
    with open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        assert "model.txt" in src.files and "data/up.py" in src.files
        assert (src.job_root / "model.txt").is_symlink()


def test_symlinks_to_the_repository_outside_the_job_would_dangle_in_the_image(
        bare_repo_factory: Callable[..., Path], manifest_path: Path) -> None:
    link = Symlink("../../docs/guide.md")
    remote = bare_repo_factory("links.git", {**JOB_FILES, "jobs/adder/guide.md": link})
    with pytest.raises(SourceError) as info, open_source(make_manifest(remote.as_uri()), manifest_path):
        pass
    assert info.value.message == (f"symlinks in {remote.as_uri()}@master point outside git.directory "
                                  "'jobs/adder', which is all the image holds: "
                                  "guide.md -> ../../docs/guide.md")
    assert info.value.hint == ("commit the files themselves inside git.directory instead of links to them; "
                               "a folder that is not part of the job (a virtualenv) belongs in .gitignore")
    # From the repository's root the same link is fine.
    with open_source(make_manifest(remote.as_uri(), directory="."), manifest_path) as src:
        assert "jobs/adder/guide.md" in src.files


def test_symlinks_leaving_the_repository_are_an_error_naming_them(bare_repo_factory: Callable[..., Path],
                                                                  manifest_path: Path,
                                                                  workspace_tmp: Path) -> None:
    remote = bare_repo_factory("escape.git", {
        **JOB_FILES,
        "jobs/adder/passwd": Symlink("/etc/passwd"),
        "jobs/adder/up.txt": Symlink("../../../outside.txt"),
    })
    with pytest.raises(SourceError) as info, open_source(make_manifest(remote.as_uri()), manifest_path):
        pass
    assert "passwd -> /etc/passwd" in info.value.message
    assert "up.txt -> ../../../outside.txt" in info.value.message
    assert "point outside the repository" in info.value.message
    assert list(workspace_tmp.iterdir()) == []


def test_directory_symlink_leaving_the_repository(bare_repo_factory: Callable[..., Path],
                                                  manifest_path: Path) -> None:
    remote = bare_repo_factory("dirlink.git", {**JOB_FILES, "jobs/tmp": Symlink("/tmp")})
    with pytest.raises(SourceError, match="'jobs/tmp' .* is a symlink that leaves the repository"), \
            open_source(make_manifest(remote.as_uri(), directory="jobs/tmp"), manifest_path):
        pass


def test_committed_secret_file_is_left_out_of_a_clone(bare_repo_factory: Callable[..., Path],
                                                      manifest_path: Path, reported: Recorded) -> None:
    remote = bare_repo_factory("secret.git", {**JOB_FILES, "jobs/adder/.env.build": "TOKEN=x\n",
                                              "jobs/adder/.env.build.dist": "TOKEN=\n"})
    messages = reported.messages
    manifest = make_manifest(remote.as_uri(), secret_build_env_file=".env.build")
    with open_source(manifest, manifest_path) as src:
        assert ".env.build" not in src.files
        assert ".env.build.dist" in src.files
    assert any(m.startswith("warning: left out the secret env file(s) .env.build") for m in messages)


def test_other_env_files_are_kept_with_a_warning(bare_repo_factory: Callable[..., Path],
                                                 manifest_path: Path, reported: Recorded) -> None:
    remote = bare_repo_factory("envs.git", {**JOB_FILES, "jobs/adder/.env": "DEBUG=1\n",
                                            "jobs/adder/.env.example": "DEBUG=\n"})
    with open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        assert ".env" in src.files and ".env.example" in src.files
        assert reported.warnings == [".env will be copied into the image; if it holds secrets, name it in "
                                     "secret_build_env_file/secret_runtime_env_file or add it to .gitignore"]


def test_submodules_are_left_out_with_a_warning(git_repo_factory: Callable[..., Path],
                                                manifest_path: Path, reported: Recorded) -> None:
    library = git_repo_factory("library", {"lib.py": "x = 1\n"})
    work = git_repo_factory("with-submodule", JOB_FILES)
    gitrepos.git("-c", "protocol.file.allow=always", "submodule", "--quiet", "add", library.as_uri(),
                 "jobs/adder/vendor", cwd=work)
    gitrepos.git("commit", "--quiet", "-m", "add a submodule", cwd=work)
    with open_source(make_manifest(work.as_uri()), manifest_path) as src:
        assert not any(f.startswith("vendor") for f in src.files)
        assert any("submodules" in w and "vendor" in w for w in reported.warnings)
    with open_source(make_manifest("unused"), work / "jobs/adder/fatman.yaml", local=True) as src:
        assert not any(f.startswith("vendor") for f in src.files)
        assert any("submodules" in w and "vendor" in w for w in reported.warnings)


# --- cleanup --------------------------------------------------------------------------------------


def test_workspace_removed_when_the_body_raises(remote: Path, manifest_path: Path,
                                               workspace_tmp: Path) -> None:
    with pytest.raises(ValueError, match="boom"), \
            open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        assert src.repo_root.exists()
        raise ValueError("boom")
    assert list(workspace_tmp.iterdir()) == []


def test_workspace_removed_on_keyboard_interrupt(remote: Path, manifest_path: Path,
                                                 workspace_tmp: Path) -> None:
    seen: list[Path] = []
    with pytest.raises(KeyboardInterrupt), open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        seen.append(src.repo_root.parent)
        raise KeyboardInterrupt
    assert seen and not seen[0].exists()
    assert list(workspace_tmp.iterdir()) == []


def test_workspace_removal_retries_what_permissions_refuse(remote: Path, manifest_path: Path,
                                                          workspace_tmp: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Root (as in CI) may unlink anything, so a read-only folder cannot refuse it here: stand in for
    # the refusal a normal user meets (git's read-only pack files on some systems, a folder a job
    # made read-only) and check the cleanup makes the entry writable and tries again.
    real_unlink = os.unlink
    refused: list[str] = []

    def unlink(path: Any, *args: Any, dir_fd: int | None = None, **kwargs: Any) -> None:
        if dir_fd is not None and str(path) == "adder.py" and not refused:
            refused.append(str(path))
            raise PermissionError(13, "Permission denied", str(path))
        real_unlink(path, *args, dir_fd=dir_fd, **kwargs)

    with monkeypatch.context() as patch, open_source(make_manifest(remote.as_uri()), manifest_path) as src:
        os.chmod(src.job_root / "adder.py", stat.S_IRUSR)
        patch.setattr(os, "unlink", unlink)  # only while the workspace is removed
    assert refused == ["adder.py"]
    assert list(workspace_tmp.iterdir()) == []


_INTERRUPTED_CLONE = """
import sys
from pathlib import Path
from racetrack_builder.manifest import Manifest
from racetrack_builder.reporting import Silent, reporting_to
from racetrack_builder.source import open_source


class Printing(Silent):
    def progress(self, text):
        print(text, flush=True)


manifest = Manifest.model_validate({
    "name": "adder", "owner_email": "owner@example.com", "lang": "python3",
    "git": {"remote": sys.argv[1]}, "python": {"entrypoint_path": "adder.py"},
})
with reporting_to(Printing()), open_source(manifest, Path(sys.argv[2])):
    pass
"""


def test_ctrl_c_during_a_clone_leaves_no_workspace(tmp_path: Path, manifest_path: Path) -> None:
    workspaces = tmp_path / "child-tmp"
    workspaces.mkdir()
    with socket.socket() as listener:  # a remote that never answers: the clone is still running
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/adder.git"
        child = subprocess.Popen(
            [sys.executable, "-c", _INTERRUPTED_CLONE, url, str(manifest_path)],
            env={**os.environ, "TMPDIR": str(workspaces), "PYTHONPATH": str(Path(__file__).parents[2])},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its own process group, like a shell job receiving Ctrl-C
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().startswith("cloning ")
            connection, _ = listener.accept()  # git has connected and waits for an answer: mid-clone
            with connection:
                assert len(list(workspaces.iterdir())) == 1
                os.killpg(child.pid, signal.SIGINT)  # what a terminal sends the whole job on Ctrl-C
                _, stderr = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert "KeyboardInterrupt" in stderr
    assert list(workspaces.iterdir()) == []


# --- --local --------------------------------------------------------------------------------------


@pytest.fixture
def work_tree(git_repo_factory: Callable[..., Path]) -> Path:
    return git_repo_factory("work", {**JOB_FILES, ".gitignore": "*.log\n.env.*\n!.env.*.dist\n",
                                     "jobs/adder/.env.build.dist": "TOKEN=\n"})


def test_local_clean_tree_builds_the_same_files_as_a_clone(work_tree: Path, tmp_path: Path,
                                                          workspace_tmp: Path, reported: Recorded) -> None:
    manifest_in_tree = work_tree / "jobs" / "adder" / "fatman.yaml"
    manifest = make_manifest(work_tree.as_uri())
    with open_source(manifest, manifest_in_tree, local=True) as local_src:
        local_files, local_commit = local_src.files, local_src.commit
        assert local_src.repo_root == work_tree.resolve()
        assert local_src.job_root == (work_tree / "jobs/adder").resolve()
        assert local_src.remote == str(work_tree.resolve())
        assert local_src.dirty is False and local_src.local is True
        assert reported.warnings == []
        check_job_files(manifest, local_src)
    assert list(workspace_tmp.iterdir()) == []  # --local makes no workspace
    with open_source(manifest, manifest_in_tree) as cloned:
        assert cloned.files == local_files
        assert cloned.commit == local_commit


def test_local_includes_untracked_excludes_ignored_git_and_secrets(work_tree: Path,
                                                                   reported: Recorded) -> None:
    gitrepos.write_files(work_tree, {
        "jobs/adder/new_module.py": "y = 2\n",      # untracked, not ignored: included
        "jobs/adder/debug.log": "noise\n",          # ignored
        "jobs/adder/.env.build": "TOKEN=abc\n",     # ignored and the secret file
        "jobs/adder/runtime.secrets": "KEY=v\n",    # the runtime secret file, NOT ignored
        "docs/new.md": "outside the job\n",         # outside git.directory
    })
    (work_tree / "jobs/adder/adder.py").write_text(ADDER + "# edited\n")
    os.remove(work_tree / "jobs/adder/data/model.txt")  # deleted but still tracked
    manifest = make_manifest(secret_build_env_file=".env.build", secret_runtime_env_file="runtime.secrets")
    messages = reported.messages
    with open_source(manifest, work_tree / "jobs/adder/fatman.yaml", local=True) as src:
        assert src.files == (".env.build.dist", "adder.py", "fatman.yaml", "new_module.py",
                             "requirements.txt")
        assert src.dirty is True
    dirty = [m for m in messages if m.startswith("warning: building uncommitted changes")]
    assert len(dirty) == 1
    assert "(3 paths: jobs/adder/adder.py, jobs/adder/data/model.txt, jobs/adder/new_module.py)" in dirty[0]
    assert "runtime.secrets" not in dirty[0]
    assert any("left out the secret env file(s) runtime.secrets" in m for m in messages)


def test_local_dirty_only_counts_the_job_folder(work_tree: Path) -> None:
    gitrepos.write_files(work_tree, {"docs/guide.md": "changed outside the job\n"})
    with open_source(make_manifest(), work_tree / "jobs/adder/fatman.yaml", local=True) as src:
        assert src.dirty is False
    gitrepos.git("add", "docs/guide.md", cwd=work_tree)
    gitrepos.write_files(work_tree, {"jobs/adder/requirements.txt": "numpy==2.0.0\n"})
    gitrepos.git("add", "jobs/adder/requirements.txt", cwd=work_tree)  # staged counts too
    with open_source(make_manifest(), work_tree / "jobs/adder/fatman.yaml", local=True) as src:
        assert src.dirty is True


def test_local_applies_git_directory_from_the_tree_root(work_tree: Path) -> None:
    # The manifest may sit anywhere in the tree: git.directory is always taken from the root.
    (work_tree / "ci").mkdir()
    (work_tree / "ci/fatman.yaml").write_text("name: adder\n")
    with open_source(make_manifest(directory="jobs/other", entrypoint_path="other.py",
                                   entrypoint_class=None, requirements_path=None),
                     work_tree / "ci/fatman.yaml", local=True) as src:
        assert src.job_root == (work_tree / "jobs/other").resolve()
        assert src.files == ("other.py",)
        assert src.dirty is False  # ci/ is outside the job folder


def test_local_outside_a_git_tree(tmp_path: Path) -> None:
    (tmp_path / "loose").mkdir()
    with pytest.raises(SourceError) as info, open_source(make_manifest(), tmp_path / "loose/fatman.yaml",
                                                         local=True):
        pass
    assert info.value.message == f"--local: {tmp_path / 'loose'} is not inside a git working tree"
    assert "git init" in (info.value.hint or "") and "without --local" in (info.value.hint or "")


def test_local_tree_without_commits(git_repo_factory: Callable[..., Path]) -> None:
    work = git_repo_factory("fresh")
    gitrepos.write_files(work, {"adder.py": ADDER, "fatman.yaml": "name: adder\n"})
    manifest = make_manifest(directory=".", requirements_path=None)
    with open_source(manifest, work / "fatman.yaml", local=True) as src:
        assert src.commit is None
        assert src.branch == "master"
        assert src.dirty is True
        assert src.files == ("adder.py", "fatman.yaml")
        check_job_files(manifest, src)


def test_local_branch_mismatch_and_detached_head(work_tree: Path, reported: Recorded) -> None:
    gitrepos.git("checkout", "--quiet", "-b", "feature", cwd=work_tree)
    with open_source(make_manifest(), work_tree / "jobs/adder/fatman.yaml", local=True) as src:
        assert src.branch == "feature"
        assert reported.warnings == ["the working tree is on branch 'feature' but git.branch is 'master'; "
                                     "building the working tree as it is"]
    gitrepos.git("checkout", "--quiet", "--detach", cwd=work_tree)
    with open_source(make_manifest(), work_tree / "jobs/adder/fatman.yaml", local=True) as src:
        assert src.branch is None
        assert src.where.endswith("@HEAD")


def test_local_escaping_symlink_and_nested_repository(work_tree: Path, tmp_path: Path,
                                                      reported: Recorded) -> None:
    (tmp_path / "outside.txt").write_text("not in the repo\n")
    nested = work_tree / "jobs/adder/nested"
    gitrepos.init_repo(nested, {"n.py": "n = 1\n"})
    with open_source(make_manifest(), work_tree / "jobs/adder/fatman.yaml", local=True) as src:
        assert not any(f.startswith("nested") for f in src.files)
        assert any("nested" in w for w in reported.warnings)
    (work_tree / "jobs/adder/outside.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(SourceError, match="outside.txt -> "), \
            open_source(make_manifest(), work_tree / "jobs/adder/fatman.yaml", local=True):
        pass


# --- check_job_files ------------------------------------------------------------------------------


def test_missing_entrypoint_names_the_path_searched(remote: Path, manifest_path: Path) -> None:
    manifest = make_manifest(remote.as_uri(), entrypoint_path="adders.py")
    with open_source(manifest, manifest_path) as src, pytest.raises(SourceError) as info:
        check_job_files(manifest, src)
    assert info.value.message == (f"python.entrypoint_path: 'adders.py' not found in "
                                  f"{remote.as_uri()}@master:jobs/adder (searched jobs/adder/adders.py)")
    assert info.value.hint == "did you mean 'adder.py'? (paths are relative to git.directory)"


def _source(root: Path, files: dict[str, str | bytes | Symlink], *, local: bool = False,
            listed: tuple[str, ...] | None = None) -> JobSource:
    """A JobSource over a plain folder: check_job_files only reads the tree and the file list."""
    gitrepos.write_files(root / "repo", files)
    job_root = (root / "repo" / "job").resolve()
    job_root.mkdir(parents=True, exist_ok=True)
    names = listed if listed is not None else tuple(sorted(
        p.relative_to(job_root).as_posix() for p in job_root.rglob("*") if p.is_file() or p.is_symlink()))
    return JobSource(repo_root=root / "repo", job_root=job_root, files=names, commit="0" * 40,
                     remote="file:///srv/adder.git", branch="main", dirty=False, local=local)


def test_entrypoint_class_is_found_without_importing(tmp_path: Path) -> None:
    # Importing this file would raise: the check must only parse it.
    src = _source(tmp_path, {"job/adder.py": "raise SystemExit('imported!')\n" + ADDER})
    check_job_files(make_manifest(requirements_path=None), src)


@pytest.mark.parametrize("code", [
    "from .impl import AdderEntrypoint\n",
    "import impl\nAdderEntrypoint = impl.Adder\n",
    "try:\n    from fast import AdderEntrypoint\nexcept ImportError:\n    class AdderEntrypoint: ...\n",
    "from impl import *\n",
])
def test_entrypoint_class_bound_at_module_level_is_accepted(tmp_path: Path, code: str) -> None:
    src = _source(tmp_path, {"job/adder.py": code})
    check_job_files(make_manifest(requirements_path=None), src)


def test_missing_entrypoint_class_lists_the_classes(tmp_path: Path) -> None:
    code = ADDER + "\nclass Helper: ...\n\ndef f():\n    class Inner: ...\n"
    src = _source(tmp_path, {"job/adder.py": code})
    with pytest.raises(SourceError) as info:
        check_job_files(make_manifest(entrypoint_class="AdderEntrypont", requirements_path=None), src)
    assert info.value.message == ("python.entrypoint_class: 'AdderEntrypont' is not defined in job/adder.py "
                                  "(file:///srv/adder.git@main:job)")
    assert info.value.hint == "did you mean 'AdderEntrypoint'? classes defined there: AdderEntrypoint, Helper"


def test_an_entrypoint_this_python_cannot_parse_is_left_to_the_images_python(
        tmp_path: Path, reported: Recorded) -> None:
    """The image's Python may be newer than the CLI's: what does not parse here is a warning, and
    the build's import check (on the job's own Python) gives the verdict."""
    src = _source(tmp_path, {"job/adder.py": "class A:\n    def perform(self:\n"})
    check_job_files(make_manifest(entrypoint_class="A", requirements_path=None), src)
    (warning,) = reported.warnings
    assert "job/adder.py does not parse with Python 3." in warning
    assert "line 2" in warning and "import check" in warning


def test_missing_requirements(tmp_path: Path) -> None:
    src = _source(tmp_path, {"job/adder.py": ADDER, "job/deps/requirements.txt": "x\n"})
    with pytest.raises(SourceError) as info:
        check_job_files(make_manifest(), src)
    assert info.value.message == ("python.requirements_path: 'requirements.txt' not found in "
                                  "file:///srv/adder.git@main:job (searched job/requirements.txt)")
    assert info.value.hint == "did you mean 'deps/requirements.txt'? (paths are relative to git.directory)"


def test_entrypoint_ignored_by_git_in_a_working_tree(tmp_path: Path) -> None:
    src = _source(tmp_path, {"job/adder.py": ADDER}, local=True, listed=())
    with pytest.raises(SourceError, match="exists in .* but git ignores it"):
        check_job_files(make_manifest(requirements_path=None), src)


def test_entrypoint_symlink_leaving_the_repository(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.py").write_text(ADDER)
    src = _source(tmp_path, {"job/adder.py": Symlink(str(tmp_path / "elsewhere.py"))})
    with pytest.raises(SourceError, match="'adder.py' .* is a symlink that leaves the repository"):
        check_job_files(make_manifest(requirements_path=None), src)


def test_entrypoint_symlink_outside_the_job(tmp_path: Path) -> None:
    src = _source(tmp_path, {"shared/entry.py": ADDER, "job/adder.py": Symlink("../shared/entry.py")},
                  listed=("adder.py",))
    with pytest.raises(SourceError, match="is a symlink to a file outside git.directory"):
        check_job_files(make_manifest(requirements_path=None), src)


def test_entrypoint_that_is_a_directory_or_outside_the_job(tmp_path: Path) -> None:
    src = _source(tmp_path, {"job/adder.py/x.py": ADDER, "other.py": ADDER})
    with pytest.raises(SourceError, match="is a directory, not a file"):
        check_job_files(make_manifest(requirements_path=None), src)
    # The manifest model already refuses '..'; the check holds on its own for any Manifest it is given.
    manifest = make_manifest(requirements_path=None)
    escaping = manifest.model_copy(update={"python": manifest.python.model_copy(
        update={"entrypoint_path": "../other.py"})})
    with pytest.raises(SourceError, match="must be a path inside git.directory"):
        check_job_files(escaping, src)


# --- small pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "masked"), [
    ("https://user:tok@host/r.git", "https://***@host/r.git"),
    ("https://ghp_tok@host/r.git", "https://***@host/r.git"),
    ("fatal: unable to access 'http://a:b@h:1/r/': x", "fatal: unable to access 'http://***@h:1/r/': x"),
    ("ssh://git@host/r.git", "ssh://git@host/r.git"),
    ("ssh://git:pw@host/r.git", "ssh://git:***@host/r.git"),
    ("git@host:team/r.git", "git@host:team/r.git"),
    ("https://host/r.git", "https://host/r.git"),
])
def test_mask_credentials(text: str, masked: str) -> None:
    assert git_urls.mask_credentials(text) == masked


def test_resolve_remote(tmp_path: Path) -> None:
    manifest = tmp_path / "a b" / "fatman.yaml"
    (tmp_path / "a b" / "repo.git").mkdir(parents=True)
    for url in ("https://host/r.git", "ssh://git@host/r.git", "git@host:r.git", "file:///x/r.git",
                "git://127.0.0.1/r.git"):
        assert git_urls.resolve_remote(url, manifest) == url
    assert git_urls.resolve_remote("repo.git", manifest) == (tmp_path / "a b" / "repo.git").as_uri()
    assert git_urls.resolve_remote("./repo.git", manifest).startswith("file://")


def test_git_environment_never_prompts_and_keeps_the_users_ssh_setup() -> None:
    env = git_transport.git_environment({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
                                         "PATH": os.environ["PATH"]})
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_SSH_COMMAND"].startswith("ssh -o BatchMode=yes -o ConnectTimeout=")
    assert int(env["GIT_HTTP_LOW_SPEED_TIME"]) > 0 and int(env["GIT_HTTP_LOW_SPEED_LIMIT"]) > 0
    own = git_transport.git_environment({"GIT_SSH_COMMAND": "ssh -i ~/.ssh/deploy",
                                         "PATH": os.environ["PATH"]})
    assert own["GIT_SSH_COMMAND"].startswith("ssh -i ~/.ssh/deploy -o BatchMode=yes")
    program = git_transport.git_environment({"GIT_SSH": "/usr/bin/my-ssh", "GIT_CONFIG_GLOBAL": os.devnull,
                                             "GIT_CONFIG_NOSYSTEM": "1", "PATH": os.environ["PATH"]})
    assert "GIT_SSH_COMMAND" not in program


def test_git_environment_carries_core_ssh_command_over(tmp_path: Path) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[core]\n\tsshCommand = ssh -i /keys/deploy\n")
    env = git_transport.git_environment({"GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1",
                                         "PATH": os.environ["PATH"]})
    assert env["GIT_SSH_COMMAND"].startswith("ssh -i /keys/deploy -o BatchMode=yes")


# --- what a user's repository may hold (found by a blind user test) --------------------------------


def test_a_job_inside_a_submodule_is_refused_alike_in_clones_and_working_trees(
    git_repo_factory: Callable[..., Path], tmp_path: Path, workspace_tmp: Path
) -> None:
    library = git_repo_factory("library", {"subjob/adder.py": ADDER})
    work = git_repo_factory("super", {"README.md": "super\n"})
    gitrepos.git(
        "-c", "protocol.file.allow=always", "submodule", "--quiet", "add", str(library), "lib", cwd=work
    )
    gitrepos.git("commit", "--quiet", "-m", "add lib", cwd=work)
    manifest = make_manifest(work.as_uri(), directory="lib/subjob", requirements_path=None)
    for local in (False, True):
        with pytest.raises(SourceError) as info, open_source(manifest, work / "fatman.yaml", local=local):
            pass
        assert "is inside the git submodule 'lib'" in info.value.message, local
        assert "make the submodule's own repository git.remote" in (info.value.hint or "")


def test_a_tag_named_like_the_branch_is_no_branch_mismatch(work_tree: Path, reported: Recorded) -> None:
    gitrepos.git("tag", "release", cwd=work_tree)
    gitrepos.git("checkout", "--quiet", "-b", "release", cwd=work_tree)
    with open_source(
        make_manifest(branch="release"), work_tree / "jobs/adder/fatman.yaml", local=True
    ) as src:
        assert src.branch == "release"
        assert not any("branch" in w for w in reported.warnings), reported.warnings


def test_git_lfs_pointers_are_named(work_tree: Path, reported: Recorded) -> None:
    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 + "\nsize 123456789\n"
    gitrepos.write_files(work_tree, {"jobs/adder/model.pkl": pointer})
    with open_source(make_manifest(), work_tree / "jobs/adder/fatman.yaml", local=True) as src:
        assert "model.pkl" in src.files
        (warning,) = [w for w in reported.warnings if "LFS" in w]
    assert warning.startswith("model.pkl: Git LFS pointer file(s), not their content")


def test_a_job_file_holding_the_remotes_credentials_is_named(tmp_path: Path, reported: Recorded) -> None:
    remote = "https://builder:s3cr3t-Pa55@git.example.com/team/job.git"
    src = _source(tmp_path, {"job/adder.py": ADDER, "job/fatman.yaml": f"git:\n  remote: {remote}\n"})
    check_job_files(make_manifest(remote, requirements_path=None), src)
    (warning,) = [w for w in reported.warnings if "credentials" in w]
    assert warning.startswith("fatman.yaml hold(s) the credentials written in git.remote")
    assert "s3cr3t" not in warning


@pytest.mark.parametrize(
    "origin,warned",
    [
        ("https://github.com/team/other.git", True),
        ("git@github.com:team/job.git", False),
        ("ssh://git@github.com:22/team/job", False),
        ("https://ci-bot:token1234@GitHub.com/team/job.git/", False),
    ],
)
def test_a_working_tree_that_is_not_a_clone_of_git_remote_is_named(
    work_tree: Path, origin: str, warned: bool, reported: Recorded) -> None:
    gitrepos.git("remote", "add", "origin", origin, cwd=work_tree)
    manifest = make_manifest("https://github.com/team/job")
    with open_source(manifest, work_tree / "jobs/adder/fatman.yaml", local=True):
        found = [w for w in reported.warnings if "is not a remote of the working tree" in w]
    assert bool(found) is warned, reported.warnings
    assert "token1234" not in "".join(reported.warnings)
