"""``-e``/``--extra-vars KEY=VALUE``: command-line values over the manifest (spec section 3).

Exactly one ``=``. A dotted KEY (``git.branch``) walks mappings that exist (a missing parent is an
error); the leaf is replaced whole, or added. VALUE is YAML: ``7`` is a number, ``true`` a boolean,
``{"a": 1}`` a mapping. Overrides apply after ``extends``, in the order given, so they win; a
problem with a value they set names the override (``-e KEY=VALUE: field: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from racetrack_builder.errors import Problem, UsageError
from racetrack_builder.yaml_lines import YamlSyntaxError, load_yaml

from .problems import format_path, kind_of, syntax_problem
from .sources import Layers, Source, sourced

OPTION = "-e"
_KEY_PART = re.compile(r"[^.\s=]+")


@dataclass(frozen=True)
class Override:
    """One ``-e KEY=VALUE`` as given."""

    text: str
    key: tuple[str, ...]
    value: str

    @property
    def name(self) -> str:
        """How problems name it: ``-e git.branch=dev``."""
        return f"{OPTION} {self.text}"


def parse_override(text: str) -> Override:
    """``KEY.PATH=VALUE`` as an :class:`Override`; UsageError naming it when it is not one."""
    if text.count("=") != 1:
        detail = ("has no '='" if "=" not in text
                  else "has more than one '=' (Racetrack 2.x takes exactly one)")
        raise UsageError(f"{OPTION} {text!r} {detail}",
                         hint="write KEY=VALUE, e.g. -e git.branch=dev; a value holding '=' goes in the "
                              "manifest or an overlay")
    key, _, value = text.partition("=")
    parts = tuple(key.split("."))
    if not all(_KEY_PART.fullmatch(part) for part in parts):
        raise UsageError(f"{OPTION} {text!r}: {key!r} is not a field path",
                         hint="name the field with dots between keys, e.g. "
                              "-e jobtype_extra.max_concurrency=4")
    return Override(text=text, key=parts, value=value)


def parse_overrides(texts: Iterable[str]) -> tuple[Override, ...]:
    return tuple(parse_override(text) for text in texts)


def apply_overrides(layers: Layers, overrides: Iterable[Override]) -> list[Problem]:
    """Set each override's value in ``layers``; the problems of those that cannot be applied."""
    problems: list[Problem] = []
    for override in overrides:
        problem = _apply(layers, override)
        if problem is not None:
            problems.append(problem)
    return problems


def _apply(layers: Layers, override: Override) -> Problem | None:
    try:
        doc = load_yaml(override.value)
    except YamlSyntaxError as err:
        found = syntax_problem(err, override.value)
        return _problem(layers, override, format_path(override.key), found.message)
    source = Source(override.name, doc, prefix=override.key, located=False, raw=override.value)
    node = layers.data
    for depth, step in enumerate(override.key[:-1]):
        at = override.key[: depth + 1]
        if not isinstance(node, dict) or step not in node:
            return _problem(layers, override, format_path(at), (
                f"is not in the manifest, so {OPTION} cannot set a key inside it (add {step}: to the "
                f"manifest, or set it whole: {OPTION} {'.'.join(at)}='{{...}}')"))
        node = node[step]
        if not isinstance(node, dict):
            return _problem(layers, override, format_path(at), (
                f"is {kind_of(node)}, not a mapping, so {OPTION} cannot set a key inside it "
                f"(set it whole: {OPTION} {'.'.join(at)}=VALUE)"))
    if not isinstance(node, dict):
        return _problem(layers, override, "", f"the manifest is {kind_of(node)}, not a mapping of fields")
    layers.set(source, override.key, doc.data)  # its YAML problems (odd tags...) come with the layers'
    return None


def _problem(layers: Layers, override: Override, field: str, message: str) -> Problem:
    source = Source(override.name, layers.main.doc, located=False)
    return sourced(Problem(field, message), source, layers.main)
