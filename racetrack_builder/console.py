"""Everything the CLI prints goes through here.

Two styles: rich (colours, spinners) on a terminal, plain lines when the output is not a TTY, when
NO_COLOR is set or TERM is dumb, so CI logs stay readable and greppable. Results (a Dockerfile, a
schema, a JSON summary) go to stdout; messages and progress go to stderr. Every message line is
masked: secret values registered with ``mask()`` become ``***``; and every control character in it
but newline and tab is shown as ``\\xNN``, since messages carry outside text (file names from the
repository, git's and the job's output) that could otherwise set the terminal's title or erase lines.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

MASK = "***"

# C0 controls but tab and newline, DEL, and C1 controls (0x9b is a one-byte CSI): what moves the
# cursor, erases, rings, starts an escape sequence. Newline stays: it is how the tool's own messages
# of several lines (a .env file's problems) are written; each line is still escaped. Tab is harmless.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """``text`` with every control character but newline and tab shown as ``\\xNN``."""
    return _CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def wants_fancy(stream: IO[str]) -> bool:
    """Rich output only for a human at a capable terminal."""
    if os.environ.get("NO_COLOR") is not None or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class Output:
    """Printing for one CLI invocation."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        verbose: bool = False,
        fancy: bool | None = None,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self.verbose = verbose
        self.fancy = wants_fancy(self.err) if fancy is None else fancy
        self._secrets: list[str] = []
        self._started = time.monotonic()
        self._console: Any = None

    # -- masking -----------------------------------------------------------------------------------
    def mask(self, values: Iterable[str]) -> None:
        """Never print these values. Very short values are skipped: masking them would garble text
        without protecting much (a 1-3 character secret is not a secret)."""
        self._secrets = sorted(set(self._secrets) | {v for v in values if len(v) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for value in self._secrets:
            text = text.replace(value, MASK)
        return text

    def clean(self, text: str) -> str:
        """``text`` as fit for the terminal: masked (on the raw text, so an escaped secret is still
        found), then control characters escaped."""
        return escape_controls(self.redact(text))

    # -- plumbing ----------------------------------------------------------------------------------
    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console  # imported on first use: `validate` must start fast

            self._console = Console(file=self.err, highlight=False, soft_wrap=True)
        return self._console

    def line(self, text: str, style: str | None = None, *, prefix: str = "") -> None:
        """One masked line on stderr, control characters escaped, styled on a terminal and plain
        otherwise."""
        text = self.clean(text)
        if self.fancy:
            from rich.text import Text

            self.console.print(Text(prefix + text, style=style or ""))
        else:
            print(prefix + text, file=self.err, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    # -- the vocabulary commands use ---------------------------------------------------------------
    def result(self, text: str) -> None:
        """The command's product, on stdout, unstyled and unmasked.

        Products (a Dockerfile, a schema, a JSON summary) are built by us from non-secret data
        only, by construction; masking them would corrupt a value that merely contains a secret's
        text (an image named ``racetrack-...`` when a user name is ``racetrack``). Log lines, which
        carry outside text such as pip's output, are what gets masked.

        On a terminal, control characters but newline and tab are escaped as in message lines: JSON
        escapes its own, but a Dockerfile shown to a human must not drive the terminal either.
        Redirected to a file or a pipe, the product is written exactly."""
        if getattr(self.out, "isatty", lambda: False)():
            text = escape_controls(text)
        print(text, file=self.out, flush=True)

    def info(self, text: str) -> None:
        if not self.quiet:
            self.line(text)

    def detail(self, text: str) -> None:
        if self.verbose:
            self.line(text, "dim")

    def step(self, text: str) -> None:
        """Progress of a long operation; timestamped in plain mode so CI logs show where time went."""
        if self.quiet:
            return
        if self.fancy:
            self.line(text, "cyan", prefix="• ")
        else:
            self.line(text, prefix=f"[{self.elapsed():7.1f}s] ")

    def success(self, text: str) -> None:
        self.line(text, "bold green", prefix="✓ " if self.fancy else "")

    def warn(self, text: str) -> None:
        self.line(text, "yellow", prefix="Warning: ")

    def error(self, text: str) -> None:
        self.line(text, "bold red", prefix="Error: ")


def step_text(number: int, total: int, instruction: str, stage: str = "") -> str:
    """``step 2/5 RUN ...`` on one line; ``system step 1/2 ...`` for a step of a named stage."""
    return f"{stage + ' ' if stage else ''}step {number}/{total} {instruction.splitlines()[0][:100]}"


class ConsoleReporter:
    """The library's reports (``reporting.Reporter``) as lines of ``output``: progress is hidden by
    ``-q``, build output shown with ``-v``, warnings always."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.title = ""

    def progress(self, text: str) -> None:
        self.output.step(text)

    def warn(self, text: str) -> None:
        self.output.warn(text)

    def phase(self, title: str) -> None:
        self.title = title

    def step(self, number: int, total: int, instruction: str, stage: str = "") -> None:
        prefix = f"{self.title}: " if self.title else ""
        self.output.step(f"{prefix}{step_text(number, total, instruction, stage)}")

    def log(self, line: str) -> None:
        self.output.detail(f"    {line}")


class BuildProgress:
    """Live progress of an image build, and the reporter while it runs.

    On a terminal: a spinner, the step being run, the elapsed time and the last lines of its output,
    with progress and warnings printed above it. Otherwise: one timestamped line per step, and every
    output line with ``--verbose``.
    """

    TAIL = 6

    def __init__(self, output: Output, title: str) -> None:
        self.output = output
        self.title = title
        self.step_text = "starting"
        self.tail: list[str] = []
        self._live: Any = None
        self._spinner: Any = None
        self._step_started = time.monotonic()

    def __enter__(self) -> BuildProgress:
        from .reporting import reporting_to

        self._reporting = reporting_to(self)
        self._reporting.__enter__()
        if self.output.fancy and not self.output.quiet:
            from rich.live import Live

            # get_renderable: asked at every refresh, so the elapsed time counts while a step runs.
            self._live = Live(
                console=self.output.console, refresh_per_second=8, transient=True,
                get_renderable=self._render,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None
        self._reporting.__exit__(None, None, None)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.text import Text

        elapsed = time.monotonic() - self._step_started
        text = Text(f"{self.output.clean(self.title)}: {self.output.clean(self.step_text)}  ({elapsed:.0f}s)",
                    style="cyan")
        # One spinner for the whole build: a new one every refresh would show its first frame only.
        if self._spinner is None:
            self._spinner = Spinner("dots", text)
        else:
            self._spinner.update(text=text)
        lines = [Text("  " + self.output.clean(line)[:200], style="dim") for line in self.tail]
        return Group(self._spinner, *lines)

    def step(self, number: int, total: int, instruction: str, stage: str = "") -> None:
        self.step_text = step_text(number, total, instruction, stage)
        self.tail = []
        self._step_started = time.monotonic()
        if self._live is not None:
            self._live.refresh()
        else:
            self.output.step(f"{self.title}: {self.step_text}")

    def log(self, line: str) -> None:
        if self._live is not None:
            self.tail = (self.tail + [line])[-self.TAIL :]
            self._live.refresh()
        else:
            self.output.detail(f"    {line}")

    def phase(self, title: str) -> None:
        """What is being built now (the base image, then the job)."""
        self.title = title

    def progress(self, text: str) -> None:
        if self._live is not None:
            from rich.text import Text

            # A Text, not a str: rich would read "[...]" in a file name as markup.
            self._live.console.print(Text(self.output.clean(text)))
        else:
            self.output.step(text)

    def warn(self, text: str) -> None:
        if self._live is not None:
            from rich.text import Text

            self._live.console.print(Text("Warning: " + self.output.clean(text), style="yellow"))
        else:
            self.output.warn(text)
