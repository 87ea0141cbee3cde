"""One error hierarchy for the whole tool.

Library modules raise these (converting gitpython, docker-py and YAML errors at the boundary and
keeping the original as ``__cause__``); only ``cli.py`` prints them and turns ``exit_code`` into the
process exit status. The codes are part of the CLI's contract and documented in the README:

====  ===========================================================================
0     success
1     the job's build failed (a step of the Dockerfile, the import check, a smoke test)
      or, for ``call``, the job answered with an error (not 2xx)
2     usage error or invalid input: bad arguments, invalid manifest, missing files in the job
3     environment failure: engine unreachable, remote unreachable, authentication refused
====  ===========================================================================
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass


class RacetrackError(Exception):
    """Root of every error this tool raises on purpose.

    ``message`` says what went wrong; ``hint`` (optional) says how to fix it. ``str()`` joins both
    so a bare ``print(err)`` is already a complete, actionable message. ``details`` holds what a
    diagnosis found, field by field (the install step's: requirement, where, cause, fix...), for
    ``--json``. ``log_tail`` holds the last lines of an outside tool's output that say why (a
    build step's, the installer's), ``log_title`` what that output is.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None,
                 details: dict[str, object] | None = None, log_tail: list[str] | None = None,
                 log_title: str = "Last lines of the failing step:") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or {}
        self.log_tail = log_tail or []
        self.log_title = log_title

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


# --- exit code 2: the user's input is wrong -------------------------------------------------------


class UsageError(RacetrackError):
    """Bad arguments or invalid input the user can fix."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest, located in the file when we know where."""

    field: str  # dotted path such as ``git.branch``; "" for the document itself
    message: str  # what is wrong, and in parentheses how to fix it
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def format(self, filename: str) -> str:
        where = filename
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"field": self.field, "message": self.message, "line": self.line, "column": self.column}


class ManifestError(UsageError):
    """The manifest cannot be used; ``problems`` lists every reason at once."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        count = len(problems)
        summary = f"{filename}: {count} problem{'s' if count != 1 else ''}"
        super().__init__(summary + "\n" + "\n".join(p.format(filename) for p in problems))

    def __str__(self) -> str:
        return self.message


class SecretsError(UsageError):
    """A secret env file named by the manifest is missing or unreadable."""


class SourceError(UsageError):
    """The job's source is not what the manifest says: no such branch, directory, entrypoint..."""


class RenderError(UsageError):
    """A value cannot be put into a Dockerfile safely."""


# --- exit code 3: the environment failed us -------------------------------------------------------


class EnvironmentFailure(RacetrackError):
    """Something outside the user's job failed: network, engine, credentials."""

    exit_code = 3


class RemoteUnreachable(EnvironmentFailure):
    """The git remote did not answer."""


class AuthenticationRefused(EnvironmentFailure):
    """A remote or registry refused our credentials."""


class EngineUnreachable(EnvironmentFailure):
    """No Docker engine answers at DOCKER_HOST or the default socket."""


class JobUnreachable(EnvironmentFailure):
    """``call``: nothing answers at the job's address (no ``serve`` or ``run`` there)."""


class NoSpaceLeft(EnvironmentFailure):
    """The disk (or quota) holding a workspace or an output folder is full."""


# errno values that mean "the disk is full" rather than "this path is wrong".
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def disk_error(exc: OSError, action: str, path: os.PathLike[str] | str) -> EnvironmentFailure:
    """Our error for an OSError raised while writing under ``path`` (chain it with ``from exc``).

    A full disk is :class:`NoSpaceLeft`, naming where and how to get room; anything else (a
    read-only file system, permissions) is an :class:`EnvironmentFailure` quoting the system's words.
    """
    if exc.errno in _DISK_FULL:
        return NoSpaceLeft(
            f"no space left on device at {path} while {action}",
            hint="free space there, or use a bigger disk: TMPDIR for workspaces, -o for contexts",
        )
    where = exc.filename or path
    return EnvironmentFailure(f"cannot write {where} while {action}: {exc.strerror or exc}")


# --- exit code 1: the job's build failed ----------------------------------------------------------


class BuildFailed(RacetrackError):
    """A step of the job's image build failed (``step``), or the built job did."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, step: str | None = None,
                 log_tail: list[str] | None = None,
                 log_title: str = "Last lines of the failing step:",
                 details: dict[str, object] | None = None) -> None:
        super().__init__(message, hint=hint, details=details, log_tail=log_tail, log_title=log_title)
        self.step = step


class JobAnswerError(RacetrackError):
    """``call``: the job answered, but not 2xx; the message carries the job's own error."""

    exit_code = 1

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
