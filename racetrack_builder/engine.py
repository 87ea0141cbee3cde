"""The Docker engine, through docker-py, behind a small seam.

Only this module talks to the engine. It speaks to whatever ``DOCKER_HOST`` (or the default socket)
names, so a remote engine works too, and converts docker-py and connection errors into our own:
an engine that cannot be reached is an EnvironmentFailure (exit 3), a failing Dockerfile step is a
BuildFailed (exit 1) carrying the step and the tail of its output.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AuthenticationRefused, BuildFailed, EngineUnreachable, EnvironmentFailure, UsageError

LOG_TAIL_LINES = 30
_STEP = re.compile(r"^Step (?P<n>\d+)/(?P<total>\d+) : (?P<instruction>.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

StepCallback = Callable[[int, int, str], None]
LogCallback = Callable[[str], None]


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    id: str
    size: int  # bytes
    duration: float  # seconds


_TLS_FAILURE = re.compile(
    r"CERTIFICATE_VERIFY_FAILED|Certificate verification failed|certificate verify failed", re.I
)
_NETWORK_FAILURE = re.compile(
    r"Temporary failure resolving|Name or service not known|Failed to establish a new "
    r"connection|Connection refused|Network is unreachable|Could not resolve",
    re.I,
)
_AUTH_FAILURE = re.compile(r"\b(401|403)\b.*(Unauthori[sz]ed|Forbidden)|User for \S+:", re.I)
_CONFLICT = re.compile(r"has requirement .*, but you have|is incompatible|which is not installed")


def _explain_failure(instruction: str, tail: list[str]) -> tuple[str, str | None]:
    """A headline and a fix for a failed step, recognised from the step and its output."""
    text = "\n".join(tail)
    wrapper = "fatman_wrapper" in instruction or "fatman-wrapper" in instruction
    if wrapper and '"check-server"' in instruction:
        return (
            "the wrapper's server cannot be imported beside the job's packages",
            "a requirement pins Flask, Werkzeug or another wrapper dependency at a version that does "
            "not work with the rest; pin a matching set (e.g. Flask 2.0.x with Werkzeug 2.0.x)",
        )
    if wrapper and '"check"' in instruction:
        return (
            "the job cannot be imported inside the image",
            "fix the error in the step's output below; the build runs the import the service runs at start",
        )
    if _TLS_FAILURE.search(text):
        return (
            "a build step could not verify a TLS certificate",
            "on a network that intercepts TLS, pass its CA bundle with --ca-cert FILE",
        )
    if _NETWORK_FAILURE.search(text):
        return (
            "a build step could not reach the network",
            "check the index or mirror address; a server on this machine needs --network host",
        )
    if "apt-get" in instruction:
        if "Unable to locate package" in text or "has no installation candidate" in text:
            return (
                "a system dependency could not be found by apt",
                "check the names in system_dependencies against Debian's packages for the base image",
            )
        return "installing system_dependencies with apt failed", None
    if "pip check" in instruction and _CONFLICT.search(text):
        conflicts = [line.strip() for line in tail if _CONFLICT.search(line)]
        return (
            f"a job requirement conflicts with the wrapper's own dependencies: {'; '.join(conflicts[-3:])}",
            "pin a version of the job's requirement that the wrapper supports, or drop the pin",
        )
    if "pip install" in instruction:
        missing = [line.strip() for line in tail if "No matching distribution found" in line]
        if missing:
            return (
                f"pip could not install the job's requirements: {missing[-1]}",
                "check the name and version in the requirements file and the index it is served from",
            )
        return (
            "pip could not install the job's requirements",
            "check python.requirements_path, the index it needs and secret_build_env_file",
        )
    return "a build step failed", None


def _short(instruction: str, limit: int = 90) -> str:
    """A Dockerfile instruction on one short line, for messages."""
    text = " ".join(instruction.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Engine:
    """A connection to one Docker engine, opened on first use."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker  # lazy: importing docker-py costs time `validate` does not have
            from docker.errors import DockerException

            client = None
            try:
                client = docker.from_env()
                client.ping()
            except DockerException as exc:
                if client is not None:
                    client.close()
                raise EngineUnreachable(
                    f"no Docker engine answers ({_first_line(exc)})",
                    hint="start the engine (e.g. `dockerd`) or point DOCKER_HOST at one",
                ) from exc
            self._client = client
        return self._client

    @property
    def api(self) -> Any:
        return self.client.api

    # -- images --------------------------------------------------------------------------------------
    def image_labels(self, ref: str) -> dict[str, str] | None:
        """The labels of a local image, or None when the engine has no such image."""
        from docker.errors import ImageNotFound

        with _converted("inspect image"):
            try:
                attrs = self.api.inspect_image(ref)
            except ImageNotFound:
                return None
        return dict((attrs.get("Config") or {}).get("Labels") or {})

    def image_id(self, ref: str) -> str | None:
        """The id of a local image, or None when the engine has no such image."""
        from docker.errors import ImageNotFound

        with _converted("inspect image"):
            try:
                return str(self.api.inspect_image(ref)["Id"])
            except ImageNotFound:
                return None

    def tag(self, image_id: str, ref: str) -> None:
        """Point ``ref`` at ``image_id``."""
        repository, tag = _split_ref(ref)
        with _converted("tag image"):
            self.api.tag(image_id, repository, tag, force=True)

    def untag(self, ref: str) -> None:
        """Remove the tag ``ref``; the image goes too when nothing else names it.

        Forced: a container still using the image (a smoke test interrupted while the engine was
        creating it) must not keep the tag alive; the engine then keeps the image for the container.
        """
        from docker.errors import ImageNotFound

        with _converted("remove a tag"):
            try:
                self.api.remove_image(ref, force=True, noprune=False)
            except ImageNotFound:
                pass

    def read_file(self, image: str, path: str) -> bytes | None:
        """A file's content from an image (through a created, never started, container), or None."""
        import io
        import tarfile

        from docker.errors import NotFound

        with _converted("read a file from an image"):
            container = self.api.create_container(image, command=["true"])
            try:
                stream, _ = self.api.get_archive(container["Id"], path)
                archive = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
                member = archive.next()
                handle = archive.extractfile(member) if member is not None else None
                return handle.read() if handle is not None else None
            except NotFound:
                return None
            finally:
                self.api.remove_container(container["Id"], force=True)

    def build(
        self,
        context: Path,
        *,
        tag: str,
        buildargs: Mapping[str, str] | None = None,
        network: str | None = None,
        nocache: bool = False,
        labels: Mapping[str, str] | None = None,
        on_step: StepCallback | None = None,
        on_log: LogCallback | None = None,
    ) -> BuiltImage:
        """Build ``context`` and tag the result; the tag is set only when every step succeeded."""
        started = time.monotonic()
        step_text, step_no = "", "0"
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        image_id: str | None = None
        with _converted("build"):
            stream = self.api.build(
                path=str(context),
                tag=tag,
                buildargs=dict(buildargs or {}),
                network_mode=network,
                nocache=nocache,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                labels=dict(labels or {}) or None,
            )
            for chunk in stream:
                if "error" in chunk:
                    message = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                    tail.extend(_lines(message))
                    if step_text.startswith("FROM "):
                        raise EnvironmentFailure(
                            f"the image for '{step_text}' is not on the engine and could not be pulled: "
                            f"{_lines(message)[-1] if _lines(message) else message}",
                            hint="build or load it first; for the Python root image use --python-image "
                            "or RACETRACK_PYTHON_IMAGE",
                        )
                    if _AUTH_FAILURE.search("\n".join(tail)):
                        raise AuthenticationRefused(
                            "a package index refused the build's credentials "
                            f"(step {step_no}: {_short(step_text)})",
                            hint="check the values in secret_build_env_file and how requirements use them",
                        )
                    headline, hint = _explain_failure(step_text, list(tail))
                    raise BuildFailed(
                        f"{headline} (step {step_no}: {_short(step_text) or 'start'})",
                        hint=hint,
                        step=step_text,
                        log_tail=list(tail),
                    )
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = aux["ID"]
                for line in _lines(chunk.get("stream", "")):
                    match = _STEP.match(line)
                    if match:
                        step_text, step_no = match["instruction"], f"{match['n']}/{match['total']}"
                        tail.clear()
                        if on_step:
                            on_step(int(match["n"]), int(match["total"]), step_text)
                        continue
                    tail.append(line)
                    if line.startswith("Successfully built "):
                        image_id = image_id or line.split()[-1]
                    if on_log:
                        on_log(line)
            if image_id is None:
                raise BuildFailed(
                    "the engine ended the build without an image", step=step_text, log_tail=list(tail)
                )
            attrs = self.api.inspect_image(tag)
        return BuiltImage(
            ref=tag, id=attrs["Id"], size=int(attrs.get("Size") or 0), duration=time.monotonic() - started
        )

    def push(self, ref: str, on_log: LogCallback | None = None) -> str | None:
        """Push ``ref`` to its registry; the registry's digest of it (``sha256:...``) when the
        engine reports one. Errors name the registry's answer."""
        repository, tag = _split_ref(ref)
        digest = None
        with _converted("push"):
            for chunk in self.api.push(repository, tag=tag, stream=True, decode=True):
                aux = chunk.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                    digest = aux["Digest"]
                if "error" in chunk:
                    message = chunk["error"]
                    if re.search(r"unauthorized|denied|authentication required", message, re.I):
                        raise AuthenticationRefused(
                            f"the registry refused the push of {ref}: {message}",
                            hint="log in with `docker login REGISTRY`",
                        )
                    raise EnvironmentFailure(
                        f"pushing {ref} failed: {message}",
                        hint="check that the registry is reachable and the name is right",
                    )
                if on_log and chunk.get("status"):
                    status = chunk["status"]
                    progress = chunk.get("progress") or ""
                    on_log(f"{chunk.get('id', '')} {status} {progress}".strip())
        return digest

    # -- containers ----------------------------------------------------------------------------------
    def run_detached(
        self,
        image: str,
        *,
        environment: Mapping[str, str],
        name: str | None = None,
        host_port: int | None = None,
        network: str | None = None,
    ) -> Any:
        """Start a container. Unless ``network`` is ``host``, the wrapper's port is published on
        127.0.0.1 only: ``host_port`` when given, else a free port the engine picks."""
        # Checked first: docker-py answers a missing image by trying to pull it, whose failure
        # would name a registry instead of the fix.
        if self.image_id(image) is None:
            raise UsageError(
                f"no image {image} on the engine", hint="build it first with `racetrack-build MANIFEST`"
            )
        ports = None if network == "host" else {"7000/tcp": ("127.0.0.1", host_port)}
        with _converted("run container"):
            return self.client.containers.run(
                image,
                detach=True,
                environment=dict(environment),
                name=name,
                ports=ports,
                network_mode=network,
                init=True,
            )


