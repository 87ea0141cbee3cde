"""What went wrong, as located :class:`Problem` lines in the user's terms, never pydantic's wording.

Turns YAML syntax errors, the problems the YAML layer recovered from, and pydantic's validation
errors into ``Problem(field, message, line, column)``: what is wrong and, in parentheses, how to fix
it. The wording needs a few facts about the manifest format (its sections, examples for them, which
mappings hold text); a :class:`Layout` carries them, so another format can reuse this module.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from racetrack_builder.errors import Problem
from racetrack_builder.yaml_lines import LoadedDocument, Position, YamlSyntaxError

from .fields import is_identifier, version_suggestion
from .rules import show


class Document(Protocol):
    """What the messages need of a document: a LoadedDocument, or merged layers (sources.Layers)."""

    data: Any

    @property
    def problems(self) -> list[Any]: ...

    def entry(self, path: Sequence[Any]) -> Any: ...

    def locate(self, path: Sequence[Any], *, key: bool = False) -> Position: ...

    def start_of(self, path: Sequence[Any]) -> Position: ...


# Past this many problems the rest is noise; the last Problem says how many were left out.
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Layout:
    """The facts about one manifest format that its messages need."""

    model: type[BaseModel]
    # Example content of a section, shown when the section is missing: {"git": {"remote": ...}}.
    section_examples: Mapping[str, Mapping[str, Any]]
    # Mappings whose values are text (env, labels): a missing value there gets its own hint.
    text_sections: tuple[str, ...]
    # Top-level keys starting with this are the user's own (suggested for an unknown key); None
    # when the format has no such keys.
    extension_prefix: str | None
    # The fields a manifest must have, when the model cannot say (one of two fields, say).
    required: tuple[str, ...] | None = None

    @cached_property
    def sections(self) -> dict[str, type[BaseModel]]:
        """The model of each section by its dotted path; "" is the top level."""
        found: dict[str, type[BaseModel]] = {"": self.model}
        for name, info in self.model.model_fields.items():
            section = _section_model(info.annotation)
            if section is not None:
                found[name] = section
        return found

    def required_fields(self) -> list[str]:
        """The dotted paths of the fields a manifest must have, in the model's order."""
        if self.required is not None:
            return list(self.required)
        required = []
        for name, info in self.model.model_fields.items():
            if not info.is_required():
                continue
            section = self.sections.get(name)
            if section is None:
                required.append(name)
            else:
                required += [f"{name}.{inner}" for inner, field in section.model_fields.items()
                             if field.is_required()]
        return required

    def required_hint(self) -> str:
        """``add the required fields a, b and c``."""
        *first, last = self.required_fields()
        return f"add the required fields {', '.join(first)} and {last}"


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a section field: ``Section`` or ``Section | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(models) == 1:
            return _section_model(models[0])
    return None


# --- YAML ------------------------------------------------------------------------------------------


def syntax_problem(err: YamlSyntaxError, text: str) -> Problem:
    """Where a YAML syntax error is and what to do about it, in the user's terms."""
    position, problem = err.position, err.problem
    if "expected a single document" in err.context or "expected a single document" in problem:
        return _at(position, "holds more than one YAML document (keep one; remove the extra '---' line)")
    hint = "fix the syntax at this line"
    if "cannot start any token" in problem and position is not None:
        lines = text.splitlines()
        line = lines[position.line - 1] if position.line <= len(lines) else ""
        char = line[position.column - 1: position.column] or "?"
        problem = f"found {char!r}, which cannot start a value"
        hint = "indent with spaces, not tabs" if char == "\t" else "put the value in quotes"
    elif "quoted scalar" in err.context and "end of stream" in problem and err.context_position:
        position, problem, hint = err.context_position, "a quoted value is never closed", "close the quote"
    elif "mapping values are not allowed" in problem:
        hint = "check this line's indentation, or quote a value that contains ': '"
    elif "could not find expected ':'" in problem:
        hint = "write each field as 'key: value'; check this line and the one above"
    elif "did not find expected key" in problem or "did not find expected '-'" in problem:
        hint = "check this line's indentation against the lines above"
    elif "undefined alias" in problem:
        hint = "define the anchor '&name' before using '*name'"
    elif "unacceptable character" in problem:
        hint = "remove the character; YAML files hold printable text only"
    return _at(position, f"is not valid YAML: {problem} ({hint})")


def _at(position: Position | None, message: str) -> Problem:
    """A problem of the whole document, at ``position`` when known."""
    return Problem("", message, position.line if position else None, position.column if position else None)


