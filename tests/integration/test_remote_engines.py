"""racetrack-build against an engine that is not the local socket: TCP with TLS, ssh://, and the
Docker CLI's contexts, on a second engine started for the session (tests/integration/second_engine.py)
and never the first engine's socket.

REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE are set in every test, as these machines (and many corporate
ones) set them: they used to replace the engine's CA and fail the TLS handshake.

Cheap on purpose: one real build over TLS (the adder example, on the base image copied from the
first engine), then a smoke test (`racetrack-build test`) of that image over each other way in, and
one failure of each kind, which ends before any container starts.
"""

from __future__ import annotations

import contextlib
import gc
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import certifi
import docker
import docker.errors
import pytest

from racetrack_builder.base_image import ensure_base_image
from racetrack_builder.engine import DockerEngine
from racetrack_builder.errors import AuthenticationRefused, EnvironmentFailure
from tests.integration.jobs import CliResult, base_image_options, image_exists, in_ci, run_cli
from tests.integration.second_engine import SecondEngine, free_port, missing_tools

pytestmark = pytest.mark.docker

EXIT_ENVIRONMENT = 3
ADDER = "examples/adder/fatman.yaml"
# No engine has it: a command that got as far as looking for it would exit 2, not 3.
NO_SUCH_IMAGE = "racetrack-test/never-built:0"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_BUNDLE = str(HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else Path(certifi.where()))
CA_VARIABLES = {"REQUESTS_CA_BUNDLE": CA_BUNDLE, "CURL_CA_BUNDLE": CA_BUNDLE}
DOCKER_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT")


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def second(base_image: str, python_root_image: str) -> Iterator[SecondEngine]:
    """The second engine, with the root and base images of the first copied in, for the session."""
    if os.geteuid() != 0:
        _unavailable("a second Docker engine needs root")
    missing = missing_tools()
    if missing:
        _unavailable(f"a second Docker engine needs {', '.join(missing)}: "
                     f"apt-get install {' '.join(missing)}")
    # Short and outside pytest's basetemp: unix socket paths are limited to 108 bytes.
    # The base image a build of this checkout uses: `racetrack/python3:latest`, or the tag of these
    # wrapper sources when another checkout's build has since retagged `latest`.
    current = ensure_base_image(DockerEngine(), base_image_options(python_root_image))
    engine = SecondEngine.start(Path(tempfile.mkdtemp(prefix="rt-second-", dir="/tmp")))
    try:
        engine.load_from(dict(os.environ), list(dict.fromkeys([python_root_image, base_image, current])))
        yield engine
    finally:
        engine.stop()


@pytest.fixture(autouse=True)
def _machine_like_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CA bundle variables set; no engine chosen by the developer's own environment or contexts."""
    for name, value in CA_VARIABLES.items():
        monkeypatch.setenv(name, value)
    for name in DOCKER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))


def _cli(*args: str, env: dict[str, str]) -> CliResult:
    return run_cli(*args, env={**CA_VARIABLES, **env})


