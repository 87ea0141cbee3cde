"""BuildKit builds through the engine's /build API: the trace decoder, the stream's steps and
failures, and when the engine falls back to the classic builder. The engine is faked here; the
integration suite builds every job on a real one."""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from racetrack_builder import buildkit_build, buildkit_trace
from racetrack_builder.build_stream import BuildStream, shown_instruction
from racetrack_builder.contract import DIAGNOSIS_MARKER
from racetrack_builder.engine import BuildKitUnavailable, DockerEngine
from racetrack_builder.errors import BuildFailed
from tests.reporter import Recorded


# -- a protobuf writer for the messages the engine sends ------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


TIMESTAMP = _field(1, 1_700_000_000) + _field(2, 5)


def vertex(digest: str, name: str, *, started: bool = True, completed: bool = False, cached: bool = False,
           error: str = "", inputs: tuple[str, ...] = ()) -> bytes:
    body = _field(1, digest) + b"".join(_field(2, i) for i in inputs) + _field(3, name)
    body += _field(4, 1) if cached else b""
    body += _field(5, TIMESTAMP) if started else b""
    body += _field(6, TIMESTAMP) if completed else b""
    body += _field(7, error) if error else b""
    body += _field(8, _field(1, "group"))  # a field this reader does not know
    return _field(1, body)


def log(digest: str, text: str, stream: int = 1) -> bytes:
    return _field(3, _field(1, digest) + _field(2, TIMESTAMP) + _field(3, stream) + _field(4, text.encode()))


def trace(*parts: bytes) -> dict[str, Any]:
    return {"id": buildkit_trace.TRACE_ID, "aux": base64.b64encode(b"".join(parts)).decode()}


CHECK = 'RUN ["/opt/fatman/venv/bin/fatman-wrapper", "check", "adder.py", "--no-server"]'
IMAGE_ID = {"id": "moby.image.id", "aux": {"ID": "sha256:" + "cd" * 32}}


# -- the decoder ------------------------------------------------------------------------------------
def test_vertexes_and_logs_are_read_and_unknown_fields_skipped() -> None:
    raw = base64.b64encode(
        vertex("sha256:a", "[1/3] FROM docker.io/library/base:1", cached=True, completed=True)
        + vertex("sha256:b", "[2/3] COPY job/ /src/fatman/", inputs=("sha256:a", "sha256:ctx"))
        + _field(2, _field(1, "a status")) + log("sha256:b", "copied\n") + _field(4, b"a warning")
        + _varint(6 << 3 | 5) + b"\0\0\0\0" + _varint(7 << 3 | 1) + b"\0" * 8  # fixed-width fields
    ).decode()
    found = buildkit_trace.decode(raw)
    first, second = found.vertexes
    assert (first.name, first.cached, first.started, first.completed) == (
        "[1/3] FROM docker.io/library/base:1", True, True, True)
    assert (second.digest, second.step, second.cached) == (
        "sha256:b", (2, 3, "COPY job/ /src/fatman/"), False)
    assert [(entry.vertex, entry.data) for entry in found.logs] == [("sha256:b", b"copied\n")]


@pytest.mark.parametrize("name, step", [
    ("[system 2/4] RUN set -eu; apt-get update", (2, 4, "RUN set -eu; apt-get update")),
    ("[internal] load metadata for docker.io/library/nosuch:1", (0, 0, "FROM docker.io/library/nosuch:1")),
    ("[internal] load remote build context", None),
    ("exporting to image", None),
])
def test_step_names(name: str, step: tuple[int, int, str] | None) -> None:
    assert buildkit_trace.Vertex("d", name).step == step


@pytest.mark.parametrize("name, stage", [
    ("[system 2/4] RUN apt-get update", "system"),
    ("[stage-1 1/3] RUN install", ""),  # BuildKit's name for an unnamed stage
    ("[2/3] COPY job/ /src/fatman/", ""),
    ("exporting to image", ""),
])
def test_stage_names(name: str, stage: str) -> None:
    assert buildkit_trace.Vertex("d", name).stage == stage