def yaml_problems(doc: LoadedDocument) -> list[Problem]:
    """The problems the YAML layer recovered from (duplicate keys, odd tags...), located."""
    return [Problem(format_path(p.path), p.message, p.position.line, p.position.column) for p in doc.problems]


# --- pydantic ---------------------------------------------------------------------------------------


def validation_problems(
    err: ValidationError, doc: Document, layout: Layout,
    attribute: Callable[[Problem, tuple[Any, ...]], Problem] | None = None,
) -> list[Problem]:
    """Every pydantic error as a located Problem, except echoes of a YAML problem.

    ``attribute`` (for data merged from several sources, see sources.Layers) names the source of
    the problem about a path.
    """
    # Values the YAML layer could not give (recursive alias, too deep) would only echo its problem.
    blocked = [p.path for p in doc.problems if p.kind in ("alias", "depth")]
    problems = []
    for error in err.errors(include_url=False, include_context=True, include_input=True):
        loc = tuple(error["loc"])
        path = tuple(step for step in loc if step != "[key]")
        if any(path[: len(b)] == b for b in blocked):
            continue
        problem = _to_problem(error, loc, doc, layout)
        problems.append(attribute(problem, path) if attribute is not None else problem)
    return problems


def sorted_and_capped(problems: list[Problem],
                      key: Callable[[Problem], Any] | None = None) -> list[Problem]:
    """Problems without repeats, in file order (or ``key``'s), at most MAX_PROBLEMS (the last one
    counting the rest)."""
    unique = list(dict.fromkeys(problems))
    unique.sort(key=key or (lambda p: (p.line or 0, p.column or 0, p.field)))
    if len(unique) > MAX_PROBLEMS:
        left = len(unique) - MAX_PROBLEMS + 1
        unique = unique[: MAX_PROBLEMS - 1] + [Problem("", f"... and {left} more problems (fix the ones "
                                                           f"above first)")]
    return unique


def format_path(path: Iterable[Any]) -> str:
    """``('git', 'branch')`` -> ``git.branch``; ``('system_dependencies', 2)`` -> ``...[2]``."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", step):
            text += f".{step}" if text else step
        else:
            text += f"[{show(step, 40)}]"
    return text


def kind_of(value: Any) -> str:
    """What a YAML value is, in words, without dumping it (it may be huge)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}" if len(str(value)) < 40 else "a number"
    if isinstance(value, str):
        return f"the text {show(value)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime | date):
        return f"the date {value.isoformat()}"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def _example_value(value: Any) -> str:
    """An example value in YAML flow style, short enough for a hint."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_example_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_example_value(v) for v in value) + "]"
    return str(value)


def _field_info(path: tuple[Any, ...], layout: Layout) -> tuple[str, Any] | None:
    """(field name, example) for a known field path such as ('git', 'remote')."""
    if not path or not isinstance(path[-1], str):
        return None
    section = ".".join(path[:-1])
    model = layout.sections.get(section)
    if model is None or path[-1] not in model.model_fields:
        return None
    info = model.model_fields[path[-1]]
    if info.examples:
        return path[-1], info.examples[0]
    if path[-1] in layout.section_examples:
        return path[-1], layout.section_examples[path[-1]]
    return path[-1], None


def _choices(path: tuple[Any, ...], layout: Layout) -> list[str]:
    """The values a field with a fixed set of them takes (its schema's enum), else []."""
    if not path or not isinstance(path[-1], str):
        return []
    model = layout.sections.get(".".join(path[:-1]))
    info = model.model_fields.get(path[-1]) if model is not None else None
    extra = info.json_schema_extra if info is not None else None
    enum = extra.get("enum") if isinstance(extra, dict) else None
    return [str(choice) for choice in enum] if isinstance(enum, list) else []


def _hint_line(path: tuple[Any, ...], layout: Layout) -> str:
    info = _field_info(path, layout)
    if info is None or info[1] is None:
        return ""
    name, example = info
    under = f" under '{path[0]}:'" if len(path) > 1 else ""
    return f"{name}: {_example_value(example)}{under}"


def _to_problem(error: Mapping[str, Any], loc: tuple[Any, ...], doc: Document,
                layout: Layout) -> Problem:
    is_key = bool(loc) and loc[-1] == "[key]"
    path = tuple(step for step in loc if step != "[key]")
    field = format_path(path)
    kind = error["type"]
    value = error.get("input")
    position = doc.locate(path, key=is_key or kind == "extra_forbidden")

    if kind == "racetrack":  # raised by a check in fields.py: the message is final
        message = error["msg"]
    elif kind == "version_number":  # raised by fields.coerce_version
        entry = doc.entry(path)
        written = entry.raw if entry is not None and entry.raw else error["ctx"]["text"]
        shown = written if len(written) <= 40 else written[:37] + "..."
        message = (f"{shown} is not a semantic version: YAML reads it as {_yaml_type(value)} "
                   f"(use MAJOR.MINOR.PATCH in quotes, e.g. '{version_suggestion(written)}')")
    elif kind == "missing":
        position = doc.start_of(path[:-1])
        hint = _hint_line(path, layout)
        message = f"is missing (add {hint})" if hint else "is missing (add it)"
    elif kind == "extra_forbidden":
        message = _unknown_field_message(path, layout)
    else:
        message = _type_message(kind, path, value, doc, layout)
    return Problem(field, message, position.line, position.column)


def _unknown_field_message(path: tuple[Any, ...], layout: Layout) -> str:
    name = str(path[-1])
    section = ".".join(str(p) for p in path[:-1])
    sections = layout.sections
    model = sections.get(section)
    allowed = list(model.model_fields) if model else []
    near = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if near:
        return f"is not a known field (did you mean {near[0]!r}?)"
    # A field of another section written in the wrong place, e.g. 'branch' at the top level.
    for other, other_model in sections.items():
        if other != section and name in other_model.model_fields:
            where = f"under '{other}:'" if other else "at the top level, not indented"
            return f"is not a known field here (it belongs {where})"
    for other, other_model in sections.items():
        if other and other != section:
            close = difflib.get_close_matches(name, list(other_model.model_fields), n=1, cutoff=0.75)
            if close:
                return f"is not a known field here (did you mean {other}.{close[0]}?)"
    where = f"under '{section}:'" if section else "at the top level"
    # The key is echoed only when plain: an odd one (a newline, a control character) is not.
    plain = re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name)
    keep = (f", or name it '{layout.extension_prefix}{name if plain else '...'}' to keep it as your own"
            if not section and layout.extension_prefix else "")
    return f"is not a known field (remove it{keep}; fields allowed {where}: {', '.join(allowed)})"


