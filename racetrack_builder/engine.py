"""The Docker engine, through docker-py, behind a small seam.

Only this module and its helpers (engine_connection.py: which engine and how to reach it;
buildkit_build.py: a BuildKit build request) talk to the engine through docker-py.
:class:`Engine` and :class:`Container` are the shapes the rest
of the tool depends on (unit tests fake them); :class:`DockerEngine` is the real one. It speaks to
whatever ``DOCKER_HOST`` (or the default socket) names, so a remote engine works too, and converts
docker-py and connection errors into our own at this boundary: an engine that cannot be reached is
an EnvironmentFailure (exit 3), a failing Dockerfile step a BuildFailed (exit 1) carrying the step
and the tail of its output (explained by ``failures.py``).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import buildkit_build, contract, interrupts, reporting
from .build_stream import BuildStream
from .errors import AuthenticationRefused, BuildFailed, EngineUnreachable, EnvironmentFailure, UsageError
from .failures import explain, unknown_network


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    id: str
    size: int  # bytes
    duration: float  # seconds


@dataclass(frozen=True)
class CommitRun:
    """A container the tool runs to make an image layer (the install step, see install.py)."""

    image: str
    command: list[str]
    ref: str  # the tag the committed image gets
    files: bytes  # a tar archive unpacked at / before the start
    user: str = "root"
    network: str | None = None
    volumes: Mapping[str, str] = field(default_factory=dict)  # volume name -> read-only mount point
    changes: tuple[str, ...] = ()  # Dockerfile instructions applied by the commit (USER, CMD)
    on_line: Callable[[str], None] | None = None


_NO_BUILDKIT = ("the engine's BuildKit cannot take this build (an engine before API 1.39 or not on "
                "Linux, DOCKER_BUILDKIT=0, or a user-defined network)")


class BuildKitUnavailable(EnvironmentFailure):
    """A build that needs the engine's BuildKit (``require_buildkit``) cannot have it here: the
    message says why, and the caller builds another way."""


class PullFailed(EnvironmentFailure):
    """A registry did not give an image: ``kind`` says how (``missing``: no such tag; ``unreachable``:
    no answer; ``refused``: credentials; ``other``). Callers that can do without the image (a cache)
    turn it into a warning."""

    def __init__(self, ref: str, kind: str, said: str) -> None:
        hints = {
            "missing": "push it first, or check the name",
            "unreachable": "check that the registry is up and its address is right",
            "refused": "log in with `docker login REGISTRY` on the machine of the engine",
        }
        super().__init__(f"{ref} could not be pulled: {said}", hint=hints.get(kind))
        self.ref = ref
        self.kind = kind
        self.said = said


def pull_failure_kind(said: str, status: int | None = None) -> str:
    """How a registry failed, from the engine's words (and the HTTP status it answered with)."""
    if re.search(r"unauthorized|denied|authentication required|no basic auth|credentials", said, re.I):
        return "refused"
    if status == 404 or re.search(r"manifest unknown|not found|does not exist", said, re.I):
        return "missing"
    if re.search(r"connection refused|no such host|timeout|i/o timeout|network is unreachable|"
                 r"server gave HTTP response to HTTPS|connection reset|EOF", said, re.I):
        return "unreachable"
    return "other"


@dataclass(frozen=True)
class CommitResult:
    exit_code: int
    lines: list[str]
    image_id: str | None  # set when the command succeeded and the container was committed
    run_seconds: float = 0.0  # from the create to the command's exit
    commit_seconds: float = 0.0


class Container(Protocol):
    """A started container: what the smoke test and ``run`` need of it."""

    name: str

    def status(self) -> str:
        """The engine's state of it now: ``running``, ``exited``, ``dead``..."""

    def exit_code(self) -> int | None:
        """Its exit code once stopped, else None."""

    def port(self) -> int | None:
        """The host port published for the wrapper's port, None when there is none (it stopped)."""

    def logs(self, tail: int = 30) -> list[str]:
        """Its last ``tail`` log lines; empty when they cannot be read."""

    def follow_logs(self) -> Iterator[str]:
        """Its log lines as they come, until it stops."""

    def remove(self) -> None:
        """Stop and remove it; nothing when it is already gone."""