@pytest.mark.parametrize("raw", [b"\x0a\x05abc", b"\x0a", b"\x0b", b"\xff" * 12])
def test_a_broken_message_is_an_error_of_its_own(raw: bytes) -> None:
    with pytest.raises(buildkit_trace.TraceError):
        buildkit_trace.decode(base64.b64encode(raw).decode())
    with pytest.raises(buildkit_trace.TraceError):
        buildkit_trace.decode("not base64!")


# -- the stream -------------------------------------------------------------------------------------
def test_steps_cached_steps_and_output_reach_the_reporter(reported: Recorded) -> None:
    stream = BuildStream()
    chunks = [
        trace(vertex("sha256:ctx", "[internal] load remote build context")),
        trace(vertex("sha256:a", "[1/3] FROM docker.io/library/base:1", cached=True)),
        trace(vertex("sha256:a", "[1/3] FROM docker.io/library/base:1", cached=True, completed=True)),
        trace(vertex("sha256:b", "[2/3] COPY job/ /src/fatman/")),
        trace(vertex("sha256:c", f"[3/3] {CHECK}"), log("sha256:c", "\x1b[1mimported\x1b[0m\n")),
        trace(vertex("sha256:c", f"[3/3] {CHECK}", completed=True)),
        IMAGE_ID,
        {"stream": "Successfully tagged adder:1\n"},
    ]
    assert [stream.feed(chunk) for chunk in chunks] == [None] * len(chunks)
    assert reported.steps == [(1, 3, "FROM docker.io/library/base:1"), (2, 3, "COPY job/ /src/fatman/"),
                              (3, 3, CHECK)]
    assert reported.logs == ["CACHED", "imported", "Successfully tagged adder:1"]
    assert stream.image_id == "sha256:" + "cd" * 32


def test_a_failure_names_the_step_that_failed_with_its_own_output() -> None:
    stream = BuildStream()
    for chunk in [
        trace(vertex("sha256:c", f"[3/4] {CHECK}"), vertex("sha256:d", "[4/4] RUN true")),
        trace(log("sha256:c", "Traceback (most recent call last):\n"
                              "ModuleNotFoundError: No module named 'x'\n", 2),
              log("sha256:d", "other step's line\n")),
        trace(vertex("sha256:c", f"[3/4] {CHECK}", completed=True, error="exit code: 1")),
    ]:
        assert stream.feed(chunk) is None
    failure = stream.feed({"error": "executor failed running [...]: exit code: 1"})
    assert failure is not None
    assert (failure.number, failure.instruction) == ("3/4", CHECK)
    assert failure.tail == ["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'x'",
                            "executor failed running [...]: exit code: 1"]
    assert not stream.failed_before_the_steps


@pytest.mark.parametrize("chunks", [
    [],  # the frontend refused the Dockerfile before any step
    [trace(vertex("sha256:m", "[internal] load metadata for docker.io/library/nosuch:1", error="not found"))],
    [trace(vertex("sha256:a", "[1/2] FROM docker.io/library/base:1", error="no such image"))],
])
def test_failures_before_the_steps_are_the_classic_builders_to_explain(chunks: list[dict[str, Any]]) -> None:
    stream = BuildStream()
    for chunk in chunks:
        stream.feed(chunk)
    assert stream.feed({"error": "failed to solve"}) is not None
    assert stream.failed_before_the_steps


def test_an_unreadable_trace_chunk_is_skipped(reported: Recorded) -> None:
    stream = BuildStream()
    assert stream.feed({"id": buildkit_trace.TRACE_ID, "aux": "%%%"}) is None
    assert reported.steps == [] and reported.logs == []


# -- the request ------------------------------------------------------------------------------------
@pytest.mark.parametrize("version, usable", [
    ({"ApiVersion": "1.41", "Os": "linux"}, True),
    ({"ApiVersion": "1.39", "Os": "linux"}, True),
    ({"ApiVersion": "1.38", "Os": "linux"}, False),
    ({"ApiVersion": "1.44", "Os": "windows"}, False),
    ({"ApiVersion": "garbage"}, False),
])
def test_engines_with_buildkit(version: dict[str, str], usable: bool) -> None:
    assert buildkit_build.engine_supports(version) is usable


