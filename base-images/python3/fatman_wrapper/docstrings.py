"""Docstrings of endpoint methods, split into the parts the OpenAPI document shows."""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass
class Docstring:
    """The parts of a docstring the OpenAPI document shows."""

    summary: str = ""
    description: str = ""
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    returns: str = ""


_REST_FIELD = re.compile(r"^:(param|parameter|arg|argument|key)\s+(?:[^:]*\s)?(\w+):\s*(.*)$")
_REST_RETURN = re.compile(r"^:(return|returns):\s*(.*)$")
_GOOGLE_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Return):\s*$")
_GOOGLE_PARAM = re.compile(r"^(\w+)\s*(?:\([^)]*\))?:\s*(.*)$")


def parse_docstring(doc: str) -> Docstring:
    """Split a reST (``:param x:``) or Google-style (``Args:``) docstring into its parts."""
    result = Docstring()
    text_lines: list[str] = []
    section: str | None = None  # inside a Google-style "Args:" / "Returns:" block
    item_indent = 0  # indentation of the items of that block
    current: str | None = None  # the parameter a continuation line belongs to; "" = returns

    def extend(more: str) -> None:
        if current == "":
            result.returns = (result.returns + " " + more).strip()
        elif current is not None:
            result.params[current] = (result.params[current] + " " + more).strip()

    for raw in doc.splitlines():
        line = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        m = _REST_FIELD.match(line)
        if m:
            section, current = None, m.group(2)
            result.params[current] = m.group(3).strip()
            continue
        m = _REST_RETURN.match(line)
        if m:
            section, current = None, ""
            result.returns = m.group(2).strip()
            continue
        m = _GOOGLE_SECTION.match(line)
        if m:
            section = "return" if m.group(1).startswith("Return") else "param"
            current, item_indent = ("" if section == "return" else None), 0
            continue
        if section and line and indent > 0:
            if not item_indent:
                item_indent = indent
            pm = _GOOGLE_PARAM.match(line)
            if section == "param" and pm and indent <= item_indent:
                current = pm.group(1)
                result.params[current] = pm.group(2).strip()
            else:
                extend(line)
            continue
        if current is not None and line and indent > 0 and not line.startswith(":"):
            extend(line)
            continue
        section, current = None, None
        if line.startswith(":"):
            continue  # a field we do not show (:raises:, :rtype:)
        text_lines.append(line)
    text = "\n".join(text_lines).strip()
    paragraphs = text.split("\n\n", 1)
    result.summary = paragraphs[0].replace("\n", " ").strip()
    result.description = text
    return result
