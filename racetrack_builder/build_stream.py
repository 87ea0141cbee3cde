"""Reading the engine's build output: which step runs, its last lines, the image it made.

The classic builder streams JSON chunks: ``{"stream": "Step 3/9 : RUN ..."}`` lines, ``{"aux":
{"ID": ...}}`` with the image id, and ``{"error": ..., "errorDetail": ...}`` when a step failed.
:class:`BuildStream` turns them into reported steps and log lines and, on an error, a
:class:`StepFailure` that ``failures.py`` explains. It knows nothing of docker-py.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import reporting

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

    number: str  # "3/9"; "0" when the build failed before its first step
    instruction: str  # the Dockerfile instruction, "" before the first step
    message: str  # the engine's own error
    tail: list[str]  # the step's last output lines, the engine's error last

    @property
    def where(self) -> str:
        """``step 3/9: RUN ...`` on one short line, for messages."""
        return f"step {self.number}: {short_instruction(self.instruction) or 'start'}"


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

    @property
    def tail(self) -> list[str]:
        """The last output lines of the step in progress."""
        return list(self._tail)

    def feed(self, chunk: Mapping[str, Any]) -> StepFailure | None:
        """Take one chunk of the stream; the failure when the chunk says the build failed."""
        if "error" in chunk:
            message = str((chunk.get("errorDetail") or {}).get("message") or chunk["error"])
            self._tail.extend(output_lines(message))
            lines = output_lines(message)
            return StepFailure(self.number, self.instruction, lines[-1] if lines else message, self.tail)
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        for line in output_lines(str(chunk.get("stream", ""))):
            match = _STEP.match(line)
            if match:
                self.instruction, self.number = match["instruction"], f"{match['n']}/{match['total']}"
                self._tail.clear()
                reporting.step(int(match["n"]), int(match["total"]), self.instruction)
                continue
            self._tail.append(line)
            if line.startswith("Successfully built "):
                self.image_id = self.image_id or line.split()[-1]
            reporting.log(line)
        return None