class Engine(Protocol):
    """What the tool does with a Docker engine."""

    def image_labels(self, ref: str) -> dict[str, str] | None:
        """The labels of a local image, or None when the engine has no such image."""

    def image_id(self, ref: str) -> str | None:
        """The id of a local image, or None when the engine has no such image."""

    def tag(self, image_id: str, ref: str) -> None:
        """Point ``ref`` at ``image_id``."""

    def untag(self, ref: str) -> None:
        """Remove the tag ``ref``; the image goes too when nothing else names it."""

    def read_file(self, image: str, path: str) -> bytes | None:
        """A file's content from an image, or None when it has no such file."""

    def pull_if_missing(self, ref: str) -> None:
        """Make sure the engine has ``ref``, pulling it from its registry when it has not."""

    def pull(self, ref: str) -> str:
        """Pull ``ref`` from its registry (even when the engine has it: the registry's may be newer);
        its image id. PullFailed says how the registry failed."""

    def image_layers(self, ref: str) -> list[str] | None:
        """The diff ids of a local image's layers, bottom first; None when there is no such image."""

    def output_of(self, image: str, command: list[str]) -> str:
        """What ``command`` prints in a new, networkless container of ``image`` (removed after);
        EnvironmentFailure when it cannot run or exits non-zero."""

    def build(
        self,
        context: Path,
        *,
        tag: str,
        buildargs: Mapping[str, str] | None = None,
        network: str | None = None,
        nocache: bool = False,
        labels: Mapping[str, str] | None = None,
        dockerfile: str | None = None,
        cache_from: Sequence[str] = (),
        buildkit: bool = False,
        require_buildkit: bool = False,
    ) -> BuiltImage:
        """Build ``context`` (its ``dockerfile``, default ``Dockerfile``) and tag the result; steps
        and output go to the reporter. ``cache_from``: local images whose layers the steps may
        reuse besides the engine's own cache (pulled ones from a registry cache). ``buildkit``:
        by the engine's BuildKit where it can (the Dockerfile must need no BuildKit session).
        ``require_buildkit``: by BuildKit only (``RUN --mount``), else BuildKitUnavailable."""

    def buildkit_usable(self, network: str | None) -> bool:
        """Whether a build on ``network`` can go to the engine's BuildKit, as far as is known
        before trying (the engine may still refuse it)."""

    def architecture(self) -> str:
        """The engine's machine architecture, as ``uname -m`` names it (``x86_64``, ``aarch64``)."""

    def tags_of(self, repository: str) -> list[tuple[str, int]]:
        """``(ref, created)`` of each tag of ``repository`` on the engine (created: Unix time)."""

    def fill_volume(self, volume: str, image: str, path: str) -> None:
        """Make the named volume ``volume`` hold what ``image`` has at ``path``, unless it exists."""

    def run_and_commit(self, request: CommitRun) -> CommitResult:
        """Run ``request.command`` in a new container of ``request.image`` with ``request.files``
        (a tar) unpacked at /; on exit 0, commit the container as ``request.ref``. The container is
        removed on every path; its output goes to ``request.on_line`` as it comes."""

    def push(self, ref: str) -> str | None:
        """Push ``ref``; the registry's digest of it when the engine reports one."""

    def run(
        self,
        image: str,
        *,
        environment: Mapping[str, str],
        name: str,
        host_port: int | None = None,
        network: str | None = None,
    ) -> Container:
        """Start ``image`` detached; its wrapper port published on 127.0.0.1 unless on the host network."""

    def remove_container(self, name: str) -> None:
        """Remove the container ``name`` if it exists (one whose start was interrupted, say)."""


