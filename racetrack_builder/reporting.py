"""How the library tells what it is doing, without printing: one reporter, chosen by the caller.

Library modules call the functions below (``progress``, ``warn``, ``phase``, ``step``, ``log``);
they reach whatever :class:`Reporter` the caller installed with :func:`reporting_to`, and nothing
at all when none is installed, so the library stays silent when used from code or in unit tests.
The reporter lives in a context variable, as pypa/build keeps its logger, so it need not be
threaded through every function between the CLI and the git clone or the engine's build stream.

The CLI decides how each kind of message looks (``console.py``): ``-q`` hides progress and build
output, never warnings.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Protocol

__all__ = ["Reporter", "Silent", "current", "log", "phase", "progress", "reporting_to", "step", "warn"]


class Reporter(Protocol):
    """What the library reports while it works."""

    def progress(self, text: str) -> None:
        """A stage of a long operation began or ended ("cloning ...", "using the base image ...")."""

    def warn(self, text: str) -> None:
        """Something the user should know and probably fix; the operation goes on."""

    def phase(self, title: str) -> None:
        """What is being built from now on (the base image, then the job)."""

    def step(self, number: int, total: int, instruction: str, stage: str = "") -> None:
        """A Dockerfile step of the build in progress started: step ``number`` of ``total``, of
        the named ``stage`` where its numbers are the stage's own (BuildKit's)."""

    def log(self, line: str) -> None:
        """A line of output of the build step (or push) in progress."""


class Silent:
    """The reporter in place when nobody installed one: drops everything."""

    def progress(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass

    def phase(self, title: str) -> None:
        pass

    def step(self, number: int, total: int, instruction: str, stage: str = "") -> None:
        pass

    def log(self, line: str) -> None:
        pass


# Silent holds no state, so one shared default is safe.
_CURRENT: contextvars.ContextVar[Reporter] = contextvars.ContextVar(
    "racetrack_reporter", default=Silent()  # noqa: B039
)


def current() -> Reporter:
    """The reporter in place."""
    return _CURRENT.get()


@contextlib.contextmanager
def reporting_to(reporter: Reporter) -> Iterator[Reporter]:
    """Send what the library reports inside the block to ``reporter``; the previous one after."""
    token = _CURRENT.set(reporter)
    try:
        yield reporter
    finally:
        _CURRENT.reset(token)


def progress(text: str) -> None:
    """Report a stage of a long operation."""
    _CURRENT.get().progress(text)


def warn(text: str) -> None:
    """Report something the user should know; never hidden by ``--quiet``."""
    _CURRENT.get().warn(text)


def phase(title: str) -> None:
    """Report what is being built from now on."""
    _CURRENT.get().phase(title)


def step(number: int, total: int, instruction: str, stage: str = "") -> None:
    """Report that a Dockerfile step started."""
    _CURRENT.get().step(number, total, instruction, stage)


def log(line: str) -> None:
    """Report a line of output of the step in progress."""
    _CURRENT.get().log(line)
