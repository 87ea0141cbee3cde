"""Reading the engine's build output: which step runs, its last lines, the image it made.

The classic builder streams JSON chunks: ``{"stream": "Step 3/9 : RUN ..."}`` lines, ``{"aux":
{"ID": ...}}`` with the image id, and ``{"error": ..., "errorDetail": ...}`` when a step failed.
BuildKit streams the same image id and error chunks, and its steps and their output as trace
chunks (buildkit_trace.py). :class:`BuildStream` turns either into reported steps and log lines
and, on an error, a :class:`StepFailure` that ``failures.py`` explains. It knows nothing of
docker-py.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import buildkit_trace, reporting
from .contract import DIAGNOSIS_MARKER, INSTALL_SCRIPT_NAME

# Lines of a failing step's output kept for the error message.
LOG_TAIL_LINES = 30
_STEP = re.compile(r"^Step (?P<n>\d+)/(?P<total>\d+) : (?P<instruction>.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def output_lines(text: str) -> list[str]:
    """The non-empty lines of engine output, terminal escapes removed."""
    return [line for line in (_ANSI.sub("", raw).rstrip() for raw in text.splitlines()) if line]


@dataclass(frozen=True)
class StepFailure:
    """A build step that failed, as the engine told it."""

    number: str  # "3/9"; "0" when the build failed before its first step (or resolving a FROM image)
    instruction: str  # the Dockerfile instruction, "" before the first step
    message: str  # the engine's own error
    tail: list[str]  # the step's last output lines, the engine's error last

    @property
    def where(self) -> str:
        """``step 3/9: RUN ...`` on one short line, for messages."""
        return f"step {self.number}: {short_instruction(self.instruction) or 'start'}"


# The system_dependencies step of templates/job.Dockerfile.j2 (its packages, then `apt-get clean`),
# and the install step's RUN --mount: never another image's steps (the build tools' own apt and
# COPY of the script).
_APT_STEP = re.compile(
    r"^RUN set -eu;.*apt-get \$apt_opts install -y --no-install-recommends(?P<packages>[^;]*);"
    r"[\s\\]*apt-get clean;", re.S)
_INSTALL_STEP = re.compile(rf"^RUN --mount=.*{re.escape(INSTALL_SCRIPT_NAME)}", re.S)


def shown_instruction(instruction: str) -> str:
    """A step as the progress shows it: the install step and the system packages' step by what
    they do (their ``RUN --mount`` options or their shell would fill the line), any other as it
    is written."""
    if _INSTALL_STEP.search(instruction):
        return f"RUN install the job's requirements ({INSTALL_SCRIPT_NAME}, the build tools mounted)"
    apt = _APT_STEP.search(instruction)
    if apt:
        packages = " ".join(word for word in apt["packages"].split() if word != "\\")
        return f"RUN apt-get install {packages} (system_dependencies)"
    return instruction


def short_instruction(instruction: str, limit: int = 90) -> str:
    """A Dockerfile instruction on one short line, for messages."""
    text = " ".join(instruction.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BuildStream:
    """One build's output: steps and lines go to the reporter as they come."""

    def __init__(self) -> None:
        self.instruction = ""
        self.number = "0"
        self.image_id: str | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        # BuildKit: steps by vertex digest, their output, the steps reported, the one that failed.
        self._steps: dict[str, tuple[str, str]] = {}
        self._tails: dict[str, collections.deque[str]] = {}
        self._reported: set[str] = set()
        self._failed: str | None = None
        self._partial: dict[str, str] = {}  # a step's output after its last newline, so far

    @property
    def tail(self) -> list[str]:
        """The last output lines of the step in progress."""
        return list(self._tail)

    def feed(self, chunk: Mapping[str, Any]) -> StepFailure | None:
        """Take one chunk of the stream; the failure when the chunk says the build failed."""
        if "error" in chunk:
            message = str((chunk.get("errorDetail") or {}).get("message") or chunk["error"])
            if self._failed is not None:  # BuildKit named the step that failed, which may not be the last one
                self._emit(self._failed, self._partial.pop(self._failed, ""))
                self.instruction, self.number = self._steps[self._failed]
                self._tail = self._tails.setdefault(self._failed, self._new_tail())
            self._tail.extend(output_lines(message))
            lines = output_lines(message)
            return StepFailure(self.number, self.instruction, lines[-1] if lines else message, self.tail)
        aux = chunk.get("aux")
        if chunk.get("id") == buildkit_trace.TRACE_ID and isinstance(aux, str):
            self._feed_trace(aux)
            return None
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        for line in output_lines(str(chunk.get("stream", ""))):
            match = _STEP.match(line)
            if match:
                self.instruction, self.number = match["instruction"], f"{match['n']}/{match['total']}"
                self._tail.clear()
                reporting.step(int(match["n"]), int(match["total"]), shown_instruction(self.instruction))
                continue
            self._tail.append(line)
            if line.startswith("Successfully built "):
                self.image_id = self.image_id or line.split()[-1]
            reporting.log(line)
        return None

    @property
    def failed_before_the_steps(self) -> bool:
        """For a failed BuildKit build: whether it failed before any step that runs the Dockerfile's
        own work, at its FROM image or in the engine's frontend. Such a failure may be BuildKit's
        alone (it resolves images its own way), so the classic builder is given the build."""
        if self._failed is None:
            return not self._reported
        instruction, number = self._steps[self._failed]
        return number == "0" or instruction.startswith("FROM ")

    def _new_tail(self) -> collections.deque[str]:
        return collections.deque(maxlen=LOG_TAIL_LINES)

    def _feed_trace(self, aux: str) -> None:
        try:
            trace = buildkit_trace.decode(aux)
        except buildkit_trace.TraceError:
            return  # progress only: the image id and any error come in chunks of their own
        for vertex in trace.vertexes:
            step = vertex.step
            if step is None:
                continue
            number, total, instruction = step
            self._steps[vertex.digest] = (instruction, f"{number}/{total}" if total else "0")
            if vertex.error:
                self._failed = vertex.digest
            if total and vertex.digest not in self._reported and (vertex.started or vertex.cached):
                self._reported.add(vertex.digest)
                self.instruction, self.number = self._steps[vertex.digest]
                self._tail = self._tails.setdefault(vertex.digest, self._new_tail())
                reporting.step(number, total, shown_instruction(instruction), stage=vertex.stage)
                if vertex.cached:
                    reporting.log("CACHED")
        for log in trace.logs:
            if log.vertex not in self._steps:
                continue
            # A message holds what the step wrote since the last one, which may end mid-line:
            # the rest of the line comes in the next (the install's diagnosis is one long line).
            text = self._partial.pop(log.vertex, "") + log.data.decode("utf-8", "replace")
            complete, newline, rest = text.rpartition("\n")
            if rest:
                self._partial[log.vertex] = rest
            self._emit(log.vertex, complete + newline)
        for vertex in trace.vertexes:
            if (vertex.completed or vertex.error) and vertex.digest in self._partial:
                self._emit(vertex.digest, self._partial.pop(vertex.digest))

    def _emit(self, vertex: str, text: str) -> None:
        tail = self._tails.setdefault(vertex, self._new_tail())
        for line in output_lines(text):
            tail.append(line)
            if not line.startswith(DIAGNOSIS_MARKER):  # the failure's message says it
                reporting.log(line)