class DockerEngine:
    """A connection to one Docker engine through docker-py, opened on first use."""

    def __init__(self, client: Any = None) -> None:
        self._docker: Any = client
        self._buildkit: bool | None = None  # whether the engine builds with BuildKit, once asked

    @property
    def _client(self) -> Any:
        if self._docker is None:
            # Lazy: importing docker-py costs time `validate` does not have. The engine is found as
            # the Docker CLI finds it (DOCKER_HOST, TLS, ssh://, contexts); see engine_connection.
            from .engine_connection import open_client

            self._docker = open_client()
        return self._docker

    @property
    def _api(self) -> Any:
        return self._client.api

    def connect(self) -> None:
        """Open the connection now: EngineUnreachable when no engine answers, another
        EnvironmentFailure (exit 3) naming the fix when TLS, ssh or a context is wrong."""
        _ = self._client

    # -- images --------------------------------------------------------------------------------------
    def _inspect(self, ref: str) -> dict[str, Any] | None:
        from docker.errors import ImageNotFound

        with _converted("inspect image"):
            try:
                return dict(self._api.inspect_image(ref))
            except ImageNotFound:
                return None

    def image_labels(self, ref: str) -> dict[str, str] | None:
        attrs = self._inspect(ref)
        if attrs is None:
            return None
        return dict((attrs.get("Config") or {}).get("Labels") or {})

    def image_id(self, ref: str) -> str | None:
        attrs = self._inspect(ref)
        return None if attrs is None else str(attrs["Id"])

    def tag(self, image_id: str, ref: str) -> None:
        repository, tag = _split_ref(ref)
        with _converted("tag image"):
            self._api.tag(image_id, repository, tag, force=True)

    def untag(self, ref: str) -> None:
        """Forced: a container still using the image (a smoke test interrupted while the engine was
        creating it) must not keep the tag alive; the engine then keeps the image for the container."""
        from docker.errors import ImageNotFound

        with _converted("remove a tag"):
            try:
                self._api.remove_image(ref, force=True, noprune=False)
            except ImageNotFound:
                pass

    def read_file(self, image: str, path: str) -> bytes | None:
        """Read through a created, never started, container."""
        import io
        import tarfile

        from docker.errors import NotFound

        with _converted("read a file from an image"):
            container = self._api.create_container(image, command=["true"])
            try:
                stream, _ = self._api.get_archive(container["Id"], path)
                archive = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
                member = archive.next()
                handle = archive.extractfile(member) if member is not None else None
                return handle.read() if handle is not None else None
            except NotFound:
                return None
            finally:
                self._api.remove_container(container["Id"], force=True)

    def pull_if_missing(self, ref: str) -> None:
        if self.image_id(ref) is not None:
            return
        repository, tag = _split_ref(ref)
        reporting.progress(f"pulling {ref}")
        with _converted(f"pull {ref}"):
            for chunk in self._api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    raise EnvironmentFailure(
                        f"{ref} is not on the engine and could not be pulled: {chunk['error']}",
                        hint="pull or load it first (docker pull / docker load), log in to its registry, "
                        "or choose another with --python-image or RACETRACK_PYTHON_IMAGE",
                    )
                if chunk.get("status"):
                    reporting.log(f"{chunk.get('id', '')} {chunk['status']}".strip())
        if self.image_id(ref) is None:
            raise EnvironmentFailure(f"pulling {ref} gave no image", hint="check the name and its registry")

    def pull(self, ref: str) -> str:
        from docker.errors import APIError

        repository, tag = _split_ref(ref)
        reporting.log(f"pulling {ref}")
        # PullFailed is an EnvironmentFailure: _converted lets it through as it is.
        with _converted(f"pull {ref}"):
            try:
                for chunk in self._api.pull(repository, tag=tag, stream=True, decode=True):
                    if "error" in chunk:
                        said = str(chunk["error"])
                        raise PullFailed(ref, pull_failure_kind(said), said)
                    if chunk.get("status"):
                        reporting.log(f"{chunk.get('id', '')} {chunk['status']}".strip())
            except APIError as exc:
                said = str(getattr(exc, "explanation", None) or _first_line(exc))
                status = getattr(getattr(exc, "response", None), "status_code", None)
                raise PullFailed(ref, pull_failure_kind(said, status), said) from exc
        image_id = self.image_id(ref)
        if image_id is None:
            raise PullFailed(ref, "other", "the engine reported no image after the pull")
        return image_id

    def image_layers(self, ref: str) -> list[str] | None:
        attrs = self._inspect(ref)
        if attrs is None:
            return None
        return [str(layer) for layer in (attrs.get("RootFS") or {}).get("Layers") or []]

    def output_of(self, image: str, command: list[str]) -> str:
        with _converted(f"run {command[0]} in {image}"):
            container = self._api.create_container(image, command=command, network_disabled=True)
            try:
                self._api.start(container["Id"])
                status = self._api.wait(container["Id"], timeout=120)
                output = bytes(self._api.logs(container["Id"], stdout=True, stderr=True)).decode(
                    "utf-8", "replace"
                )
            finally:
                self._api.remove_container(container["Id"], force=True)
        code = status.get("StatusCode") if isinstance(status, dict) else status
        if code != 0:
            raise EnvironmentFailure(
                f"`{' '.join(command)}` in {image} exited {code}: {' '.join(output.split())[:300]}"
            )
        return output

    def build(
        self,
        context: Path,
        *,
        tag: str,
        buildargs: Mapping[str, str] | None = None,
        network: str | None = None,
        nocache: bool = False,
        labels: Mapping[str, str] | None = None,
        dockerfile: str | None = None,
        cache_from: Sequence[str] = (),
        buildkit: bool = False,
        require_buildkit: bool = False,
    ) -> BuiltImage:
        """The tag is set only when every step succeeded.

        With ``buildkit``, the engine's BuildKit builds it where it can (buildkit_build.py), and the
        classic builder where it cannot: an engine without BuildKit, ``DOCKER_BUILDKIT=0``, a
        registry cache (``cache_from``: the classic builder's way of reusing pulled layers), a
        network BuildKit has not, or a BuildKit failure before the Dockerfile's steps.
        """
        started = time.monotonic()
        inputs = _BuildInputs(context, tag, dict(buildargs or {}), network, nocache,
                              dict(labels or {}) or None, dockerfile)
        if require_buildkit:
            why = _NO_BUILDKIT if not self.buildkit_usable(network) else self._buildkit_build(inputs)
            if why is not None:
                raise BuildKitUnavailable(why)
        elif not (buildkit and not cache_from and self.buildkit_usable(network)):
            self._classic_build(inputs, cache_from)
        elif (why := self._buildkit_build(inputs)) is not None:
            reporting.progress(f"{why}; building with the classic builder")
            self._classic_build(inputs, cache_from)
        with _converted("build"):
            attrs = self._api.inspect_image(tag)
        return BuiltImage(
            ref=tag, id=attrs["Id"], size=int(attrs.get("Size") or 0), duration=time.monotonic() - started
        )

    def _classic_build(self, inputs: _BuildInputs, cache_from: Sequence[str]) -> None:
        stream = BuildStream()
        with _converted("build"):
            chunks = self._api.build(
                path=str(inputs.context),
                tag=inputs.tag,
                buildargs=dict(inputs.buildargs),
                network_mode=inputs.network,
                nocache=inputs.nocache,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                labels=inputs.labels,
                dockerfile=inputs.dockerfile,
                cache_from=list(cache_from) or None,
            )
            for chunk in chunks:
                failure = stream.feed(chunk)
                if failure is not None:
                    raise explain(failure)
            _check_built(stream)

    def buildkit_usable(self, network: str | None) -> bool:
        if buildkit_build.disabled_by_user() or (network or "") not in buildkit_build.NETWORKS:
            return False
        if self._buildkit is None:
            with _converted("read the engine's version"):
                self._buildkit = buildkit_build.engine_supports(self._api.version())
        return self._buildkit

    def _buildkit_build(self, inputs: _BuildInputs) -> str | None:
        """None when BuildKit built it, else why it could not (the classic builder may)."""
        params = buildkit_build.build_params(
            tag=inputs.tag, buildargs=inputs.buildargs, network=inputs.network, nocache=inputs.nocache,
            labels=inputs.labels, dockerfile=inputs.dockerfile,
        )
        stream = BuildStream()
        archive = buildkit_build.context_archive(inputs.context, inputs.dockerfile or "Dockerfile")
        with _converted("build"), archive as body:
            response = buildkit_build.request(self._api, body, params)
            try:
                if response.status_code >= 400:
                    # An engine whose BuildKit is off or broken: the classic builder, from now on.
                    self._buildkit = False
                    said = " ".join(response.text.split())[:200]
                    return f"the engine refused a BuildKit build ({response.status_code}: {said})"
                for chunk in buildkit_build.chunks(self._api, response):
                    failure = stream.feed(chunk)
                    if failure is None:
                        continue
                    if stream.failed_before_the_steps:
                        return f"BuildKit could not start the build ({failure.message})"
                    raise explain(failure)
            finally:
                response.close()
            _check_built(stream)
        return None

    def push(self, ref: str) -> str | None:
        """Errors name the registry's answer."""
        repository, tag = _split_ref(ref)
        digest = None
        with _converted("push"):
            for chunk in self._api.push(repository, tag=tag, stream=True, decode=True):
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
                if chunk.get("status"):
                    progress = chunk.get("progress") or ""
                    reporting.log(f"{chunk.get('id', '')} {chunk['status']} {progress}".strip())
        return digest

    # -- containers ----------------------------------------------------------------------------------
    def run(
        self,
        image: str,
        *,
        environment: Mapping[str, str],
        name: str,
        host_port: int | None = None,
        network: str | None = None,
    ) -> Container:
        """Unless ``network`` is ``host``, the wrapper's port is published on 127.0.0.1 only:
        ``host_port`` when given, else a free port the engine picks."""
        # Checked first: docker-py answers a missing image by trying to pull it, whose failure
        # would name a registry instead of the fix.
        if self.image_id(image) is None:
            raise UsageError(
                f"no image {image} on the engine", hint="build it first with `racetrack-build MANIFEST`"
            )
        ports = None if network == "host" else {f"{contract.PORT}/tcp": ("127.0.0.1", host_port)}
        # Not cut halfway: an interrupted create leaves a container the caller cannot find to remove.
        with interrupts.deferred(), _converted("run container"):
            started = self._client.containers.run(
                image,
                detach=True,
                environment=dict(environment),
                name=name,
                ports=ports,
                network_mode=network,
                init=True,
            )
        return _DockerContainer(started)

    def architecture(self) -> str:
        with _converted("ask the engine for its architecture"):
            return str(self._api.info().get("Architecture") or "")

    def tags_of(self, repository: str) -> list[tuple[str, int]]:
        with _converted(f"list the images of {repository}"):
            images = self._api.images(name=repository)
        return [
            (ref, int(image.get("Created") or 0))
            for image in images
            for ref in image.get("RepoTags") or []
            if ref.rpartition(":")[0] == repository
        ]

    def fill_volume(self, volume: str, image: str, path: str) -> None:
        from docker.errors import NotFound

        with _converted(f"fill the volume {volume}"):
            try:
                self._api.inspect_volume(volume)
                return
            except NotFound:
                pass
            # The engine copies what the image has at the mount point into a new, empty named
            # volume when a container first mounts it; the container itself does nothing.
            with interrupts.deferred():
                container = self._api.create_container(
                    image, command=["true"], network_disabled=True,
                    host_config=self._api.create_host_config(binds={volume: {"bind": path, "mode": "rw"}}),
                )
            try:
                self._api.start(container["Id"])
                self._api.wait(container["Id"], timeout=120)
            finally:
                self._api.remove_container(container["Id"], force=True)

    def run_and_commit(self, request: CommitRun) -> CommitResult:
        lines: list[str] = []
        started = time.monotonic()
        commit_seconds = 0.0
        with _converted("run the install step"):
            host_config = self._api.create_host_config(
                binds={name: {"bind": where, "mode": "ro"} for name, where in request.volumes.items()},
                network_mode=request.network,
            )
            with interrupts.deferred():
                container = self._api.create_container(
                    request.image, command=request.command, user=request.user, host_config=host_config
                )
            image_id = None
            try:
                self._api.put_archive(container["Id"], "/", request.files)
                self._api.start(container["Id"])
                pending = b""
                for chunk in self._api.logs(container["Id"], stream=True, follow=True):
                    pending += bytes(chunk)
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        line = raw.decode("utf-8", "replace").rstrip("\r")
                        lines.append(line)
                        if request.on_line:
                            request.on_line(line)
                if pending:
                    lines.append(pending.decode("utf-8", "replace"))
                status = self._api.wait(container["Id"])
                code = int(status.get("StatusCode", 1) if isinstance(status, dict) else status)
                image_id = None
                ran = time.monotonic() - started
                if code == 0:
                    repository, tag = _split_ref(request.ref)
                    committed = self._api.commit(
                        container["Id"], repository=repository, tag=tag, changes=list(request.changes)
                    )
                    image_id = committed["Id"]
                    commit_seconds = time.monotonic() - started - ran
            finally:
                if image_id is not None:
                    self._remove_in_background(container["Id"])
                else:
                    with contextlib.suppress(Exception):
                        self._api.remove_container(container["Id"], force=True)
        return CommitResult(exit_code=code, lines=lines, image_id=image_id, run_seconds=ran,
                            commit_seconds=commit_seconds)

    def _remove_in_background(self, container_id: str) -> None:
        """Remove a committed container while the build goes on: removing the install's container
        deletes its copy of every package (about 1 s for a numpy + pandas + scikit-learn job).
        Not a daemon thread, so the interpreter waits for it at exit on every path, a failed or
        interrupted build's included, and no container is left behind."""

        def remove() -> None:
            with contextlib.suppress(Exception):
                self._api.remove_container(container_id, force=True)

        threading.Thread(target=remove, name="racetrack-remove-container", daemon=False).start()

    def remove_container(self, name: str) -> None:
        from docker.errors import NotFound

        with _converted("remove a container"):
            try:
                self._client.containers.get(name).remove(force=True)
            except NotFound:
                pass