def _type_message(kind: str, path: tuple[Any, ...], value: Any, doc: Document, layout: Layout) -> str:
    hint = _hint_line(path, layout)
    in_text_section = len(path) == 2 and path[0] in layout.text_sections
    if value is None:
        if in_text_section:
            key = path[1] if isinstance(path[1], str) and is_identifier(path[1]) else "KEY"
            return f"has no value (write {key}: '' for an empty value)"
        return f"is empty (give a value, e.g. {hint})" if hint else "is empty (give a value)"
    if kind in ("model_type", "dict_type"):
        example = f"e.g. {hint}" if hint else "write 'key: value' entries indented below it"
        return f"must be a mapping, not {kind_of(value)} ({example})"
    if kind == "list_type":
        example = f"e.g. {hint}" if hint else "write one '- item' per line"
        return f"must be a list, not {kind_of(value)} ({example})"
    if kind == "string_type":
        entry = doc.entry(path)
        if isinstance(value, bool | int | float | date) and entry is not None and entry.raw:
            raw = entry.raw if len(entry.raw) <= 40 else entry.raw[:37] + "..."
            read_as = (f"the number {value}" if isinstance(value, float) and str(value) != raw
                       else _yaml_type(value))  # 3.10 is 3.1 to YAML: say so
            choices = _choices(path, layout)
            if choices and raw not in choices:  # quoting alone would not do: say what would
                return (f"YAML reads {raw} as {read_as}, not text, and '{raw}' is not one of the "
                        f"choices (write one of {', '.join(repr(c) for c in choices)} in quotes)")
            source = doc.source_of(path) if hasattr(doc, "source_of") else None
            if source is not None and source.raw is not None:
                # An -e value: the shell takes away quotes written as in the file.
                field_path = ".".join(str(p) for p in path)
                return (f"YAML reads {raw} as {read_as}, not text (quote it inside the shell's "
                        f"quotes: -e \"{field_path}='{raw}'\")")
            return f"YAML reads {raw} as {read_as}, not text (quote it: '{raw}')"
        if in_text_section:
            return f"must be text, not {kind_of(value)} (write the value as one quoted string)"
        if hint:
            return f"must be text, not {kind_of(value)} (e.g. {hint})"
        if path and isinstance(path[-1], int):
            info = _field_info(path[:-1], layout)
            example = info[1][0] if info and isinstance(info[1], list) and info[1] else "value"
            return f"must be text, not {kind_of(value)} (write each item as text, e.g. '- {example}')"
        return f"must be text, not {kind_of(value)} (write it as text in quotes)"
    # Every error type our model can produce is handled above; keep a readable fallback anyway.
    return f"is not valid ({kind.replace('_', ' ')})"


def _yaml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime | date):
        return "a date"
    return "a value"
