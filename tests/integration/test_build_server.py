"""The build server (`racetrack-build server`, RACETRACK_BUILD_SERVER=1): commands handed to it
answer as they do when run by themselves (output, exit codes, Ctrl-C), a build through it gives
the image, and a client it must not serve runs the command itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import gitrepos
from tests.integration.jobs import CLI, REPO_ROOT, DockerCleanup, cli_environment, run_cli

SWITCH = {"RACETRACK_BUILD_SERVER": "1"}
VALID = REPO_ROOT / "examples" / "adder" / "fatman.yaml"


@pytest.fixture
def build_server(tmp_path: Path) -> Iterator[Path]:
    """A server started as a user starts it, in the test's own runtime folder; its log's path."""
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*CLI, "server", "-v"], env=cli_environment(), stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        while "build server ready" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start: " + log.read_text()
            time.sleep(0.05)
        yield log
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    assert "build server stopped" in log.read_text()
    assert not any(Path(os.environ["XDG_RUNTIME_DIR"]).rglob("*.sock")), "the socket was left behind"


def _served(log: Path) -> int:
    return log.read_text().count("a command in pid")


@pytest.mark.parametrize("manifest, code", [(VALID, 0), (REPO_ROOT / "no-such" / "fatman.yaml", 2)])
def test_a_command_answers_through_the_server_as_by_itself(build_server: Path, manifest: Path,
                                                           code: int) -> None:
    alone = run_cli("validate", manifest)
    served = run_cli("validate", manifest, env=SWITCH)
    assert (served.returncode, alone.returncode) == (code, code), served.describe()
    assert (served.stdout, served.stderr) == (alone.stdout, alone.stderr)
    assert _served(build_server) == 1


def test_ctrl_c_reaches_the_command_in_the_server(build_server: Path) -> None:
    """A call to a job that never answers, interrupted: the command unwinds and exits 130."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections are taken by the kernel, and never answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.Popen([*CLI, "call", url, "-i", "x=1"], env=cli_environment(SWITCH),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 30
        while _served(build_server) == 0:
            assert time.monotonic() < deadline and proc.poll() is None, "the call never reached the server"
            time.sleep(0.05)
        time.sleep(0.5)  # the command is now waiting on the silent job
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert err.strip() == "Aborted.", err  # what the same command says interrupted by itself


def test_a_client_on_another_path_is_served_with_its_own_git(build_server: Path, tmp_path: Path) -> None:
    """A PATH without git: the command that needs none works, the one that needs it says so."""
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(os.path.realpath(CLI[0]))
    env = {**SWITCH, "PATH": str(bare)}
    assert run_cli("validate", VALID, env=env).returncode == 0
    job = gitrepos.init_repo(tmp_path / "job", {"fatman.yaml": VALID.read_text().replace(
        "  directory: examples/adder\n", ""), "adder.py": (VALID.parent / "adder.py").read_text()})
    alone = run_cli("render", "--local", job / "fatman.yaml", env={"PATH": str(bare)})
    served = run_cli("render", "--local", job / "fatman.yaml", env=env)
    assert (served.returncode, alone.returncode) == (3, 3), served.describe()
    assert served.stderr == alone.stderr and "git" in served.stderr
    assert _served(build_server) == 2


def test_builds_through_the_server_give_the_image_and_rebuild(
        build_server: Path, base_image: str, docker_cleanup: DockerCleanup, tmp_path: Path) -> None:
    job = gitrepos.init_repo(tmp_path / "job", {
        "fatman.yaml": "name: through-the-server\nowner_email: dev@example.com\nlang: python3:latest\n"
                       "git:\n  remote: https://example.com/job.git\npython:\n  entrypoint_path: adder.py\n",
        "adder.py": (VALID.parent / "adder.py").read_text(),
    })
    tag = docker_cleanup.image_tag("through-the-server")
    first = run_cli("build", "--local", job / "fatman.yaml", "--tag", tag, "--json", env=SWITCH)
    assert first.returncode == 0, first.describe()
    (job / "adder.py").write_text((job / "adder.py").read_text() + "\n# changed\n")
    second = run_cli("build", "--local", job / "fatman.yaml", "--tag", tag, "--json", env=SWITCH)
    assert second.returncode == 0, second.describe()
    assert first.json()["id"] != second.json()["id"] and second.json()["image"] == tag
    assert _served(build_server) == 2
