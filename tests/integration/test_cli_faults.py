"""The CLI under faults: the engine stops answering mid-build, the git remote goes away mid-clone,
the disk fills, the user presses Ctrl-C in each phase, two builds of one job run at once.

Every case must end with a clear message and its documented exit code (3 for the environment, 130
for Ctrl-C), no temporary workspace left (the CLI runs with a TMPDIR of its own, checked empty
afterwards), no image under the requested tag unless the build completed, no candidate tag and no
container left running.

Faults are injected without harming the shared engine or the suite's servers: the engine is reached
through a unix-socket proxy the test cuts (``DOCKER_HOST``), the remote through a TCP proxy in front
of a ``git http-backend`` server, the disk is a 512 KiB tmpfs, and slow phases are held open by
FIFOs and a server that accepts connections and never answers.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import pytest
import yaml

from tests import gitrepos
from tests.integration.jobs import (
    CLI,
    REPO_ROOT,
    CliResult,
    cli_environment,
    client_manifest,
    image_exists,
    run_cli,
)

if TYPE_CHECKING:
    from tests.integration.jobs import DockerCleanup

ADDER = '''\
class Adder:
    def perform(self, x: float, y: float) -> float:
        """Add two numbers."""
        return x + y

    def docs_input_example(self) -> dict:
        return {"x": 1, "y": 2}
'''
MANIFEST: dict[str, Any] = {
    "name": "faulty-job",
    "owner_email": "nobody@example.com",
    "lang": "python3:latest",
    "version": "0.1.0",
    "git": {"remote": "(replaced)", "branch": "master"},
    "python": {"entrypoint_path": "entrypoint.py"},
}
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM
WAIT_S = 120.0  # bound on waiting for a phase to show up in the CLI's output
DOCKER_SOCKET = "/var/run/docker.sock"


# ---- helpers ---------------------------------------------------------------------------------------


def assert_clean_exit(result: CliResult, code: int, *patterns: str) -> None:
    """Exit ``code``, every pattern in stderr (case-insensitive), and no traceback of the tool."""
    assert result.returncode == code, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    for pattern in patterns:
        assert re.search(pattern, result.stderr, re.IGNORECASE), (pattern, result.describe())


def leftovers(tmpdir: Path) -> list[str]:
    """What the CLI left in its own TMPDIR (workspaces, contexts): must be nothing."""
    return sorted(p.name for p in tmpdir.iterdir()) if tmpdir.exists() else []


@pytest.fixture
def cli_tmp(tmp_path: Path) -> Path:
    """A TMPDIR for the CLI alone, so what it leaves behind can be listed."""
    folder = tmp_path / "cli-tmp"
    folder.mkdir()
    return folder


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs: writing more there fails with ENOSPC. Needs root (CI runs as root)."""
    mount_point = tmp_path / "tiny-disk"
    mount_point.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}): needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def job_remote(base: Path, files: dict[str, str | bytes] | None = None) -> Path:
    """A bare repository with the adder job (and ``files``) on ``master``."""
    return gitrepos.make_bare_repo(base / "remote.git", {"entrypoint.py": ADDER, **(files or {})})


def manifest_for(folder: Path, remote: str, **fields: Any) -> Path:
    return client_manifest(folder, MANIFEST, remote=remote, **fields)