def _split_ref(ref: str) -> tuple[str, str]:
    """``host:5000/name:tag`` -> (``host:5000/name``, ``tag``); no tag means ``latest``."""
    repository, _, tag = ref.rpartition(":")
    if "/" in tag or not repository:
        return ref, "latest"
    return repository, tag


def _lines(text: str) -> list[str]:
    return [line for line in (_ANSI.sub("", raw).rstrip() for raw in text.splitlines()) if line]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _converted:
    """Turn docker-py and connection errors raised inside the block into our errors."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, (BuildFailed, EnvironmentFailure, UsageError)):
            return False
        import requests
        import urllib3
        from docker.errors import APIError, DockerException

        # A connection cut while a response streams (a build's log) surfaces from urllib3 itself,
        # unwrapped by requests: it is the engine going away all the same.
        lost = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.ProtocolError, ConnectionError)
        if isinstance(exc, lost):
            raise EngineUnreachable(
                f"the Docker engine stopped answering during {self.action} ({_first_line(exc)})",
                hint="check that the engine is running (`docker info`) and try again",
            ) from exc
        if isinstance(exc, APIError):
            explanation = getattr(exc, "explanation", None) or _first_line(exc)
            if self.action == "build":
                raise BuildFailed(f"the engine refused the build: {explanation}") from exc
            if re.search(r"port is already allocated|address already in use", str(explanation)):
                raise EnvironmentFailure(
                    f"the Docker engine failed to {self.action}: {explanation}",
                    hint="another container or program has that port on 127.0.0.1 (see `docker ps`); "
                    "choose another with --port, or --port 0 for any free one",
                ) from exc
            raise EnvironmentFailure(f"the Docker engine failed to {self.action}: {explanation}") from exc
        if isinstance(exc, DockerException):
            raise EnvironmentFailure(f"Docker failed to {self.action}: {_first_line(exc)}") from exc
        return False
