r"""Rules written once: the validator's messages and the JSON Schema's pattern read one definition.

A :class:`Rule` is a list of :class:`Clause` objects, each a form a value must not have and the
message that says so. The validator reports the first clause a value breaks, so their order is the
order in which messages are preferred; the JSON Schema pattern is assembled from the same clauses,
``^(?!form)(?!form)...[^forbidden characters]+$``. A clause with ``in_schema=False`` is left out of
the pattern and checked by ``validate`` only; each such clause says why where it is defined.

Forms are written for both Python's ``re`` and ECMA-262, because editors run schema patterns as
JavaScript regexes: ``[0-9]`` rather than ``\d`` (Python's ``\d`` matches any digit), and
``[\s\S]`` rather than ``.`` where a value may hold U+2028 or U+2029 (ECMA's ``.`` stops there).

This module also holds the two clauses every text field shares (:func:`blank` and
:func:`control`) and the helpers that word messages (:func:`show`, :func:`fail`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from pydantic_core import PydanticCustomError

# (value, what matched) -> the final message: what is wrong, then in parentheses how to fix it.
Message = Callable[[str, str], str]

# C0, DEL and C1, as the inside of a character class. No string that goes into the image may hold
# one, so a newline can never start a new Dockerfile instruction.
CONTROL_CHARS = r"\x00-\x1f\x7f-\x9f"
_CONTROL_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL byte"}


def fail(message: str) -> PydanticCustomError:
    """A pydantic error whose text is ``message`` as is (the "racetrack" type problems.py expects).

    The text goes in through the context so that braces in user values are not read as
    placeholders.
    """
    return PydanticCustomError("racetrack", "{text}", {"text": message})


def show(value: str, limit: int = 60) -> str:
    """A user value quoted for a message, control characters escaped, long values shortened."""
    text = value if len(value) <= limit else value[: limit - 3] + "..."
    return repr(text)


def about_value(text: str) -> Message:
    """The message ``'<the value>' <text>``, e.g. about_value("is an absolute path (...)")."""
    return lambda value, found: f"{show(value)} {text}"


@functools.cache
def _compiled(form: str) -> re.Pattern[str]:
    # Not re.ASCII: \s must be Unicode whitespace, as str.strip() sees it.
    return re.compile(form)


@dataclass(frozen=True)
class Clause:
    """One form a value must not have, and the message saying so.

    ``form`` is a regex matched at the start of the value (``.*x`` means "contains x"). With
    ``chars=True`` it is instead the inside of a character class: any one of those characters,
    anywhere, breaks the clause, and ``message`` gets the first one found.
    """

    form: str
    message: Message
    chars: bool = False
    in_schema: bool = True

    def find(self, value: str) -> str | None:
        """What in ``value`` breaks this clause ("" for a zero-width form), or None."""
        if self.chars:
            found = _compiled(f"[{self.form}]").search(value)
        else:
            found = _compiled(self.form).match(value)
        return None if found is None else found.group()

    def check(self, value: str) -> None:
        """Raise the clause's message (as a pydantic error) if ``value`` breaks it."""
        found = self.find(value)
        if found is not None:
            raise fail(self.message(value, found))

    def validate_only(self) -> Clause:
        """This clause, left out of the JSON Schema pattern."""
        return replace(self, in_schema=False)


@dataclass(frozen=True)
class Rule:
    """Clauses tried in order, then ``body``: the shape a value must have once no clause objects.

    Without ``body`` a value is any run of the characters no ``chars`` clause forbids (empty only
    with ``allow_empty``). ``otherwise`` words a value that breaks no clause yet misses ``body``.
    """

    clauses: tuple[Clause, ...]
    body: str | None = None
    otherwise: Message | None = None
    allow_empty: bool = False

    def __post_init__(self) -> None:
        # The pattern of a rule without a body rejects "": the validator must, with a message.
        rejects_empty = any(clause.find("") is not None for clause in self.clauses)
        if self.body is None and not self.allow_empty and not rejects_empty:
            raise ValueError("a rule that rejects empty values needs a clause that says so")
        if self.body is not None and self.otherwise is None:
            raise ValueError("a rule with a body needs an 'otherwise' message")

    @property
    def pattern(self) -> str:
        """The rule as one JSON Schema pattern, ``^...$``."""
        schema = [clause for clause in self.clauses if clause.in_schema]
        chars = "".join(clause.form for clause in schema if clause.chars)
        ahead = "".join(f"(?!{clause.form})" for clause in schema if not clause.chars)
        if self.body is None:
            return f"^{ahead}[^{chars}]{'*' if self.allow_empty else '+'}$"
        if chars:
            ahead += rf"(?![\s\S]*[{chars}])"
        return f"^{ahead}{self.body}$"

    def problem(self, value: str) -> str | None:
        """The message for the first clause ``value`` breaks, or None when it keeps the rule."""
        for clause in self.clauses:
            found = clause.find(value)
            if found is not None:
                return clause.message(value, found)
        if self.body is not None and self.otherwise is not None and not _compiled(self.body).fullmatch(value):
            return self.otherwise(value, value)
        return None

    def check(self, value: str) -> str:
        """``value`` if it keeps the rule; else raise the message (as a pydantic error)."""
        message = self.problem(value)
        if message is not None:
            raise fail(message)
        return value


# --- the clauses every text field shares ----------------------------------------------------------


def blank(example: str) -> Clause:
    """An empty or all-whitespace value; ``example`` is shown as written (quote it yourself)."""
    return Clause(r"\s*$", lambda value, found: f"is empty (give a value, e.g. {example})")


def _control_name(char: str) -> str:
    return _CONTROL_NAMES.get(char, f"the control character U+{ord(char):04X}")


def control(what: str) -> Clause:
    """A control character anywhere; ``what`` names the value in the message ("the path")."""
    return Clause(CONTROL_CHARS, chars=True, message=lambda value, found: (
        f"{what} contains {_control_name(found)} (keep it on one line, without control characters)"))


def reject_control(value: str, what: str) -> None:
    """Raise the :func:`control` message if ``value`` holds a control character."""
    control(what).check(value)
