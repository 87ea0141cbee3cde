"""A second Docker engine on this machine, reached the ways a remote one is: TCP with TLS, and ssh.

``SecondEngine.start(folder)`` makes everything in ``folder`` and starts:

- a dockerd with its own data (on a tmpfs), exec root, pid file, config and unix socket, on a bridge
  of its own (``ip link add ... type bridge``) with ``--iptables=false``, listening with ``--tlsverify`` on a
  loopback TCP port. Never ``--bridge=none``: at start it deletes the first engine's docker0.
- the certificates for it, made with openssl: a CA, a server certificate for IP:127.0.0.1, a client
  certificate; and, to be refused, a client certificate and a CA from another, unrelated CA.
- an sshd on 127.0.0.1 (key authentication only) whose sessions have DOCKER_HOST set to this engine,
  so ``ssh ... docker system dial-stdio`` reaches it and never the first engine. ssh reads
  ``~/.ssh`` from the password database, not $HOME, so the client side is a wrapper ``ssh`` on PATH
  that adds ``-F`` with this folder's key and known_hosts (:meth:`ssh_path`).

``stop()`` ends both servers (by their own process ids) and removes the bridge and the folder.
Everything listens on 127.0.0.1 only. Needs root, dockerd, openssl and openssh-server.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
START_TIMEOUT_S = 60.0
DATA_TMPFS_SIZE = "6g"  # the root and base images and a job image or two use well under 1 GB


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def missing_tools() -> list[str]:
    """The Debian packages this needs that are not installed."""
    needs = {"dockerd": "docker.io", "openssl": "openssl", "ssh": "openssh-client", "ip": "iproute2"}
    missing = [package for tool, package in needs.items() if shutil.which(tool) is None]
    if not os.access(SSHD, os.X_OK):
        missing.append("openssh-server")
    return missing


def _run(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
         timeout: float = 120) -> str:
    result = subprocess.run(list(args), cwd=cwd, env=dict(env) if env is not None else None,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result.stdout


# ---- certificates -----------------------------------------------------------------------------------


def _openssl_ca(folder: Path, name: str) -> None:
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
          "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem", "-out", f"{name}.pem"], cwd=folder)


def _openssl_signed(folder: Path, ca: str, name: str, extensions: str) -> None:
    """``name-cert.pem`` / ``name-key.pem`` signed by ``ca`` with the given v3 extensions."""
    (folder / f"{name}.ext").write_text(extensions + "\n")
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
          "-keyout", f"{name}-key.pem", "-out", f"{name}.csr"], cwd=folder)
    _run(["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
          "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}-cert.pem"], cwd=folder)


def _cert_dir(folder: Path, ca: str, cert: str) -> Path:
    """A DOCKER_CERT_PATH folder: ``ca.pem``, ``cert.pem``, ``key.pem`` as the CLI expects them."""
    folder.mkdir(parents=True)
    shutil.copy(folder.parent / f"{ca}.pem", folder / "ca.pem")
    shutil.copy(folder.parent / f"{cert}-cert.pem", folder / "cert.pem")
    shutil.copy(folder.parent / f"{cert}-key.pem", folder / "key.pem")
    return folder


@dataclass(frozen=True)
class Certificates:
    """Folders for DOCKER_CERT_PATH, and the server's files."""

    client: Path  # the right CA and a client certificate the engine accepts
    wrong_ca: Path  # a client certificate the engine accepts, but a CA that did not sign the engine's
    wrong_client: Path  # the right CA, but a client certificate from another CA: the engine refuses it
    server_ca: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def make(cls, folder: Path) -> Certificates:
        folder.mkdir(parents=True)
        _openssl_ca(folder, "ca")
        _openssl_ca(folder, "other-ca")
        _openssl_signed(folder, "ca", "server",
                        "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth")
        _openssl_signed(folder, "ca", "client", "extendedKeyUsage = clientAuth")
        _openssl_signed(folder, "other-ca", "stranger", "extendedKeyUsage = clientAuth")
        return cls(
            client=_cert_dir(folder / "client", "ca", "client"),
            wrong_ca=_cert_dir(folder / "wrong-ca", "other-ca", "client"),
            wrong_client=_cert_dir(folder / "wrong-client", "ca", "stranger"),
            server_ca=folder / "ca.pem",
            server_cert=folder / "server-cert.pem",
            server_key=folder / "server-key.pem",
        )


