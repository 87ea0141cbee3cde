"""BuildKit's progress, as the engine streams it: which step runs, is cached or failed, and its output.

A BuildKit build through the engine's ``/build`` API (``version=2``) streams ``{"id":
"moby.buildkit.trace", "aux": "<base64>"}`` chunks, each a protobuf ``moby.buildkit.v1.StatusResponse``
(buildkit's ``api/services/control/control.proto``). Only a few of its fields matter here:

    StatusResponse: 1 vertexes (Vertex), 3 logs (VertexLog)
    Vertex:         1 digest, 3 name ("[2/5] COPY ..."), 4 cached, 5 started, 6 completed, 7 error
    VertexLog:      1 vertex (a Vertex's digest), 3 stream (1 stdout, 2 stderr), 4 msg (bytes)

They are read with the protobuf wire format's few rules below rather than the ``protobuf`` package:
that package would need buildkit's generated classes (and their gogoproto imports) for three
messages, and a runtime dependency the CLI otherwise never uses. Unknown fields are skipped, as
protobuf readers do, so newer engines' additions change nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

TRACE_ID = "moby.buildkit.trace"
# "[2/5] RUN ...", "[system 1/3] FROM ...": a Dockerfile step; "[internal] load metadata for IMAGE":
# the engine resolving a FROM image.
_STEP = re.compile(r"^\[(?:(?P<stage>[^\]\s]+) )?(?P<n>\d+)/(?P<total>\d+)\] (?P<instruction>.*)$", re.S)
_METADATA = re.compile(r"^\[internal\] load metadata for (?P<image>\S+)$")

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class Vertex:
    digest: str
    name: str
    cached: bool = False
    started: bool = False
    completed: bool = False
    error: str = ""

    @property
    def step(self) -> tuple[int, int, str] | None:
        """(number, total, instruction) of a Dockerfile step; a FROM for the resolution of its image;
        None for the engine's own vertices (loading the context, exporting the image)."""
        match = _STEP.match(self.name)
        if match:
            return int(match["n"]), int(match["total"]), match["instruction"]
        metadata = _METADATA.match(self.name)
        if metadata:
            return 0, 0, f"FROM {metadata['image']}"
        return None

    @property
    def stage(self) -> str:
        """The named stage a Dockerfile step is in (BuildKit numbers the steps of each stage on
        their own); "" for an unnamed stage (BuildKit calls it ``stage-N``) and other vertices."""
        match = _STEP.match(self.name)
        stage = (match["stage"] or "") if match else ""
        return "" if re.fullmatch(r"stage-\d+", stage) else stage


@dataclass(frozen=True)
class Log:
    vertex: str  # the digest of the vertex that wrote it
    data: bytes


@dataclass(frozen=True)
class Trace:
    vertexes: list[Vertex] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)


class TraceError(ValueError):
    """A trace chunk that is not a StatusResponse."""


def decode(aux: str) -> Trace:
    """The vertexes and logs of one trace chunk's base64 ``aux``."""
    try:
        raw = base64.b64decode(aux, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TraceError(f"not base64: {exc}") from exc
    trace = Trace()
    for number, value in _fields(raw):
        if number == 1 and isinstance(value, bytes):
            trace.vertexes.append(_vertex(value))
        elif number == 3 and isinstance(value, bytes):
            trace.logs.append(_log(value))
    return trace


def _vertex(raw: bytes) -> Vertex:
    values: dict[int, int | bytes] = {}
    for number, value in _fields(raw):
        values.setdefault(number, value)  # 2 (inputs) repeats; the fields read here do not
    return Vertex(
        digest=_text(values.get(1)),
        name=_text(values.get(3)),
        cached=bool(values.get(4)),
        started=5 in values,
        completed=6 in values,
        error=_text(values.get(7)),
    )


def _log(raw: bytes) -> Log:
    values = dict(_fields(raw))
    data = values.get(4)
    return Log(vertex=_text(values.get(1)), data=data if isinstance(data, bytes) else b"")


def _text(value: int | bytes | None) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _fields(raw: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: an int for varints, bytes for length-delimited
    fields; fixed-width ones are skipped."""
    at = 0
    while at < len(raw):
        key, at = _varint(raw, at)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, at = _varint(raw, at)
            yield number, value
        elif wire == _BYTES:
            size, at = _varint(raw, at)
            if at + size > len(raw):
                raise TraceError("a field runs past the end of its message")
            yield number, raw[at:at + size]
            at += size
        elif wire == _FIXED64:
            at += 8
        elif wire == _FIXED32:
            at += 4
        else:
            raise TraceError(f"unknown wire type {wire}")
    if at != len(raw):
        raise TraceError("the message ends inside a field")


def _varint(raw: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(raw) or shift > 63:
            raise TraceError("a varint runs past the end of its message")
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at