def test_the_context_archive_is_a_gnu_tar_with_the_dockerfile_first_and_the_ignore_file_applied(
        tmp_path: Path) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "a.py").write_text("x = 1\n")
    (tmp_path / "job" / "secret.env").write_text("TOKEN=1\n")
    (tmp_path / "a-first.txt").write_text("sorted before the Dockerfile\n")
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / ".dockerignore").write_text("# comment\njob/secret.env\n")
    with buildkit_build.context_archive(tmp_path) as body:
        data = body.read()
    assert b"@PaxHeader" not in data and b"PAXHEADER" not in data.upper()
    assert data[257:265] == b"ustar  \0"  # the first header is a GNU one
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
    assert names[0] == "Dockerfile"
    assert set(names) == {"Dockerfile", ".dockerignore", "a-first.txt", "job", "job/a.py"}


def test_params_keep_the_classic_builds_meaning() -> None:
    params = buildkit_build.build_params(tag="a:1", buildargs={"K": "v"}, network="host", nocache=True,
                                         labels={"l": "1"}, dockerfile="job.Dockerfile")
    assert params == {"version": "2", "t": "a:1", "rm": "1", "forcerm": "1", "buildargs": '{"K": "v"}',
                      "networkmode": "host", "nocache": "1", "labels": '{"l": "1"}',
                      "dockerfile": "job.Dockerfile"}
    assert buildkit_build.build_params(tag="a:1", buildargs={}, network=None, nocache=False, labels=None,
                                       dockerfile=None) == {"version": "2", "t": "a:1", "rm": "1",
                                                            "forcerm": "1"}


class _Response:
    def __init__(self, status: int, chunks: list[dict[str, Any]], text: str = "") -> None:
        self.status_code, self.chunks, self.text, self.closed = status, chunks, text, False

    def close(self) -> None:
        self.closed = True


class FakeAPI:
    """The engine's low-level API as the engine uses it: BuildKit posts, classic builds."""

    def __init__(self, version: dict[str, str], buildkit: list[_Response]) -> None:
        self._version, self.responses = version, buildkit
        self.posted: list[dict[str, str]] = []
        self.classic: list[dict[str, Any]] = []
        self.classic_chunks: list[dict[str, Any]] = [{"stream": "Step 1/1 : FROM x\n"},
                                                     {"aux": {"ID": "sha256:" + "ef" * 32}}]

    def version(self) -> dict[str, str]:
        return self._version

    def _url(self, path: str) -> str:
        return "http+docker://localhost" + path

    def _post(self, url: str, *, params: dict[str, str], data: Any, **_: Any) -> _Response:
        assert url.endswith("/build") and data.read(512)
        self.posted.append(params)
        return self.responses.pop(0)

    def _stream_helper(self, response: _Response, decode: bool) -> Iterator[dict[str, Any]]:
        yield from response.chunks

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.classic.append(kwargs)
        yield from self.classic_chunks

    def inspect_image(self, ref: str) -> dict[str, Any]:
        return {"Id": "sha256:" + "ab" * 32, "Size": 1}


class FakeClient:
    def __init__(self, api: FakeAPI) -> None:
        self.api = api


LINUX = {"ApiVersion": "1.41", "Os": "linux"}
BUILT = [trace(vertex("sha256:b", "[2/2] COPY job/ /src/fatman/")), IMAGE_ID]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    return tmp_path