class _DockerContainer:
    """docker-py's container behind the :class:`Container` shape."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self.name: str = container.name

    def _attrs(self) -> dict[str, Any]:
        with _converted("inspect a container"):
            self._container.reload()
        return dict(self._container.attrs)

    def status(self) -> str:
        return str((self._attrs().get("State") or {}).get("Status") or self._container.status)

    def exit_code(self) -> int | None:
        state = self._attrs().get("State") or {}
        return None if state.get("Running") else state.get("ExitCode")

    def port(self) -> int | None:
        bindings = (self._attrs().get("NetworkSettings") or {}).get("Ports") or {}
        published = bindings.get(f"{contract.PORT}/tcp") or []
        if published and published[0].get("HostPort"):
            return int(published[0]["HostPort"])
        return None

    def logs(self, tail: int = 30) -> list[str]:
        try:
            with _converted("read a container's log"):
                raw = self._container.logs(tail=tail)
        except EnvironmentFailure:
            return []
        return bytes(raw).decode("utf-8", "replace").splitlines()

    def follow_logs(self) -> Iterator[str]:
        with _converted("follow a container's log"):
            for line in self._container.logs(stream=True, follow=True):
                yield bytes(line).decode("utf-8", "replace").rstrip()

    def remove(self) -> None:
        from docker.errors import NotFound

        with _converted("remove a container"):
            try:
                self._container.remove(force=True)
            except NotFound:
                pass


def _split_ref(ref: str) -> tuple[str, str]:
    """``host:5000/name:tag`` -> (``host:5000/name``, ``tag``); no tag means ``latest``."""
    repository, _, tag = ref.rpartition(":")
    if "/" in tag or not repository:
        return ref, "latest"
    return repository, tag


@dataclass(frozen=True)
class _BuildInputs:
    """What a build is asked for, whichever builder runs it."""

    context: Path
    tag: str
    buildargs: Mapping[str, str]
    network: str | None
    nocache: bool
    labels: Mapping[str, str] | None  # None: none
    dockerfile: str | None


def _check_built(stream: BuildStream) -> None:
    if stream.image_id is None:
        raise BuildFailed("the engine ended the build without an image", step=stream.instruction,
                          log_tail=stream.tail)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _converted:
    """Turn docker-py and connection errors raised inside the block into our errors."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        # Never swallows: anything not converted propagates as it is.
        if exc is None or isinstance(exc, (BuildFailed, EnvironmentFailure, UsageError)):
            return
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
            mistyped = unknown_network(str(explanation))
            if mistyped is not None:
                raise mistyped from exc
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
