"""Which Docker engine to talk to, how to reach it, and what to say when it cannot be reached.

The engine is chosen as the Docker CLI chooses it, so a machine set up for ``docker`` works as it is:

1. ``DOCKER_HOST`` (``unix://``, ``tcp://``, ``ssh://``), with ``DOCKER_TLS_VERIFY`` and
   ``DOCKER_CERT_PATH`` for TLS;
2. else the CLI's current context: ``DOCKER_CONTEXT``, else ``currentContext`` in
   ``$DOCKER_CONFIG/config.json`` (what ``docker context use NAME`` writes);
3. else the default socket.

Where docker-py alone would not behave as the CLI does, this module makes up the difference:

- **TLS under a CA bundle variable.** requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
  replace the ``verify`` a session was given (psf/requests#3829, docker/docker-py#2433), so on a
  machine that sets them (many corporate ones do) the engine's own CA is ignored and the handshake
  fails. :func:`pinned_tls` pins the engine's CA on docker-py's session; the variables still
  apply to everything else, and proxy variables still apply to the engine, as they do for the CLI.
- **ssh://.** docker-py's ssh transport imports paramiko even when told to use the ssh client, and
  lets ssh's own explanation of a failure go to the terminal while the caller gets "connection
  aborted". :class:`SshDialer` does what the Docker CLI does instead: every connection is an
  ``ssh HOST docker system dial-stdio``, behind a private unix socket that docker-py talks to, and
  ssh's words are kept to explain a failure.
- **contexts.** docker-py before 7.2 ignores them, and its ``docker.context`` finds the contexts
  folder only next to an existing config.json; they are read here from ``$DOCKER_CONFIG/contexts``.

Failures become our errors, all exit 3, each naming what to fix: :func:`explain` for one that
happened while opening the connection.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from .errors import AuthenticationRefused, EngineUnreachable, EnvironmentFailure, RacetrackError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
_TLS_FILES = "ca.pem, cert.pem and key.pem"


# ---- where the engine is ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineAddress:
    """The engine to open: its URL as configured and where that came from (for messages)."""

    url: str  # unix:///..., tcp://HOST:PORT, ssh://[USER@]HOST[:PORT]
    origin: str  # "DOCKER_HOST", "context 'NAME'", "the default socket"
    tls: Any = None  # docker.tls.TLSConfig, or None for no TLS
    tls_dir: str | None = None  # where the TLS files were looked for
    context: str | None = None  # the context's name when one was used

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0] if "://" in self.url else "tcp"

    def describe(self) -> str:
        return f"{self.url} ({self.origin})"


def resolve_address() -> EngineAddress:
    """The engine the Docker CLI would talk to in this environment (see the module's docstring)."""
    if os.environ.get("DOCKER_HOST"):
        return _from_environment()
    name, origin = current_context_name()
    if name == "default":
        return _from_environment()
    return _from_context(name, origin)


def current_context_name() -> tuple[str, str]:
    """The CLI's current context and what chose it: DOCKER_CONTEXT, else config.json, else default."""
    if os.environ.get("DOCKER_CONTEXT"):
        return os.environ["DOCKER_CONTEXT"], "DOCKER_CONTEXT"
    config = _config_dir() / "config.json"
    try:
        current = json.loads(config.read_text(encoding="utf-8")).get("currentContext")
    except (OSError, ValueError, AttributeError):
        current = None  # no or unreadable config: the CLI uses the default context too
    if isinstance(current, str) and current:
        return current, f"currentContext in {config}"
    return "default", "the default context"


def _config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _from_environment() -> EngineAddress:
    from docker.errors import TLSParameterError
    from docker.utils import kwargs_from_env

    url = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    origin = "DOCKER_HOST" if os.environ.get("DOCKER_HOST") else "the default socket"
    tls_dir = os.environ.get("DOCKER_CERT_PATH") or str(Path.home() / ".docker")
    try:
        tls = kwargs_from_env(environment=dict(os.environ)).get("tls")
    except TLSParameterError as exc:
        raise _tls_files_missing(url, origin, tls_dir, exc) from exc
    return EngineAddress(url=url, origin=origin, tls=tls, tls_dir=tls_dir if tls else None)


def _from_context(name: str, origin: str) -> EngineAddress:
    """Read the context as the Docker CLI stores it under $DOCKER_CONFIG/contexts.

    Read here rather than with ``docker.context``: docker-py looks for the contexts folder next to
    an existing config.json only, and in the working directory when there is none, which a fresh
    DOCKER_CONFIG that only ever had `docker context create` does not have.
    """
    key = hashlib.sha256(name.encode()).hexdigest()
    meta_file = _config_dir() / "contexts" / "meta" / key / "meta.json"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EnvironmentFailure(
            f"the Docker context '{name}' ({origin}) does not exist", hint=_choose_context_hint(origin)
        ) from None
    except (OSError, ValueError) as exc:
        raise EnvironmentFailure(
            f"the Docker context '{name}' ({origin}) cannot be read from {meta_file}: {exc}",
            hint=f"recreate it with `docker context rm {name}` and `docker context create {name} ...`",
        ) from exc
    endpoint = (meta.get("Endpoints") or {}).get("docker") if isinstance(meta, dict) else None
    if not isinstance(endpoint, dict) or not isinstance(endpoint.get("Host"), str) or not endpoint["Host"]:
        raise EnvironmentFailure(
            f"the Docker context '{name}' ({origin}) names no Docker endpoint",
            hint=_choose_context_hint(origin),
        )
    tls_dir = _config_dir() / "contexts" / "tls" / key / "docker"
    return EngineAddress(
        url=endpoint["Host"],
        origin=f"context '{name}'",
        tls=_context_tls(tls_dir, skip_verify=bool(endpoint.get("SkipTLSVerify"))),
        tls_dir=str(tls_dir),
        context=name,
    )


def _context_tls(folder: Path, *, skip_verify: bool) -> Any:
    """The context's TLS settings, None when it stores no TLS files (a plain or ssh:// engine)."""
    from docker.tls import TLSConfig

    ca, cert, key = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    if not (ca.is_file() or cert.is_file()):
        return None
    client_cert = (str(cert), str(key)) if cert.is_file() and key.is_file() else None
    # Without a ca.pem the CLI verifies with the system's roots, which is requests' default.
    return TLSConfig(client_cert=client_cert, ca_cert=str(ca) if ca.is_file() else None,
                     verify=not skip_verify)


def _choose_context_hint(origin: str) -> str:
    if origin == "DOCKER_CONTEXT":
        return "see `docker context ls`; set DOCKER_CONTEXT to one of them, or unset it"
    return "see `docker context ls`, then `docker context use NAME` (or `docker context use default`)"


# ---- opening it -------------------------------------------------------------------------------------


def open_client() -> Any:
    """A docker-py client whose engine answered a ping; our error when none does."""
    import docker
    import requests

    address = resolve_address()
    dialer = SshDialer.open(address) if address.scheme == "ssh" else None
    client = None
    try:
        client = docker.DockerClient(
            base_url=dialer.base_url if dialer else address.url,
            tls=pinned_tls(address.tls) if address.tls else False,
        )
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        if client is not None:
            client.close()
        failure = dialer.failure if dialer else None
        if dialer is not None:
            dialer.close()
        raise explain(exc, address, ssh_failure=failure) from exc
    if dialer is not None:
        weakref.finalize(client, dialer.close)  # the socket lives as long as the client
    try:
        require_api_version(str(client.api.api_version), address)
    except EnvironmentFailure:
        client.close()
        raise
    return client


# The oldest engine API our builds work on: Docker 17.09, the first with COPY --chown, which the
# job's Dockerfile uses (multi-stage builds and the build's `target`, 1.29, came in 17.05).
MINIMUM_API_VERSION = (1, 32)
MINIMUM_ENGINE = "Docker 17.09"


def api_version(version: str) -> tuple[int, ...] | None:
    """An engine API version, ``"1.41"``, as ``(1, 41)``; None when it cannot be read."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return None


def require_api_version(version: str, address: EngineAddress) -> None:
    """Refuse an engine whose API (``version``, as negotiated) is older than the builds need,
    before a build fails half-way on an option or a Dockerfile instruction it does not know."""
    found = api_version(version)
    if found is None:
        return  # an API version we cannot read: let the engine answer for itself
    if found < MINIMUM_API_VERSION:
        raise EnvironmentFailure(
            f"the Docker engine at {address.describe()} speaks API {version}, older than "
            f"{MINIMUM_ENGINE} (API {'.'.join(map(str, MINIMUM_API_VERSION))}), which racetrack-build "
            "needs for its Dockerfiles (multi-stage builds, COPY --chown)",
            hint=f"upgrade the engine to {MINIMUM_ENGINE} or newer, or point DOCKER_HOST at a newer one",
        )


def pinned_tls(tls: Any) -> Any:
    """docker-py's TLS settings ``tls`` again, as a TLSConfig that also pins its CA on the session."""
    from docker.tls import TLSConfig

    class PinnedTLSConfig(TLSConfig):  # type: ignore[misc]
        def configure_client(self, client: Any) -> None:
            # docker-py calls this on its session before the first request (the version probe).
            super().configure_client(client)
            pin_verify(client)

    return PinnedTLSConfig(client_cert=tls.cert, ca_cert=tls.ca_cert, verify=tls.verify)


def pin_verify(session: Any) -> None:
    """Make ``session.verify`` win over REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE for this session.

    requests reads those variables in ``merge_environment_settings`` and lets them replace the
    session's own ``verify`` unless a request passes one itself (psf/requests#3829: kept until
    requests 3). Turning ``trust_env`` off would do it too, but would also drop the proxy variables,
    which the Docker CLI honours for a tcp:// engine. A session left at requests' default
    (``True``: verify with the usual bundle) keeps the environment's bundle, as everywhere else.
    """
    verify = session.verify
    if verify is True:
        return
    if verify is None:
        verify = False  # docker-py's TLSConfig: verify None means "do not verify" (SkipTLSVerify)
    merge = session.merge_environment_settings

    def merge_keeping_verify(url: str, proxies: Any, stream: Any, request_verify: Any, cert: Any) -> Any:
        settings = merge(url, proxies, stream, request_verify, cert)
        if request_verify is None:  # a request that names its own keeps it
            settings["verify"] = verify
        return settings

    session.merge_environment_settings = merge_keeping_verify


# ---- ssh:// -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, url: str, origin: str) -> SshTarget:
        """``ssh://[USER@]HOST[:PORT]``, refusing what the Docker CLI refuses (a path, no host)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise EnvironmentFailure(f"{url} ({origin}) is not an ssh address: {exc}",
                                     hint="write it as ssh://USER@HOST:PORT") from exc
        if not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise EnvironmentFailure(
                f"{url} ({origin}) is not an ssh address the Docker CLI accepts",
                hint="write it as ssh://USER@HOST or ssh://USER@HOST:PORT, with no path",
            )
        return cls(host=parts.hostname, user=parts.username, port=port)

    def command(self, ssh: str) -> list[str]:
        """The Docker CLI's own way in: the engine host's docker CLI bridges our stdio to its engine."""
        args = [ssh, "-o", "BatchMode=yes", "-o", "ConnectTimeout=30"]
        if self.user:
            args += ["-l", self.user]
        if self.port:
            args += ["-p", str(self.port)]
        return [*args, "--", self.host, "docker", "system", "dial-stdio"]

    def shell_form(self) -> str:
        """How to try the same by hand."""
        port = f" -p {self.port}" if self.port else ""
        user = f"{self.user}@" if self.user else ""
        return f"ssh{port} {user}{self.host} docker version"


class SshDialer:
    """A unix socket in a private folder; each connection to it is one ssh to the engine's host.

    Threads pump bytes both ways. ssh runs in a session of its own, so Ctrl-C reaches only us and
    the cleanup after it can still talk to the engine; with BatchMode it never waits for a password
    nobody can type. When ssh fails, its stderr is kept in :attr:`failure` before the connection is
    closed, so whoever sees the connection drop can read why.
    """

    def __init__(self, target: SshTarget, ssh: str) -> None:
        self.target = target
        self._command = target.command(ssh)
        self.failure: str | None = None
        self._dir = tempfile.mkdtemp(prefix="racetrack-ssh-")  # 0700: the socket is ours alone
        self.socket_path = os.path.join(self._dir, "engine.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(16)
        self._finalizer = weakref.finalize(self, _close_listener, self._listener, self._dir)
        threading.Thread(target=self._accept, name="racetrack-ssh-dialer", daemon=True).start()

    @classmethod
    def open(cls, address: EngineAddress) -> SshDialer:
        target = SshTarget.parse(address.url, address.origin)
        ssh = shutil.which("ssh")
        if ssh is None:
            raise EnvironmentFailure(
                f"{address.describe()} needs the ssh client, and no `ssh` is on PATH",
                hint="install OpenSSH's client (Debian: apt-get install openssh-client)",
            )
        return cls(target, ssh)

    @property
    def base_url(self) -> str:
        return "unix://" + self.socket_path

    def close(self) -> None:
        self._finalizer()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=stderr, start_new_session=True)
            except OSError as exc:
                self.failure = str(exc)
                return
            assert proc.stdin is not None and proc.stdout is not None
            reader = threading.Thread(target=_pump_to_process, args=(conn, proc.stdin), daemon=True)
            reader.start()
            _pump_to_socket(proc.stdout, conn)
            if proc.wait() != 0:
                stderr.seek(0)
                said = stderr.read().decode("utf-8", "replace").strip()
                self.failure = said or f"ssh exited {proc.returncode}"
            # Only now: the client that sees this connection end may look at `failure`. The end of
            # the answer first, then what the client still sends is read until it closes (a socket
            # closed with unread data resets its peer, which then loses the end of the answer).
            _shutdown(conn, socket.SHUT_WR)
            reader.join(timeout=_DRAIN_SECONDS)
            _shutdown(conn)


# How long a connection whose ssh has ended waits for its client to close it.
_DRAIN_SECONDS = 2.0


def _pump_to_process(conn: socket.socket, stdin: IO[bytes]) -> None:
    """The client's bytes to ssh; once ssh is gone, read and dropped until the client closes."""
    open_stdin = True
    try:
        while data := conn.recv(65536):
            if open_stdin:
                try:
                    stdin.write(data)
                    stdin.flush()
                except (OSError, ValueError):
                    open_stdin = False  # ssh went away; the other pump notices
    except OSError:
        pass  # the connection went away
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def _pump_to_socket(stdout: IO[bytes], conn: socket.socket) -> None:
    try:
        while data := stdout.read1(65536):  # type: ignore[attr-defined]
            conn.sendall(data)
    except OSError:
        pass
    finally:
        stdout.close()


def _shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


def _close_listener(listener: socket.socket, folder: str) -> None:
    _shutdown(listener)  # wakes the thread blocked in accept()
    listener.close()
    shutil.rmtree(folder, ignore_errors=True)


# ---- what went wrong --------------------------------------------------------------------------------

_SSH_AUTH = re.compile(
    r"Permission denied|Too many authentication failures|no supported authentication", re.I
)
_SSH_HOST_KEY = re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED", re.I)
_SSH_UNREACHABLE = re.compile(
    r"Connection refused|Could not resolve hostname|timed out|No route to host|Network is unreachable"
    r"|Connection closed by|Connection reset",
    re.I,
)
_NO_DOCKER_CLI = re.compile(r"docker: (command )?not found|docker: No such file", re.I)
_TLS_HOST_MISMATCH = re.compile(r"IP address mismatch|Hostname mismatch|doesn't match", re.I)
_TLS_WE_REFUSED = re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed", re.I)
_TLS_THEY_REFUSED = re.compile(
    r"ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE"
    r"|DECRYPT_ERROR|ACCESS_DENIED)",
    re.I,
)
_TLS_NOT_SPOKEN = re.compile(r"WRONG_VERSION_NUMBER|record layer failure|http request|unknown protocol", re.I)
_WANTS_TLS = re.compile(r"Client sent an HTTP request to an HTTPS server", re.I)
# docker-py's refusal of an engine below its own minimum, and an engine's refusal of a newer client.
_API_TOO_OLD = re.compile(r"API versions below [\d.]+ are no longer supported|"
                          r"is too new\. Maximum supported API version is", re.I)
_PERMISSION = re.compile(r"Permission denied|PermissionError", re.I)


def explain(exc: BaseException, address: EngineAddress, *, ssh_failure: str | None = None) -> RacetrackError:
    """Our error for a failure to open ``address``: the first cause recognised, else unreachable."""
    text = _chain_text(exc)
    if ssh_failure:
        return _explain_ssh(ssh_failure, address)
    if _API_TOO_OLD.search(text):
        return EnvironmentFailure(
            f"the Docker engine at {address.describe()} is older than {MINIMUM_ENGINE}: {_detail(exc)}",
            hint=f"upgrade the engine to {MINIMUM_ENGINE} or newer, or point DOCKER_HOST at a newer one",
        )
    if _WANTS_TLS.search(text):
        return EnvironmentFailure(
            f"the engine at {address.describe()} speaks TLS and we spoke plain HTTP",
            hint=f"set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the folder holding its {_TLS_FILES}",
        )
    if address.tls is not None:
        tls_error = _explain_tls(text, address)
        if tls_error is not None:
            return tls_error
    if address.scheme == "unix" and _PERMISSION.search(text):
        return EnvironmentFailure(
            f"no permission to use the Docker engine's socket {address.describe()}: {_detail(exc)}",
            hint="run as a user in the `docker` group (or as root), or point DOCKER_HOST at another engine",
        )
    return EngineUnreachable(f"no Docker engine answers at {address.describe()}: {_detail(exc)}",
                             hint=_unreachable_hint(address))


def _explain_tls(text: str, address: EngineAddress) -> RacetrackError | None:
    where = address.describe()
    if _TLS_WE_REFUSED.search(text):
        if _TLS_HOST_MISMATCH.search(text):
            return EnvironmentFailure(
                f"the TLS certificate of the engine at {where} is not made out to that address",
                hint="use the host name or IP its certificate names (subjectAltName) in the address, "
                "or give the engine a certificate that names this one",
            )
        return EnvironmentFailure(
            f"the TLS certificate of the engine at {where} is not signed by the CA we were given "
            f"({_ca_file(address)})",
            hint=f"{_tls_files_hint(address)}: ca.pem must be the CA that signed the engine's "
            "certificate (the REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE variables do not apply to the engine)",
        )
    if _TLS_THEY_REFUSED.search(text):
        return AuthenticationRefused(
            f"the engine at {where} refused our TLS client certificate ({_alert(text)})",
            hint=f"{_tls_files_hint(address)}: cert.pem and key.pem must be signed by the CA the "
            "engine trusts (its --tlscacert)",
        )
    if _TLS_NOT_SPOKEN.search(text):
        return EnvironmentFailure(
            f"the engine at {where} does not speak TLS, and TLS is on "
            "(DOCKER_TLS_VERIFY or DOCKER_CERT_PATH)",
            hint="use the engine's TLS port, or unset DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for a plain one",
        )
    return None


def _explain_ssh(failure: str, address: EngineAddress) -> RacetrackError:
    target = SshTarget.parse(address.url, address.origin)
    said = _last_line(failure)
    where = address.describe()
    if _SSH_AUTH.search(failure):
        return AuthenticationRefused(
            f"the ssh server at {where} refused to authenticate us: {said}",
            hint=f"make `{target.shell_form()}` work without a prompt: load the key into ssh-agent or "
            "name it with IdentityFile in ~/.ssh/config, and authorize it on the engine's host",
        )
    if _SSH_HOST_KEY.search(failure):
        return EnvironmentFailure(
            f"ssh does not trust the host key of {where}: {said}",
            hint=f"connect once with `{target.shell_form()}` to check and record its key "
            "in ~/.ssh/known_hosts",
        )
    if _NO_DOCKER_CLI.search(failure):
        return EnvironmentFailure(
            f"the host at {where} has no docker CLI, which ssh:// needs there (`docker system dial-stdio`)",
            hint="install the docker CLI on the engine's host, or reach the engine over tcp:// with TLS",
        )
    if _SSH_UNREACHABLE.search(failure):
        return EngineUnreachable(
            f"no ssh server answers at {where}: {said}",
            hint="check the host and port in the address, and that sshd runs there",
        )
    return EngineUnreachable(
        f"the Docker engine behind {where} does not answer: {said}",
        hint=f"check that `{target.shell_form()}` works: the engine must run there and the user may use it",
    )


def _unreachable_hint(address: EngineAddress) -> str:
    if address.scheme == "unix":
        if address.origin == "the default socket":
            return "start the engine (e.g. `dockerd`), or point DOCKER_HOST or a Docker context at one"
        return "start the engine on that socket, or point DOCKER_HOST at one that runs"
    if address.context:
        return (f"check the address of context '{address.context}' (`docker context inspect "
                f"{address.context}`) and that the engine listens there")
    return "check the address and port in DOCKER_HOST, and that the engine listens there (dockerd -H)"


def _tls_files_hint(address: EngineAddress) -> str:
    if address.context:
        return (f"context '{address.context}' keeps its TLS files in {address.tls_dir}; recreate it with "
                "`docker context create` and this engine's ca=, cert=, key=")
    return f"check DOCKER_CERT_PATH ({address.tls_dir}) holds {_TLS_FILES} for this engine"


def _tls_files_missing(url: str, origin: str, tls_dir: str, exc: BaseException) -> EnvironmentFailure:
    missing = [name for name in ("ca.pem", "cert.pem", "key.pem") if not (Path(tls_dir) / name).is_file()]
    lacks = f"{tls_dir} has no {', '.join(missing)}" if missing else _first_line(exc)
    return EnvironmentFailure(
        f"TLS is on for {url} ({origin}; DOCKER_TLS_VERIFY or DOCKER_CERT_PATH is set) but {lacks}",
        hint=f"check DOCKER_CERT_PATH ({tls_dir}) holds {_TLS_FILES} for this engine, "
        "or unset DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for an engine without TLS",
    )


def _ca_file(address: EngineAddress) -> str:
    ca = getattr(address.tls, "ca_cert", None)
    return str(ca) if ca else "none"


def _alert(text: str) -> str:
    match = re.search(r"\[SSL: ([A-Z0-9_]+)\]", text) or re.search(r"ALERT_[A-Z_]+", text, re.I)
    if match is None:
        return "TLS handshake refused"
    return match.group(1) if match.groups() else match.group(0)


def _chain_text(exc: BaseException) -> str:
    """Every message in the exception's cause chain: docker-py wraps requests wraps urllib3 wraps ssl."""
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def _detail(exc: BaseException) -> str:
    """The innermost reason, short: "Connection refused" rather than three layers of wrapping."""
    text = _chain_text(exc)
    for pattern in (r"\[Errno \d+\] [^'\"\)\]\n]+", r"\[SSL: [A-Z0-9_]+\][^'\"\)\n]*"):
        found = re.findall(pattern, text)
        if found:
            return found[-1].strip()
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # ssh's "Warning: Permanently added ..." and the like are not the reason.
    reasons = [line for line in lines if not line.lower().startswith("warning:")]
    return (reasons or lines or ["ssh failed"])[-1]