def test_buildkit_builds_when_asked_and_the_engine_has_it(context: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    response = _Response(200, BUILT)
    api = FakeAPI(LINUX, [response])
    image = DockerEngine(client=FakeClient(api)).build(context, tag="a:1", network="host", buildkit=True)
    assert image.ref == "a:1" and api.classic == [] and response.closed
    assert api.posted[0]["networkmode"] == "host"


@pytest.mark.parametrize("why", ["not asked", "DOCKER_BUILDKIT=0", "old engine", "user network",
                                 "cache_from"])
def test_the_classic_builder_builds_otherwise(context: Path, monkeypatch: pytest.MonkeyPatch,
                                              why: str) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    if why == "DOCKER_BUILDKIT=0":
        monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    api = FakeAPI({"ApiVersion": "1.38", "Os": "linux"} if why == "old engine" else LINUX, [])
    DockerEngine(client=FakeClient(api)).build(
        context, tag="a:1", buildkit=why != "not asked", network="my-net" if why == "user network" else None,
        cache_from=["cache:1"] if why == "cache_from" else ())
    assert api.posted == [] and len(api.classic) == 1


def test_an_engine_refusing_buildkit_is_built_classic_from_then_on(
        context: Path, monkeypatch: pytest.MonkeyPatch, reported: Recorded) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    api = FakeAPI(LINUX, [_Response(400, [], text="buildkit not supported")])
    engine = DockerEngine(client=FakeClient(api))
    engine.build(context, tag="a:1", buildkit=True)
    engine.build(context, tag="a:2", buildkit=True)
    assert len(api.posted) == 1 and len(api.classic) == 2
    assert any("buildkit not supported" in message for message in reported.messages)


def test_a_failure_before_the_steps_goes_to_the_classic_builder(
        context: Path, monkeypatch: pytest.MonkeyPatch, reported: Recorded) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    metadata = trace(vertex("sha256:m", "[internal] load metadata for docker.io/library/x:1", error="denied"))
    api = FakeAPI(LINUX, [_Response(200, [metadata, {"error": "failed to solve: denied"}])])
    DockerEngine(client=FakeClient(api)).build(context, tag="a:1", buildkit=True)
    assert len(api.classic) == 1
    assert any("classic builder" in message for message in reported.messages)


def test_a_failing_step_is_explained_without_a_second_build(context: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    failing = [
        trace(vertex("sha256:c", f"[2/2] {CHECK}")),
        trace(log("sha256:c", "ModuleNotFoundError: No module named 'numpy'\n", 2)),
        trace(vertex("sha256:c", f"[2/2] {CHECK}", completed=True, error="exit code: 1")),
        {"error": "executor failed running: exit code: 1"},
    ]
    api = FakeAPI(LINUX, [_Response(200, failing)])
    with pytest.raises(BuildFailed) as exc:
        DockerEngine(client=FakeClient(api)).build(context, tag="a:1", buildkit=True)
    assert "cannot be imported inside the image" in exc.value.message
    assert "ModuleNotFoundError: No module named 'numpy'" in exc.value.log_tail
    assert api.classic == []


def test_a_build_that_ends_without_an_image_fails(context: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    api = FakeAPI(LINUX, [_Response(200, [trace(vertex("sha256:b", "[2/2] COPY a b"))])])
    with pytest.raises(BuildFailed, match="without an image"):
        DockerEngine(client=FakeClient(api)).build(context, tag="a:1", buildkit=True)


# -- a build that must be BuildKit's (the install as a RUN step) -----------------------------------
INSTALL = ("RUN --mount=type=bind,source=racetrack-install,target=/tmp/racetrack-install-src "
           "/opt/fatman/venv/bin/python -I /mnt/racetrack_install.py --from /tmp/racetrack-install-src")


@pytest.mark.parametrize("why", ["DOCKER_BUILDKIT=0", "old engine", "user network", "refused",
                                 "before the steps"])
def test_a_build_that_needs_buildkit_never_goes_to_the_classic_builder(
        context: Path, monkeypatch: pytest.MonkeyPatch, why: str) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    if why == "DOCKER_BUILDKIT=0":
        monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    metadata = trace(vertex("sha256:m", "[internal] load metadata for docker.io/racetrack/build-tools:1",
                            error="not found"))
    responses = {
        "refused": [_Response(400, [], text="buildkit not supported")],
        "before the steps": [_Response(200, [metadata, {"error": "failed to solve: not found"}])],
    }.get(why, [])
    api = FakeAPI({"ApiVersion": "1.38", "Os": "linux"} if why == "old engine" else LINUX, responses)
    with pytest.raises(BuildKitUnavailable) as caught:
        DockerEngine(client=FakeClient(api)).build(
            context, tag="a:1", require_buildkit=True, network="my-net" if why == "user network" else None)
    assert api.classic == [] and caught.value.message
    if why == "refused":
        assert "buildkit not supported" in caught.value.message


def test_an_install_step_that_fails_is_explained_by_its_diagnosis(context: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   reported: Recorded) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    diagnosis = DIAGNOSIS_MARKER + json.dumps({
        "requirement": "numpyy==1.0", "where": "requirements.txt:2", "kind": "no-package",
        "cause": "no package numpyy on the index", "fix": "did you mean numpy?"})
    half = len(diagnosis) // 2
    failing = [
        trace(vertex("sha256:i", f"[stage-1 1/3] {INSTALL}")),
        trace(log("sha256:i", "  File \"x.py\", line 1\nerror: numpyy not found\n" + diagnosis[:half], 1)),
        trace(log("sha256:i", diagnosis[half:] + "\n", 1)),  # the line goes on in the next message
        trace(vertex("sha256:i", f"[stage-1 1/3] {INSTALL}", completed=True, error="exit code: 1")),
        {"error": "executor failed running [/bin/sh -c /opt/fatman/venv/bin/python -I ...]: exit code: 1"},
    ]
    api = FakeAPI(LINUX, [_Response(200, failing)])
    with pytest.raises(BuildFailed) as caught:
        DockerEngine(client=FakeClient(api)).build(context, tag="a:1", require_buildkit=True)
    err = caught.value
    assert err.message == ("the job's requirements could not be installed: numpyy==1.0 (requirements.txt:2): "
                           "no package numpyy on the index")
    assert err.hint == "did you mean numpy?" and err.details["kind"] == "no-package"
    assert err.log_tail == ["error: numpyy not found"]  # no traceback, no line of the engine's
    assert not any(DIAGNOSIS_MARKER in line for line in reported.logs)
    shown = "RUN install the job's requirements (racetrack_install.py, the build tools mounted)"
    assert reported.steps == [(1, 3, shown)] and reported.stages == [""]  # BuildKit's "stage-1": unnamed


def test_the_system_packages_step_is_shown_by_the_packages_it_installs() -> None:
    """The rendered step (the golden file render's tests keep), as the classic builder and
    BuildKit (continuations joined) name it."""
    dockerfile = (Path(__file__).parent / "golden" / "system_dependencies_ca.Dockerfile").read_text()
    step = dockerfile[dockerfile.index("RUN set -eu;"):].split("\nUSER ", 1)[0]
    shown = "RUN apt-get install libgomp1 curl=7.88.1-10+deb12u5 (system_dependencies)"
    assert shown_instruction(step) == shown
    assert shown_instruction(step.replace("\\\n", "")) == shown
    assert shown_instruction("RUN apt-get install -y curl") == "RUN apt-get install -y curl"  # the job's own


def test_the_build_tools_steps_are_shown_as_written() -> None:
    """The tools image's Dockerfile installs git with apt and copies the install script: neither
    is the job's system packages or install step."""
    tools = (Path(__file__).parents[2] / "base-images" / "build-tools" / "Dockerfile").read_text()
    steps = [s for s in re.split(r"\n(?=[A-Z]+ )", tools) if s.startswith(("RUN", "COPY"))]
    assert len(steps) >= 2
    for step in steps:
        assert shown_instruction(step) == step


def test_a_line_split_between_messages_is_one_line(reported: Recorded) -> None:
    stream = BuildStream()
    stream.feed(trace(vertex("sha256:c", f"[1/1] {CHECK}")))
    stream.feed(trace(log("sha256:c", "first li")))
    stream.feed(trace(log("sha256:c", "ne\nsecond")))
    assert reported.logs == ["first line"]
    stream.feed(trace(vertex("sha256:c", f"[1/1] {CHECK}", completed=True)))
    assert reported.logs == ["first line", "second"]