class RunningCli:
    """``racetrack-build`` started in the background; its stderr is read as it comes."""

    def __init__(self, *args: str | os.PathLike[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([*CLI, *map(os.fspath, args)], env=cli_environment(env), cwd=REPO_ROOT,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self._stderr: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.args = tuple(map(os.fspath, args))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._seen:
                self._stderr.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, pattern: str, timeout: float = WAIT_S) -> None:
        """Block until a stderr line matches ``pattern``; fail if the CLI ends or time runs out."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.IGNORECASE)
        with self._seen:
            while not any(regex.search(line) for line in self._stderr):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    self.proc.kill()
                    self.finish(timeout=10)
                    pytest.fail(f"{pattern!r} never appeared:\n{''.join(self._stderr)[-4000:]}")
                self._seen.wait(min(remaining, 0.5))

    def interrupt(self) -> None:
        """What Ctrl-C does in a terminal: SIGINT to the process."""
        self.proc.send_signal(signal.SIGINT)

    def stop(self, how: str) -> None:
        """Stop the CLI the way ``how`` ("ctrl-c", "sigterm" or "sighup") says."""
        signum = {"ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM, "sighup": signal.SIGHUP}[how]
        self.proc.send_signal(signum)

    def finish(self, timeout: float = WAIT_S) -> CliResult:
        started = time.monotonic()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout.read()  # small (a --json summary at most): no pipe deadlock
        self._reader.join(timeout=5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return CliResult(self.args, self.proc.returncode, stdout, "".join(self._stderr),
                         time.monotonic() - started)


class CuttingProxy:
    """Forwards every connection accepted on ``listener`` to a new ``connect()`` socket, until
    ``cut_when(bytes answered so far on a connection, the latest chunk)`` holds: then every
    connection is torn down and the listener closed, as when a server process dies.
    """

    def __init__(self, listener: socket.socket, connect: Callable[[], socket.socket],
                 cut_when: Callable[[int, bytes], bool]) -> None:
        self.listener = listener
        self.connect = connect
        self.cut_when = cut_when
        self.cut = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self.listener.listen(16)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self._thread.join(timeout=5)

    def kill(self) -> None:
        self.cut.set()
        close_listener(self.listener)
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = self.connect()
            except OSError:
                client.close()
                continue
            with self._lock:
                if self.cut.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, answer: bool) -> None:
        total = 0
        with contextlib.suppress(OSError):
            while not self.cut.is_set():
                chunk = source.recv(65536)
                if not chunk:
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                    return
                if answer:
                    total += len(chunk)
                    if self.cut_when(total, chunk):
                        self.kill()
                        return
                target.sendall(chunk)


def unix_proxy(path: Path, cut_when: Callable[[int, bytes], bool]) -> CuttingProxy:
    """A proxy for the Docker engine at ``unix://path``."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))

    def connect() -> socket.socket:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(DOCKER_SOCKET)
        return upstream

    return CuttingProxy(listener, connect, cut_when)


def close_listener(listener: socket.socket) -> None:
    """Stop ``listener`` and wake a thread blocked in its ``accept()``.

    ``close()`` alone leaves that thread blocked in the kernel on a socket that still listens. In
    CI such a thread, long after its test, accepted connections meant for the v2 tests' git server
    and dropped them: their clones failed with "gnutls_handshake() failed: The TLS connection was
    non-properly terminated".
    ``shutdown()`` makes the blocked ``accept()`` fail at once, so the port is really closed.
    """
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        listener.close()


def tcp_proxy(port: int, cut_when: Callable[[int, bytes], bool]) -> tuple[CuttingProxy, int]:
    """A proxy on 127.0.0.1 (a free port, returned) in front of 127.0.0.1:``port``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    return (CuttingProxy(listener, lambda: socket.create_connection(("127.0.0.1", port), timeout=10),
                         cut_when), int(listener.getsockname()[1]))


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[int, threading.Event]]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers: a hung remote.
    Yields its port and an event set once a client connected."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    connected = threading.Event()
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                accepted.append(conn)
                connected.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1]), connected
    finally:
        close_listener(listener)
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()


def tags_of_repository(client: docker.DockerClient, repository: str) -> list[str]:
    """Every tag under ``repository`` (``name:candidate-...`` included)."""
    return sorted(t for image in client.images.list(name=repository) for t in image.tags)


def containers_of(client: docker.DockerClient, repository: str) -> list[str]:
    """Containers (running or not) created from an image of ``repository``."""
    return [c.name for c in client.containers.list(all=True)
            if str(c.attrs.get("Config", {}).get("Image", "")).startswith(repository + ":")]


# ---- the disk fills ---------------------------------------------------------------------------------


def test_full_disk_during_the_clone(tmp_path: Path, tiny_disk: Path, hermetic_git: None) -> None:
    """1 MiB of incompressible data cannot be cloned into 512 KiB: exit 3 naming the disk."""
    remote = job_remote(tmp_path, {"data.bin": os.urandom(1 << 20)})
    manifest = manifest_for(tmp_path / "client", remote.as_uri())
    result = run_cli("render", manifest, env={"TMPDIR": str(tiny_disk)})
    assert_clean_exit(result, EXIT_ENVIRONMENT, r"no space left on device at " + re.escape(str(tiny_disk)),
                      r"TMPDIR")
    assert leftovers(tiny_disk) == []


def test_full_disk_while_writing_a_context(tmp_path: Path, tiny_disk: Path, hermetic_git: None) -> None:
    """The clone fits (the data compresses), its copy into the context does not: exit 3, and the
    half-written folder is taken back rather than left to pass for a context."""
    remote = job_remote(tmp_path, {"zeros.bin": b"\0" * (400 << 10)})
    manifest = manifest_for(tmp_path / "client", remote.as_uri())
    out = tiny_disk / "context"
    result = run_cli("render", manifest, "-o", out, env={"TMPDIR": str(tiny_disk)})
    assert_clean_exit(result, EXIT_ENVIRONMENT, r"no space left on device at " + re.escape(str(out)))
    assert leftovers(tiny_disk) == []


# ---- the remote goes away ---------------------------------------------------------------------------


def test_remote_disappears_during_the_clone(tmp_path: Path, cli_tmp: Path, hermetic_git: None) -> None:
    """The HTTP remote dies after 64 KiB of a 2 MiB pack: exit 3 naming the remote, no workspace."""
    job_remote(tmp_path, {"data.bin": os.urandom(2 << 20)})
    with gitrepos.GitHttpServer(tmp_path) as server:
        proxy, port = tcp_proxy(server.port, lambda total, _chunk: total > 64 << 10)
        with proxy:
            manifest = manifest_for(tmp_path / "client", f"http://127.0.0.1:{port}/remote.git")
            result = run_cli("render", manifest, env={"TMPDIR": str(cli_tmp)}, timeout=300)
        assert proxy.cut.is_set(), "the remote was never cut: the test proved nothing"
    assert_clean_exit(result, EXIT_ENVIRONMENT, rf"127\.0\.0\.1:{port}")
    assert leftovers(cli_tmp) == []


# ---- Ctrl-C before the engine is involved -----------------------------------------------------------


def test_ctrl_c_while_reading_the_manifest(tmp_path: Path, cli_tmp: Path) -> None:
    """The manifest is a FIFO nobody writes to: the CLI waits in the read, Ctrl-C ends it."""
    fifo = tmp_path / "fatman.yaml"
    os.mkfifo(fifo)
    cli = RunningCli("build", fifo, env={"TMPDIR": str(cli_tmp)})
    time.sleep(1.0)  # no output marks "blocked in the read"; give it time to get there
    cli.interrupt()
    assert_clean_exit(cli.finish(), EXIT_INTERRUPTED, r"interrupted|aborted")
    assert leftovers(cli_tmp) == []


def test_ctrl_c_while_reading_the_secrets(tmp_path: Path, cli_tmp: Path, hermetic_git: None) -> None:
    remote = job_remote(tmp_path)
    folder = tmp_path / "client"
    manifest = manifest_for(folder, remote.as_uri(), secret_build_env_file=".env.build")
    os.mkfifo(folder / ".env.build")
    cli = RunningCli("build", manifest, env={"TMPDIR": str(cli_tmp)})
    time.sleep(1.0)
    cli.interrupt()
    assert_clean_exit(cli.finish(), EXIT_INTERRUPTED, r"interrupted|aborted")
    assert leftovers(cli_tmp) == []


# Each stop is checked for Ctrl-C (SIGINT, a developer) and SIGTERM (a CI runner cancelling the job).
STOPS = {
    "ctrl-c": (EXIT_INTERRUPTED, r"interrupted|aborted"),
    "sigterm": (EXIT_TERMINATED, r"terminated \(SIGTERM\)"),
    "sighup": (129, r"terminated \(SIGHUP\)"),  # the terminal closed
}


@pytest.mark.parametrize("how", sorted(STOPS))
def test_stopped_during_the_clone(tmp_path: Path, cli_tmp: Path, hermetic_git: None, how: str) -> None:
    """A remote that accepts the connection and never answers holds the clone open."""
    with silent_server() as (port, connected):
        manifest = manifest_for(tmp_path / "client", f"http://127.0.0.1:{port}/remote.git")
        cli = RunningCli("build", manifest, env={"TMPDIR": str(cli_tmp)})
        cli.wait_for(r"cloning ")
        assert connected.wait(WAIT_S), "git never connected to the remote"
        assert leftovers(cli_tmp), "the clone workspace should exist while git waits"
        cli.stop(how)
        result = cli.finish()
    assert_clean_exit(result, *STOPS[how])
    assert leftovers(cli_tmp) == []


# ---- with the engine ---------------------------------------------------------------------------------


@pytest.fixture
def job(tmp_path: Path, hermetic_git: None) -> Path:
    """The adder job's manifest, its remote a bare repository on disk."""
    return manifest_for(tmp_path / "client", job_remote(tmp_path).as_uri())


def unique_repository(docker_cleanup: DockerCleanup, what: str) -> tuple[str, str]:
    """(repository, tag) unique to this test, so candidate tags and containers are its own."""
    tag = docker_cleanup.image_tag(f"faults-{what}-{docker_cleanup.run_id}")
    return tag.rpartition(":")[0], tag


def no_trace_of_the_build(client: docker.DockerClient, repository: str) -> None:
    """Neither the requested tag nor a candidate tag, and no container from them, survive."""
    deadline = time.monotonic() + 10  # the engine may still be winding the cancelled build down
    while time.monotonic() < deadline and (tags_of_repository(client, repository)
                                           or containers_of(client, repository)):
        time.sleep(0.5)
    assert tags_of_repository(client, repository) == []
    assert containers_of(client, repository) == []


@pytest.mark.docker
@pytest.mark.parametrize("smoke", [False, True], ids=["build", "build-with-smoke-test"])
def test_engine_stops_answering_during_the_build(job: Path, tmp_path: Path, cli_tmp: Path, base_image: str,
                                                 docker_client: docker.DockerClient,
                                                 docker_cleanup: DockerCleanup, smoke: bool) -> None:
    """The engine's socket dies once the job's build is under way: exit 3 naming the engine, and no
    tag (nor candidate tag) appears even if the engine finishes the build itself."""
    repository, tag = unique_repository(docker_cleanup, "engine")
    seen: list[bytes] = []
    traces = [0]

    def second_step(_total: int, chunk: bytes) -> bool:
        # The recent answer bytes as a whole: one chunk may carry several steps. The classic
        # builder names its steps in plain text; BuildKit's progress is base64 protobuf, so its
        # build is under way once it has sent a few progress chunks (loading the context, the
        # FROM image, then the steps).
        seen.append(chunk)
        recent = b"".join(seen)[-4096:]
        seen[:] = [recent]
        traces[0] += chunk.count(b"moby.buildkit.trace")
        return b"Step 2/" in recent or traces[0] >= 8

    with unix_proxy(tmp_path / "docker.sock", second_step) as proxy:
        result = run_cli("build", job, "--tag", tag, "--no-cache", *(["--smoke-test"] if smoke else []),
                         env={"TMPDIR": str(cli_tmp), "DOCKER_HOST": f"unix://{tmp_path / 'docker.sock'}"},
                         timeout=300)
        assert proxy.cut.is_set(), "the engine was never cut: the test proved nothing\n" + result.describe()
    assert_clean_exit(result, EXIT_ENVIRONMENT, r"Docker engine stopped answering")
    assert leftovers(cli_tmp) == []
    no_trace_of_the_build(docker_client, repository)


@pytest.mark.docker
@pytest.mark.parametrize("how", sorted(STOPS))
@pytest.mark.parametrize("phase", ["build", "smoke-test"])
def test_stopped_with_the_engine_at_work(job: Path, cli_tmp: Path, base_image: str,
                                         docker_client: docker.DockerClient, docker_cleanup: DockerCleanup,
                                         phase: str, how: str) -> None:
    """Ctrl-C or SIGTERM during a build step, and while the smoke test's container runs: exit 130 or
    143, no tag, no candidate tag, no container left."""
    repository, tag = unique_repository(docker_cleanup, f"{phase}-{how}")
    cli = RunningCli("build", job, "--tag", tag, "--no-cache", "--smoke-test", env={"TMPDIR": str(cli_tmp)})
    cli.wait_for(r"step 2/\d+" if phase == "build" else r"smoke test: starting")
    if phase == "smoke-test":
        time.sleep(0.5)  # inside the container's creation or start, the riskiest moment
    cli.stop(how)
    result = cli.finish()
    assert_clean_exit(result, *STOPS[how])
    assert leftovers(cli_tmp) == []
    no_trace_of_the_build(docker_client, repository)


@pytest.mark.docker
@pytest.mark.parametrize("how", sorted(STOPS))
def test_run_stopped_removes_its_container(job: Path, cli_tmp: Path, base_image: str,
                                           docker_client: docker.DockerClient, docker_cleanup: DockerCleanup,
                                           how: str) -> None:
    """``run`` is meant to be stopped: by Ctrl-C in a terminal or SIGTERM from a supervisor. Either
    way it exits 0 and its container is gone."""
    repository, tag = unique_repository(docker_cleanup, f"run-{how}")
    built = run_cli("build", job, "--tag", tag, env={"TMPDIR": str(cli_tmp)}, timeout=300)
    assert built.returncode == 0, built.describe()
    cli = RunningCli("run", tag, "--port", "0", env={"TMPDIR": str(cli_tmp)})
    cli.wait_for(r"is ready")
    # What the job serves, read from its own OpenAPI document, not a fixed list:
    cli.wait_for(r"GET\s+http://127\.0\.0\.1:\d+/api/v1/parameters")
    assert containers_of(docker_client, repository), "run should have a container while it runs"
    cli.stop(how)
    result = cli.finish()
    assert_clean_exit(result, 0, r"stopping and removing the container")
    assert containers_of(docker_client, repository) == []


@pytest.mark.docker
def test_two_builds_of_one_job_at_once(job: Path, cli_tmp: Path, base_image: str,
                                       docker_client: docker.DockerClient,
                                       docker_cleanup: DockerCleanup) -> None:
    """Two processes build the same manifest to the same tag (one of them smoke-testing): both
    succeed, and the tag ends on a complete image, one of the two, that serves the job."""
    repository, tag = unique_repository(docker_cleanup, "twice")
    env = {"TMPDIR": str(cli_tmp)}
    first = RunningCli("build", job, "--tag", tag, "--no-cache", "--json", env=env)
    second = RunningCli("build", job, "--tag", tag, "--no-cache", "--smoke-test", "--json", env=env)
    results = [first.finish(timeout=600), second.finish(timeout=600)]
    for result in results:
        assert result.returncode == 0, result.describe()
    built = {yaml.safe_load(result.stdout)["id"] for result in results}
    final = docker_client.images.get(tag)
    assert final.id in built
    labels = final.labels
    assert labels["org.opencontainers.image.title"] == "faulty-job"
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert tags_of_repository(docker_client, repository) == [tag]  # no candidate tag left behind
    assert image_exists(docker_client, tag)
    smoke = run_cli("test", tag, env=env)
    assert smoke.returncode == 0, smoke.describe()
    assert leftovers(cli_tmp) == []
    assert containers_of(docker_client, repository) == []