def _with_ssh(second: SecondEngine, bin_dir: Path | None = None) -> dict[str, str]:
    """PATH with the wrapper `ssh` that knows the second engine's key and host key."""
    assert second.ssh is not None
    return {"PATH": f"{bin_dir or second.ssh.bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _assert_exit_3(result: CliResult, *fragments: str) -> None:
    assert result.returncode == EXIT_ENVIRONMENT, result.describe()
    for fragment in fragments:
        assert fragment in result.stderr, result.describe()
    assert "Traceback" not in result.stderr, result.describe()


@pytest.fixture(scope="module")
def adder_on_second(second: SecondEngine) -> tuple[str, CliResult]:
    """The adder example built over TLS on the second engine: (tag, what the CLI did)."""
    tag = f"racetrack-test/remote-adder:{os.getpid()}"
    result = _cli("build", ADDER, "--local", "--tag", tag, "--json", env=second.tls_env())
    return tag, result


# ---- tcp:// with TLS --------------------------------------------------------------------------------


def test_a_build_over_tls_lands_on_that_engine(adder_on_second: tuple[str, CliResult], second: SecondEngine,
                                               docker_client: docker.DockerClient) -> None:
    tag, result = adder_on_second
    assert result.returncode == 0, result.describe()
    assert result.json()["image"] == tag
    assert second.has_image(tag)
    assert not image_exists(docker_client, tag), "the build went to the first engine"
    # The base image copied from the first engine was current there too: no remote rebuild.
    assert "building the base image" not in result.stderr, result.describe()


def test_our_connection_keeps_the_engines_ca_under_ca_bundle_variables(
    second: SecondEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in second.tls_env().items():
        monkeypatch.setenv(name, value)
    # The reason for the fix: docker-py alone lets REQUESTS_CA_BUNDLE replace the engine's CA. Should
    # requests stop doing that (psf/requests#3829, planned for requests 3), pin_verify can go.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # docker-py's failed probe leaks its socket
        with pytest.raises(docker.errors.DockerException, match="CERTIFICATE_VERIFY_FAILED"):
            docker.from_env()
        gc.collect()
    engine = DockerEngine()
    engine.connect()
    assert engine._client.info()["DockerRootDir"] == str(second.folder / "data")
    assert os.environ["REQUESTS_CA_BUNDLE"] == CA_BUNDLE  # the user's environment is left as it was
    engine._client.close()


@pytest.mark.parametrize(
    ("certs", "says", "hint"),
    [
        ("wrong_ca", "is not signed by the CA we were given", "ca.pem must be the CA that signed"),
        ("wrong_client", "refused our TLS client certificate", "cert.pem and key.pem must be signed"),
        ("empty", "has no ca.pem, cert.pem, key.pem", "check DOCKER_CERT_PATH"),
        ("plain", "speaks TLS and we spoke plain HTTP", "set DOCKER_TLS_VERIFY=1"),
    ],
)
def test_tls_refusals_are_exit_3_naming_the_fix(second: SecondEngine, tmp_path: Path, certs: str, says: str,
                                                hint: str) -> None:
    if certs == "plain":
        env = {"DOCKER_HOST": second.tls_url}
    elif certs == "empty":
        env = second.tls_env(tmp_path)
    else:
        env = second.tls_env(getattr(second.certs, certs))
    _assert_exit_3(_cli("test", NO_SUCH_IMAGE, env=env), says, hint)


def test_an_engine_that_does_not_listen_is_exit_3_naming_the_address(second: SecondEngine) -> None:
    env = {**second.tls_env(), "DOCKER_HOST": f"tcp://127.0.0.1:{free_port()}"}
    _assert_exit_3(_cli("test", NO_SUCH_IMAGE, env=env), "no Docker engine answers at tcp://127.0.0.1:",
                   "Connection refused", "check the address and port in DOCKER_HOST")


# ---- ssh:// -----------------------------------------------------------------------------------------


def test_ssh_engine_runs_the_smoke_test(adder_on_second: tuple[str, CliResult], second: SecondEngine) -> None:
    tag, built = adder_on_second
    assert built.returncode == 0, built.describe()
    assert second.ssh is not None
    before = _dialer_folders()
    result = _cli("test", tag, env={"DOCKER_HOST": second.ssh.url, **_with_ssh(second)})
    assert result.returncode == 0, result.describe()
    assert _dialer_folders() <= before, "the CLI left its ssh dialer's folder behind"


def _dialer_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("racetrack-ssh-*"))


def test_ssh_engine_through_our_code_path_is_the_second_engine(second: SecondEngine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert second.ssh is not None
    monkeypatch.setenv("DOCKER_HOST", second.ssh.url)
    monkeypatch.setenv("PATH", _with_ssh(second)["PATH"])
    engine = DockerEngine()
    engine.connect()
    assert engine._client.info()["DockerRootDir"] == str(second.folder / "data")
    engine._client.close()


def test_ssh_authentication_refused_is_exit_3_naming_the_fix(second: SecondEngine,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert second.ssh is not None
    env = {"DOCKER_HOST": second.ssh.url, **_with_ssh(second, second.ssh.stranger_bin_dir)}
    _assert_exit_3(_cli("test", NO_SUCH_IMAGE, env=env), "refused to authenticate us",
                   "Permission denied (publickey)", "ssh-agent")
    # In process, it is our error class for refused credentials.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(AuthenticationRefused):
        DockerEngine().connect()


def test_no_ssh_server_is_exit_3_naming_the_address(second: SecondEngine) -> None:
    env = {"DOCKER_HOST": f"ssh://root@127.0.0.1:{free_port()}", **_with_ssh(second)}
    _assert_exit_3(_cli("test", NO_SUCH_IMAGE, env=env), "no ssh server answers at ssh://root@127.0.0.1:",
                   "Connection refused")


# ---- contexts ---------------------------------------------------------------------------------------


def _docker_cli(*args: str) -> None:
    """The docker CLI on this test's DOCKER_CONFIG (the engine is never asked: context commands)."""
    subprocess.run(["docker", *args], env=dict(os.environ), check=True, capture_output=True, timeout=60)


@pytest.fixture
def contexts(second: SecondEngine) -> dict[str, str]:
    """Contexts made by the docker CLI itself in this test's DOCKER_CONFIG: name -> engine."""
    assert second.ssh is not None
    client = second.certs.client
    tls = f"host={second.tls_url},ca={client / 'ca.pem'},cert={client / 'cert.pem'},key={client / 'key.pem'}"
    _docker_cli("context", "create", "rt-tls", "--docker", tls)
    _docker_cli("context", "create", "rt-ssh", "--docker", f"host={second.ssh.url}")
    return {"rt-tls": second.tls_url, "rt-ssh": second.ssh.url}


def test_docker_context_variable_picks_the_tls_engine(adder_on_second: tuple[str, CliResult],
                                                      contexts: dict[str, str]) -> None:
    tag, built = adder_on_second
    assert built.returncode == 0, built.describe()
    result = _cli("test", tag, env={"DOCKER_CONTEXT": "rt-tls"})
    assert result.returncode == 0, result.describe()


def test_docker_context_use_picks_the_ssh_engine(second: SecondEngine, contexts: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # In process: every new ssh session costs this test sshd about a second, and the smoke test of
    # the image over ssh:// is run above already.
    _docker_cli("context", "use", "rt-ssh")
    monkeypatch.setenv("PATH", _with_ssh(second)["PATH"])
    engine = DockerEngine()
    engine.connect()
    assert engine._client.info()["DockerRootDir"] == str(second.folder / "data")
    engine._client.close()


def test_a_context_that_does_not_exist_is_exit_3(contexts: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    result = _cli("test", NO_SUCH_IMAGE, env={"DOCKER_CONTEXT": "rt-nowhere"})
    _assert_exit_3(result, "the Docker context 'rt-nowhere' (DOCKER_CONTEXT) does not exist",
                   "docker context ls")
    monkeypatch.setenv("DOCKER_CONTEXT", "rt-nowhere")
    with pytest.raises(EnvironmentFailure, match="does not exist"):
        DockerEngine().connect()


# ---- an engine too old ---------------------------------------------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


@contextlib.contextmanager
def engine_claiming_api(second: SecondEngine, api_version: str) -> Iterator[str]:
    """``tcp://127.0.0.1:PORT``: the second engine's answers, forwarded from its socket, except
    that ``/version`` reports ``api_version`` (and a matching old Docker release), as an engine of
    that age would; docker-py negotiates its API version from that answer."""
    socket_path = second.socket_url.removeprefix("unix://")

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            upstream = _UnixConnection(socket_path)
            try:
                upstream.request(self.command, self.path, body=body or None,
                                 headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                answer = upstream.getresponse()
                payload = answer.read()
            finally:
                upstream.close()
            if re.fullmatch(r"(/v[\d.]+)?/version", self.path.partition("?")[0]):
                claimed = {**json.loads(payload), "ApiVersion": api_version, "MinAPIVersion": "1.12",
                           "Version": "17.06.2-ce"}
                payload = json.dumps(claimed).encode()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815 (http.server's names)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_an_engine_too_old_for_our_dockerfiles_is_exit_3_naming_the_fix(second: SecondEngine) -> None:
    with engine_claiming_api(second, "1.30") as url:
        result = _cli("test", NO_SUCH_IMAGE, env={"DOCKER_HOST": url})
    _assert_exit_3(result, f"the Docker engine at {url} (DOCKER_HOST) speaks API 1.30",
                   "older than Docker 17.09", "COPY --chown", "upgrade the engine to Docker 17.09 or newer")


def test_an_engine_as_old_as_we_support_gets_past_the_check(second: SecondEngine) -> None:
    with engine_claiming_api(second, "1.32") as url:
        result = _cli("test", NO_SUCH_IMAGE, env={"DOCKER_HOST": url})
    assert result.returncode == 2, result.describe()  # it looked for the image: no such image
    assert NO_SUCH_IMAGE in result.stderr, result.describe()