# ---- the bridge -------------------------------------------------------------------------------------


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 no route of this machine uses, for the second engine's bridge (never left by traffic:
    the engine runs with --iptables=false and tests use host networking or loopback ports)."""
    routes = _run(["ip", "-4", "route", "show"])
    used = []
    for line in routes.splitlines():
        with contextlib.suppress(ValueError):
            used.append(ipaddress.ip_network(line.split()[0], strict=False))
    for third in range(10, 250):
        candidate = ipaddress.IPv4Network(f"10.251.{third}.0/24")
        if not any(candidate.overlaps(net) for net in used if net.prefixlen > 0):
            return candidate
    raise RuntimeError("no free 10.251.x.0/24 for the second engine's bridge")


@dataclass
class Bridge:
    name: str
    subnet: ipaddress.IPv4Network

    @classmethod
    def create(cls) -> Bridge:
        name = "rt2e" + secrets.token_hex(4)  # at most 15 characters
        subnet = _free_subnet()
        _run(["ip", "link", "add", "name", name, "type", "bridge"])
        try:
            _run(["ip", "addr", "add", f"{subnet.network_address + 1}/{subnet.prefixlen}", "dev", name])
            _run(["ip", "link", "set", name, "up"])
        except Exception:
            subprocess.run(["ip", "link", "delete", name], check=False, capture_output=True)
            raise
        return cls(name, subnet)

    def delete(self) -> None:
        subprocess.run(["ip", "link", "delete", self.name], check=False, capture_output=True)


# ---- the servers ------------------------------------------------------------------------------------


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """End a server this module started (its own pid only), then reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _wait_for(check: Callable[[], bool], what: str, log: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if check():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise RuntimeError(f"{what} did not come up (exit {proc.poll()}); last lines of {log}:\n{tail}")


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class SshAccess:
    """The sshd in front of the second engine, and wrappers of ``ssh`` that know how to reach it."""

    port: int
    user: str
    bin_dir: Path  # holds an `ssh` with the authorized key
    stranger_bin_dir: Path  # holds an `ssh` with a key the server does not accept

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"


def _ssh_wrapper(folder: Path, key: Path, known_hosts: Path) -> Path:
    folder.mkdir(parents=True)
    config = folder / "ssh_config"
    config.write_text(
        "Host *\n"
        f"  IdentityFile {key}\n"
        "  IdentitiesOnly yes\n"
        "  IdentityAgent none\n"
        f"  UserKnownHostsFile {known_hosts}\n"
        "  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n"
        "  PasswordAuthentication no\n"
    )
    wrapper = folder / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {config} "$@"\n')
    wrapper.chmod(0o755)
    return folder


@dataclass
class SecondEngine:
    folder: Path
    tls_port: int
    certs: Certificates
    bridge: Bridge
    dockerd: subprocess.Popen[bytes] | None = None
    sshd: subprocess.Popen[bytes] | None = None
    ssh: SshAccess | None = None
    data_mounted: bool = False

    @property
    def socket_url(self) -> str:
        return f"unix://{self.folder / 'docker.sock'}"

    @property
    def tls_url(self) -> str:
        return f"tcp://127.0.0.1:{self.tls_port}"

    def tls_env(self, cert_path: Path | None = None) -> dict[str, str]:
        """The variables the docker CLI (and racetrack-build) need for the TLS port."""
        return {"DOCKER_HOST": self.tls_url, "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(cert_path or self.certs.client)}

    @classmethod
    def start(cls, folder: Path) -> SecondEngine:
        folder.mkdir(parents=True, exist_ok=True)
        certs = Certificates.make(folder / "tls")
        engine = cls(folder=folder, tls_port=free_port(), certs=certs, bridge=Bridge.create())
        try:
            engine._start_dockerd()
            engine._start_sshd()
        except BaseException:
            engine.stop()
            raise
        return engine

    def _start_dockerd(self) -> None:
        (self.folder / "daemon.json").write_text("{}\n")  # not /etc/docker/daemon.json's hosts
        # Layers in memory: deleting a disk data root of a few images took 30-80 s here, an unmount
        # takes none, and loading the images is faster too.
        data = self.folder / "data"
        data.mkdir()
        _run(["mount", "-t", "tmpfs", "-o", f"size={DATA_TMPFS_SIZE},mode=0711", "tmpfs", str(data)])
        self.data_mounted = True
        log = self.folder / "dockerd.log"
        args = [
            "dockerd", "--config-file", str(self.folder / "daemon.json"),
            "--data-root", str(self.folder / "data"), "--exec-root", str(self.folder / "exec"),
            "--pidfile", str(self.folder / "docker.pid"),
            "-H", self.socket_url, "-H", self.tls_url,
            "--tlsverify", "--tlscacert", str(self.certs.server_ca),
            "--tlscert", str(self.certs.server_cert), "--tlskey", str(self.certs.server_key),
            "--bridge", self.bridge.name, "--iptables=false",
        ]
        with log.open("ab") as out:
            # A session of its own: Ctrl-C in the test run must not take the engine down mid-test.
            self.dockerd = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                            start_new_session=True)
        _wait_for(lambda: self.docker("version", check=False) == 0, "the second dockerd", log, self.dockerd)

    def _start_sshd(self) -> None:
        folder = self.folder / "ssh"
        folder.mkdir()
        for name in ("host_key", "user_key", "stranger_key"):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)])
        shutil.copy(folder / "user_key.pub", folder / "authorized_keys")
        port = free_port()
        known_hosts = folder / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {(folder / 'host_key.pub').read_text().strip()}\n")
        config = folder / "sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\n"
            f"HostKey {folder / 'host_key'}\nPidFile {folder / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {folder / 'authorized_keys'}\n"
            "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
            "UseDNS no\nPrintMotd no\nPrintLastLog no\n"
            # Sessions reach this engine, never the first one at /var/run/docker.sock.
            f"SetEnv DOCKER_HOST={self.socket_url}\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        log = folder / "sshd.log"
        self.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config), "-E", str(log)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_for(lambda: _port_open(port), "the sshd", log, self.sshd)
        self.ssh = SshAccess(
            port=port,
            user=_current_user(),
            bin_dir=_ssh_wrapper(folder / "bin", folder / "user_key", known_hosts),
            stranger_bin_dir=_ssh_wrapper(folder / "stranger-bin", folder / "stranger_key", known_hosts),
        )

    def docker(self, *args: str, check: bool = True) -> int:
        """Run the docker CLI against this engine's unix socket; its exit code."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = self.socket_url
        result = subprocess.run(["docker", *args], env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, timeout=120, check=False)
        if check and result.returncode != 0:
            said = result.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"docker {' '.join(args)} on the second engine: {said}")
        return result.returncode

    def load_from(self, first_engine_env: Mapping[str, str], refs: Sequence[str]) -> None:
        """Copy images from the first engine: `docker save | docker load` (no registry needed)."""
        target = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        target["DOCKER_HOST"] = self.socket_url
        save = subprocess.Popen(["docker", "save", *refs], env=dict(first_engine_env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        load = subprocess.run(["docker", "load", "--quiet"], env=target, stdin=save.stdout,
                              capture_output=True, timeout=600, check=False)
        assert save.stdout is not None
        save.stdout.close()
        save_err = save.stderr.read() if save.stderr else b""
        if save.wait(timeout=60) != 0 or load.returncode != 0:
            raise RuntimeError(f"docker save | docker load of {refs} failed: "
                               f"{save_err.decode()[-1000:]} {load.stderr.decode()[-1000:]}")
        if save.stderr:
            save.stderr.close()

    def has_image(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False) == 0

    def stop(self) -> None:
        _stop(self.sshd)
        _stop(self.dockerd)
        self.bridge.delete()
        if self.data_mounted:
            data = str(self.folder / "data")
            if subprocess.run(["umount", "-R", data], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "-R", "-l", data], capture_output=True, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@contextlib.contextmanager
def second_engine(folder: Path) -> Iterator[SecondEngine]:
    engine = SecondEngine.start(folder)
    try:
        yield engine
    finally:
        engine.stop()
