"""Outside text never drives the terminal: control characters in what is printed are escaped
(audit finding 9: a committed file whose name held ESC/BEL sequences rewrote the terminal's title
and erased lines)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from racetrack_builder.console import BuildProgress, ConsoleReporter, Output, escape_controls
from racetrack_builder.reporting import reporting_to

TITLE = "\x1b]0;pwned\x07"           # OSC: set the terminal's title, ended by BEL
ERASE = "\x1b[2K\r\x1b[1A"            # erase the line, back to its start, one line up
C1_CSI = "\x9b2J"                     # the one-byte CSI: clear the screen
RAW = (TITLE, ERASE, C1_CSI, "\x7f", "\x00", "\x08")
FORBIDDEN = ("\x1b", "\x07", "\r", "\x9b", "\x7f", "\x00", "\x08")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("text", "shown"), [
    (TITLE, "\\x1b]0;pwned\\x07"),
    (ERASE, "\\x1b[2K\\x0d\\x1b[1A"),
    (C1_CSI, "\\x9b2J"),
    ("del\x7f nul\x00 bs\x08", "del\\x7f nul\\x00 bs\\x08"),
    ("two\nlines\tand a tab", "two\nlines\tand a tab"),
    ("naïve ☃ 名前", "naïve ☃ 名前"),
])
def test_escape_controls(text: str, shown: str) -> None:
    assert escape_controls(text) == shown


@pytest.mark.parametrize("fancy", [False, True])
def test_every_message_line_is_escaped(fancy: bool) -> None:
    err = io.StringIO()
    out = Output(fancy=fancy, err=err, out=io.StringIO())
    for raw in RAW:
        out.warn(f"jobs/adder/{raw}.env will be copied into the image")
        out.error(f"boom {raw}")
        out.step(f"cloning {raw}")
        out.line(f"  log {raw}")
    printed = err.getvalue()
    assert not any(char in printed for char in FORBIDDEN), repr(printed)
    assert "jobs/adder/\\x1b]0;pwned\\x07.env will be copied" in printed


def test_the_tools_own_lines_of_a_message_stay_lines() -> None:
    err = io.StringIO()
    Output(fancy=False, err=err).error("secret_build_env_file: '.env.build' is not a valid .env file:\n"
                                       "  line 1: has no '='")
    assert err.getvalue().splitlines() == [
        "Error: secret_build_env_file: '.env.build' is not a valid .env file:", "  line 1: has no '='"]


def test_masking_still_finds_a_secret_next_to_controls() -> None:
    err = io.StringIO()
    out = Output(fancy=False, err=err)
    out.mask(["s3cret-token"])
    out.line(f"{TITLE}s3cret-token\x07")
    assert err.getvalue() == "\\x1b]0;pwned\\x07***\\x07\n"


def test_results_on_a_terminal_are_escaped_and_exact_elsewhere() -> None:
    dockerfile = f'LABEL "x"="{TITLE}"\nCOPY job/ .\n'
    tty, pipe = Tty(), io.StringIO()
    Output(out=tty, err=io.StringIO()).result(dockerfile)
    Output(out=pipe, err=io.StringIO()).result(dockerfile)
    assert tty.getvalue() == 'LABEL "x"="\\x1b]0;pwned\\x07"\nCOPY job/ .\n\n'
    assert pipe.getvalue() == dockerfile + "\n"
    # JSON escapes its own controls, so a terminal shows it unchanged and it still parses.
    document = json.dumps({"file": TITLE + C1_CSI})
    shown = Tty()
    Output(out=shown, err=io.StringIO()).result(document)
    assert json.loads(shown.getvalue()) == {"file": TITLE + C1_CSI}


def test_the_live_build_display_is_escaped() -> None:
    err = Tty()
    out = Output(fancy=True, err=err)
    with BuildProgress(out, f"job {TITLE}") as progress:
        progress.step(1, 2, f"COPY {ERASE} .")
        progress.log(f"pip says {TITLE}")
        progress.progress(f"[bold]not markup[/bold] {C1_CSI}")
        progress.warn(f"file {TITLE}")
        from rich.console import Console

        frame = io.StringIO()
        Console(file=frame, force_terminal=False, width=200).print(progress._render())
    assert not any(char in frame.getvalue() for char in FORBIDDEN), repr(frame.getvalue())
    assert "pip says \\x1b]0;pwned\\x07" in frame.getvalue()
    assert "COPY \\x1b[2K" in frame.getvalue()  # the instruction's first line: '\r' ends one
    printed = err.getvalue()
    assert "[bold]not markup[/bold] \\x9b2J" in printed
    assert "file \\x1b]0;pwned\\x07" in printed
    for raw in (TITLE, ERASE, C1_CSI):
        assert raw not in printed


def test_reporter_messages_are_escaped() -> None:
    err = io.StringIO()
    with reporting_to(ConsoleReporter(Output(fancy=False, verbose=True, err=err))) as reporter:
        reporter.progress(f"cloned {TITLE}")
        reporter.step(1, 1, f"RUN {ERASE}")
        reporter.log(f"{C1_CSI}")
    assert not any(char in err.getvalue() for char in FORBIDDEN), repr(err.getvalue())


def test_a_committed_file_name_with_escapes_never_reaches_the_terminal(
        git_repo_factory: Callable[..., Path]) -> None:
    """End to end: `render --local` warns about a committed .env file whose name holds escapes."""
    name = f".env{TITLE}{ERASE}x"
    manifest = ("name: adder\nowner_email: owner@example.com\nlang: python3\n"
                "git:\n  remote: {remote}\npython:\n  entrypoint_path: entrypoint.py\n")
    repo = git_repo_factory("work", {
        "entrypoint.py": "class FatmanEntrypoint:\n    def perform(self) -> int:\n        return 1\n",
        name: "A=1\n",
    })
    (repo / "fatman.yaml").write_text(manifest.format(remote=repo))
    result = subprocess.run([sys.executable, "-m", "racetrack_builder", "render", str(repo / "fatman.yaml"),
                             "--local"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    assert ".env\\x1b]0;pwned\\x07\\x1b[2K\\x0d\\x1b[1Ax will be copied into the image" in result.stderr
    assert not any(char in result.stderr for char in FORBIDDEN), repr(result.stderr)
