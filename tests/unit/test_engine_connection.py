"""How the engine is chosen (DOCKER_HOST, contexts), the CA pinned under REQUESTS_CA_BUNDLE, the ssh
dialer, and the explanation of each way a connection fails. No engine is needed: contexts are files
written here, ssh is a stand-in script, failures are built from the texts docker-py, requests and
ssh really produce (seen against the integration suite's second engine)."""

from __future__ import annotations

import gc
import hashlib
import json
import socket
import warnings
from pathlib import Path

import docker
import pytest
import requests
from docker.tls import TLSConfig

from racetrack_builder import engine_connection as ec
from racetrack_builder.engine import DockerEngine
from racetrack_builder.errors import AuthenticationRefused, EngineUnreachable, EnvironmentFailure

BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No engine variables; an empty DOCKER_CONFIG; the CA bundle variables as these machines set them."""
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", BUNDLE)
    monkeypatch.setenv("CURL_CA_BUNDLE", BUNDLE)
    return config


def _tls_files(folder: Path) -> Path:
    """ca.pem, cert.pem, key.pem that exist (docker-py checks that; nothing reads them here)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (folder / name).write_text("not read\n")
    return folder


def _context(config: Path, name: str, host: str, *, tls: bool = False, skip_verify: bool = False) -> None:
    """A context laid out as `docker context create` writes it."""
    key = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / key
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": skip_verify}
    document = {"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}
    (meta / "meta.json").write_text(json.dumps(document))
    if tls:
        _tls_files(config / "contexts" / "tls" / key / "docker")


def _use(config: Path, name: str) -> None:
    (config / "config.json").write_text(json.dumps({"auths": {}, "currentContext": name}))


# ---- choosing the engine ----------------------------------------------------------------------------


def test_without_settings_it_is_the_default_socket() -> None:
    address = ec.resolve_address()
    assert address.url == ec.DEFAULT_SOCKET and address.origin == "the default socket" and address.tls is None


def test_docker_host_wins_over_every_context(monkeypatch: pytest.MonkeyPatch,
                                             _clean_environment: Path) -> None:
    _context(_clean_environment, "remote", "tcp://127.0.0.1:2376")
    _use(_clean_environment, "remote")
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/other.sock")
    address = ec.resolve_address()
    assert address.url == "unix:///run/other.sock" and address.origin == "DOCKER_HOST"


def test_docker_context_variable_wins_over_config_json(monkeypatch: pytest.MonkeyPatch,
                                                       _clean_environment: Path) -> None:
    _context(_clean_environment, "a", "tcp://127.0.0.1:1111")
    _context(_clean_environment, "b", "ssh://me@127.0.0.1:2222")
    _use(_clean_environment, "a")
    monkeypatch.setenv("DOCKER_CONTEXT", "b")
    assert ec.resolve_address().url == "ssh://me@127.0.0.1:2222"
    monkeypatch.delenv("DOCKER_CONTEXT")
    address = ec.resolve_address()
    assert address.url == "tcp://127.0.0.1:1111"
    assert address.origin == "context 'a'" and address.context == "a"


def test_the_default_context_is_the_environment_again(_clean_environment: Path) -> None:
    _use(_clean_environment, "default")
    assert ec.resolve_address().url == ec.DEFAULT_SOCKET


def test_a_context_without_config_json_is_found(_clean_environment: Path, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """docker-py's own lookup would search ./contexts here: a DOCKER_CONFIG with no config.json."""
    monkeypatch.chdir(tmp_path)
    _context(_clean_environment, "remote", "tcp://127.0.0.1:2376", tls=True)
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    address = ec.resolve_address()
    assert address.tls is not None and address.tls.verify is True
    assert address.tls.ca_cert.endswith("docker/ca.pem") and address.tls.cert[0].endswith("docker/cert.pem")


def test_a_context_that_skips_verification_does_not_verify(_clean_environment: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _context(_clean_environment, "lax", "tcp://127.0.0.1:2376", tls=True, skip_verify=True)
    monkeypatch.setenv("DOCKER_CONTEXT", "lax")
    assert ec.resolve_address().tls.verify is False


@pytest.mark.parametrize(("how", "hint"),
                         [("variable", "set DOCKER_CONTEXT"), ("config", "docker context use")])
def test_a_missing_context_names_how_to_choose_another(how: str, hint: str, _clean_environment: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "variable":
        monkeypatch.setenv("DOCKER_CONTEXT", "gone")
    else:
        _use(_clean_environment, "gone")
    with pytest.raises(EnvironmentFailure, match="the Docker context 'gone' .* does not exist") as exc:
        ec.resolve_address()
    assert exc.value.exit_code == 3
    assert hint in (exc.value.hint or "") and "docker context ls" in (exc.value.hint or "")


def test_a_corrupted_context_is_named(_clean_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _context(_clean_environment, "bad", "tcp://x")
    meta = next((_clean_environment / "contexts").rglob("meta.json"))
    meta.write_text("{not json")
    monkeypatch.setenv("DOCKER_CONTEXT", "bad")
    with pytest.raises(EnvironmentFailure, match="cannot be read"):
        ec.resolve_address()


def test_tls_without_its_files_lists_the_missing_ones(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "ca.pem").write_text("x")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(folder))
    with pytest.raises(EnvironmentFailure, match=r"has no cert\.pem, key\.pem") as exc:
        ec.resolve_address()
    assert "DOCKER_CERT_PATH" in (exc.value.hint or "")


# ---- the engine's CA under REQUESTS_CA_BUNDLE -------------------------------------------------------


def _merged_verify(session: requests.Session, request_verify: str | None = None) -> object:
    return session.merge_environment_settings("https://127.0.0.1:2376/v1.41/_ping", {}, None,
                                              request_verify, None)["verify"]


def test_requests_alone_lets_the_bundle_variable_replace_the_sessions_ca() -> None:
    """Why pin_verify exists (psf/requests#3829)."""
    session = requests.Session()
    session.verify = "/engine/ca.pem"
    assert _merged_verify(session) == BUNDLE
    session.close()


@pytest.mark.parametrize(("given", "kept"),
                         [("/engine/ca.pem", "/engine/ca.pem"), (False, False), (None, False)])
def test_a_pinned_session_keeps_its_own_verify(given: object, kept: object) -> None:
    session = requests.Session()
    session.verify = given  # type: ignore[assignment]
    ec.pin_verify(session)
    assert _merged_verify(session) == kept
    assert _merged_verify(session, "/per-request.pem") == "/per-request.pem"  # a request's own still wins
    session.close()


def test_a_session_without_a_ca_of_its_own_keeps_the_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    session = requests.Session()
    ec.pin_verify(session)
    settings = session.merge_environment_settings("https://engine.example:2376/", {}, None, None, None)
    assert settings["verify"] == BUNDLE and settings["proxies"]["https"] == "http://127.0.0.1:3128"
    session.close()


def test_docker_py_sessions_get_the_pinned_ca(tmp_path: Path) -> None:
    """Through docker-py's own TLS hook, which runs before its first request."""
    certs = _tls_files(tmp_path / "certs")
    tls = TLSConfig(client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
                    ca_cert=str(certs / "ca.pem"), verify=True)
    api = docker.APIClient(base_url="tcp://127.0.0.1:2376", tls=ec.pinned_tls(tls), version="1.41")
    assert api.base_url.startswith("https://")
    assert _merged_verify(api) == str(certs / "ca.pem") and api.cert == tls.cert
    api.close()


# ---- ssh:// -----------------------------------------------------------------------------------------


def test_ssh_addresses_parse_as_the_docker_cli_reads_them() -> None:
    target = ec.SshTarget.parse("ssh://deploy@build-host:2222", "DOCKER_HOST")
    assert (target.user, target.host, target.port) == ("deploy", "build-host", 2222)
    assert target.command("/usr/bin/ssh") == [
        "/usr/bin/ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-l", "deploy", "-p", "2222",
        "--", "build-host", "docker", "system", "dial-stdio",
    ]
    assert target.shell_form() == "ssh -p 2222 deploy@build-host docker version"
    bare = ec.SshTarget.parse("ssh://build-host", "DOCKER_HOST")
    assert bare.command("ssh")[-5:] == ["--", "build-host", "docker", "system", "dial-stdio"]
    assert "-l" not in bare.command("ssh") and "-p" not in bare.command("ssh")


@pytest.mark.parametrize("url", ["ssh://host/var/run/docker.sock", "ssh://", "ssh://host:notaport"])
def test_ssh_addresses_the_cli_refuses_are_refused(url: str) -> None:
    with pytest.raises(EnvironmentFailure, match="ssh"):
        ec.SshTarget.parse(url, "DOCKER_HOST")


def _fake_ssh(folder: Path, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ssh"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return folder


def _dialer(tmp_path: Path, script: str) -> ec.SshDialer:
    ssh = _fake_ssh(tmp_path / "bin", script) / "ssh"
    return ec.SshDialer(ec.SshTarget("host", "me", 22), str(ssh))


def _exchange(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(path)
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received


def test_the_dialer_carries_bytes_both_ways(tmp_path: Path) -> None:
    dialer = _dialer(tmp_path, "exec cat")  # dial-stdio's part, as an echo
    try:
        assert _exchange(dialer.socket_path, b"GET /_ping HTTP/1.1\r\n\r\n" * 1000) == (
            b"GET /_ping HTTP/1.1\r\n\r\n" * 1000)
        assert dialer.failure is None
    finally:
        dialer.close()
    assert not Path(dialer.socket_path).parent.exists()


def test_the_dialer_keeps_sshs_reason_before_the_connection_ends(tmp_path: Path) -> None:
    dialer = _dialer(tmp_path, "echo 'me@host: Permission denied (publickey).' >&2; exit 255")
    try:
        assert _exchange(dialer.socket_path, b"GET /_ping HTTP/1.1\r\n\r\n") == b""
        assert dialer.failure == "me@host: Permission denied (publickey)."  # already there at EOF
    finally:
        dialer.close()


def test_refused_ssh_is_exit_3_through_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_ssh(tmp_path / "bin", "echo 'me@host: Permission denied (publickey).' >&2; exit 255")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@host:2222")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # docker-py's failed version probe
        with pytest.raises(AuthenticationRefused) as exc:
            DockerEngine().connect()
        message, hint, code = str(exc.value), exc.value.hint or "", exc.value.exit_code
        del exc
        gc.collect()
    assert code == 3 and "refused to authenticate us: me@host: Permission denied (publickey)." in message
    assert "ssh -p 2222 me@host docker version" in hint and "ssh-agent" in hint


def test_no_ssh_client_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@host")
    with pytest.raises(EnvironmentFailure, match="no `ssh` is on PATH") as exc:
        DockerEngine().connect()
    assert "openssh-client" in (exc.value.hint or "")


def test_closing_a_dialer_twice_is_harmless_and_stops_it(tmp_path: Path) -> None:
    dialer = _dialer(tmp_path, "exec cat")
    folder = Path(dialer.socket_path).parent
    dialer.close()
    dialer.close()
    assert not folder.exists()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn, pytest.raises(OSError):
        conn.connect(dialer.socket_path)


# ---- explaining failures ----------------------------------------------------------------------------


def _chained(*messages: str) -> Exception:
    """docker-py's exception wrapping requests' wrapping the innermost, as ``raise ... from``."""
    inner: Exception | None = None
    for message in reversed(messages):
        exc = docker.errors.DockerException(message)
        exc.__cause__ = inner
        inner = exc
    assert inner is not None
    return inner


TCP = ec.EngineAddress("tcp://127.0.0.1:2376", "DOCKER_HOST", tls=object(), tls_dir="/certs")
SSH = ec.EngineAddress("ssh://me@127.0.0.1:2222", "DOCKER_HOST")
LOCAL = ec.EngineAddress(ec.DEFAULT_SOCKET, "the default socket")
VERIFY_FAILED = ("Error while fetching server API version: HTTPSConnectionPool(host='127.0.0.1', port=2376): "
                 "Max retries exceeded with url: /version (Caused by SSLError(SSLCertVerificationError(1, "
                 "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer "
                 "certificate (_ssl.c:1006)')))")


@pytest.mark.parametrize(
    ("text", "kind", "says", "hint"),
    [
        (VERIFY_FAILED, EnvironmentFailure, "is not signed by the CA we were given", "ca.pem must be the CA"),
        (VERIFY_FAILED.replace("unable to get local issuer certificate",
                               "IP address mismatch, certificate is not valid for '10.0.0.1'"),
         EnvironmentFailure, "not made out to that address", "subjectAltName"),
        ("SSLError(1, '[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580)')",
         AuthenticationRefused, "refused our TLS client certificate (SSLV3_ALERT_BAD_CERTIFICATE)",
         "cert.pem and key.pem"),
        ("SSLError(1, '[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required')",
         AuthenticationRefused, "refused our TLS client certificate", "--tlscacert"),
        ("SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)')",
         EnvironmentFailure, "does not speak TLS", "unset DOCKER_TLS_VERIFY"),
        ("400 Client Error: Bad Request (\"Client sent an HTTP request to an HTTPS server.\")",
         EnvironmentFailure, "speaks TLS and we spoke plain HTTP", "DOCKER_TLS_VERIFY=1"),
        ("Connection aborted. ConnectionRefusedError(111, 'Connection refused') "
         "[Errno 111] Connection refused",
         EngineUnreachable, "no Docker engine answers at tcp://127.0.0.1:2376 (DOCKER_HOST): [Errno 111] "
         "Connection refused", "check the address and port in DOCKER_HOST"),
    ],
)
def test_tcp_failures_name_the_fix(text: str, kind: type, says: str, hint: str) -> None:
    err = ec.explain(_chained("Error while fetching server API version", text), TCP)
    assert type(err) is kind and err.exit_code == 3
    assert says in err.message and hint in (err.hint or "")


@pytest.mark.parametrize(
    ("stderr", "kind", "says", "hint"),
    [
        ("me@127.0.0.1: Permission denied (publickey).", AuthenticationRefused, "refused to authenticate us",
         "ssh-agent"),
        ("Warning: Permanently added '[127.0.0.1]:2222'\nHost key verification failed.", EnvironmentFailure,
         "does not trust the host key", "known_hosts"),
        ("bash: line 1: docker: command not found", EnvironmentFailure, "has no docker CLI",
         "install the docker"),
        ("ssh: connect to host 127.0.0.1 port 2222: Connection refused", EngineUnreachable,
         "no ssh server answers", "sshd runs there"),
        ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
         EngineUnreachable, "the Docker engine behind ssh://me@127.0.0.1:2222 (DOCKER_HOST) does not answer",
         "ssh -p 2222 me@127.0.0.1 docker version"),
    ],
)
def test_ssh_failures_name_the_fix(stderr: str, kind: type, says: str, hint: str) -> None:
    err = ec.explain(_chained("Connection aborted.", "RemoteDisconnected"), SSH, ssh_failure=stderr)
    assert type(err) is kind and err.exit_code == 3
    assert says in err.message and hint in (err.hint or "")
    assert "Warning:" not in err.message


@pytest.mark.parametrize("version", ["1.24", "1.30", "1.31"])
def test_an_engine_older_than_our_dockerfiles_need_is_refused(version: str) -> None:
    with pytest.raises(EnvironmentFailure) as caught:
        ec.require_api_version(version, LOCAL)
    assert caught.value.exit_code == 3
    assert f"speaks API {version}, older than Docker 17.09 (API 1.32)" in caught.value.message
    assert "upgrade the engine" in (caught.value.hint or "")


@pytest.mark.parametrize("version", ["1.32", "1.41", "1.100", "2.0", "unknown"])
def test_an_engine_new_enough_or_unreadable_passes(version: str) -> None:
    ec.require_api_version(version, LOCAL)


@pytest.mark.parametrize("text", [
    "API versions below 1.24 are no longer supported by this library.",
    "client version 1.45 is too new. Maximum supported API version is 1.23",
])
def test_an_engine_docker_py_will_not_speak_to_is_too_old_not_unreachable(text: str) -> None:
    err = ec.explain(_chained(text), TCP)
    assert type(err) is EnvironmentFailure and err.exit_code == 3
    assert "is older than Docker 17.09" in err.message and "upgrade the engine" in (err.hint or "")


def test_a_missing_local_engine_says_start_it() -> None:
    err = ec.explain(_chained("Error while fetching server API version",
                              "FileNotFoundError(2, 'No such file or directory') "
                              "[Errno 2] No such file or directory"),
                     LOCAL)
    assert isinstance(err, EngineUnreachable) and "start the engine" in (err.hint or "")
    assert err.message.endswith("[Errno 2] No such file or directory")


def test_a_socket_we_may_not_use_names_the_docker_group() -> None:
    err = ec.explain(_chained("Error while fetching server API version",
                              "PermissionError(13, 'Permission denied') [Errno 13] Permission denied"), LOCAL)
    assert "docker` group" in (err.hint or "") and not isinstance(err, EngineUnreachable)


def test_an_unreachable_context_points_at_the_context() -> None:
    address = ec.EngineAddress("tcp://10.0.0.9:2376", "context 'ci'", context="ci")
    err = ec.explain(_chained("[Errno 113] No route to host"), address)
    assert "docker context inspect ci" in (err.hint or "") and "context 'ci'" in err.message
