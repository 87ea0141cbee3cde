"""Where each value of a manifest came from: the base file, the overlay, or an ``-e`` override.

A manifest may be assembled from several layers (:mod:`.overlays`, :mod:`.overrides`): the base
manifest's values, the overlay's over them, then the command line's. :class:`Layers` holds the
merged data and, for every key and item, the :class:`Source` that gave it, so that a problem is
reported against the file (and line) or the override it came from.

:class:`Layers` answers ``entry``, ``locate`` and ``start_of`` as a
:class:`~racetrack_builder.yaml_lines.LoadedDocument` does, each from the source of the path, so
:mod:`.problems` words and locates problems of merged data as it does for one file.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from racetrack_builder.errors import Problem
from racetrack_builder.yaml_lines import Entry, LoadedDocument, PathKey, Position, YamlProblem

Path = tuple[PathKey, ...]


@dataclass(frozen=True, eq=False)
class Source:
    """One layer: a manifest file, or one ``-e KEY=VALUE`` (its VALUE parsed as YAML)."""

    name: str  # how problems name it: the file's path, or "-e KEY=VALUE"
    doc: LoadedDocument
    prefix: Path = ()  # where the document's root sits in the merged data (an override's KEY)
    located: bool = True  # whether its problems carry line and column (a file's do)
    raw: str | None = None  # an override's VALUE as written

    def entry(self, path: Path) -> Entry | None:
        rel = path[len(self.prefix):]
        if rel:
            return self.doc.entry(rel)
        if self.raw is not None and not isinstance(self.doc.data, dict | list):
            # The override's value itself: its text, so "1.0" is shown as written.
            return Entry(key=None, value=self.doc.root, raw=self.raw.strip(), tag="")
        return None


@dataclass(frozen=True)
class SourcedProblem(Problem):
    """A problem in a layer other than the manifest named on the command line."""

    source: str = ""

    def format(self, filename: str) -> str:
        return super().format(self.source or filename)

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "source": self.source}


@dataclass
class Layers:
    """Merged manifest data and the source of each of its keys and items."""

    main: Source  # the manifest named on the command line
    data: Any = None
    sources: list[Source] = field(default_factory=list)
    _origins: dict[Path, Source] = field(default_factory=dict, repr=False)
    _copied: bool = field(default=False, repr=False)

    @classmethod
    def of(cls, source: Source) -> Layers:
        """One file's data (copied when changed: the document's own data stays as read)."""
        return cls(main=source, data=source.doc.data, sources=[source])

    # --- building ---------------------------------------------------------------------------------
    # Only the paths where a layer put a value are recorded (a value's descendants come from the
    # same source): walking every node could take forever for YAML aliases nested in aliases.

    def _forget(self, path: Path) -> None:
        for known in [p for p in self._origins if p[: len(path)] == path]:
            del self._origins[known]

    def set(self, source: Source, path: Path, value: Any) -> None:
        """Replace the value at ``path`` (whose parent must be a mapping) with ``value``, wholly."""
        value = copy.deepcopy(value)  # the memo keeps aliased values shared: no blow-up
        if not path:
            self.data = value
        else:
            if not self._copied:
                self.data, self._copied = copy.deepcopy(self.data), True
            parent = self.data
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = value
        self._forget(path)
        self._origins[path] = source
        if source not in self.sources:
            self.sources.append(source)

    def overlay(self, source: Source, value: Any, path: Path = ()) -> None:
        """Merge ``value`` over the data at ``path``: mappings merge key by key, recursively;
        anything else (lists and null too) replaces what was there."""
        current = self.value_at(path)
        if isinstance(current, dict) and isinstance(value, dict):
            if source not in self.sources:
                self.sources.append(source)
            for key, item in value.items():
                if key in current:
                    self.overlay(source, item, path + (key,))
                else:
                    self.set(source, path + (key,), item)
        else:
            self.set(source, path, value)

    def value_at(self, path: Path) -> Any:
        node = self.data
        for step in path:
            node = node[step]
        return node

    # --- reading: where a path came from ----------------------------------------------------------

    def source_of(self, path: Sequence[PathKey]) -> Source:
        """The source of the value at ``path``, else of its nearest recorded ancestor."""
        path = tuple(path)
        for end in range(len(path), -1, -1):
            found = self._origins.get(path[:end])
            if found is not None:
                return found
        return self.main

    def entry(self, path: Sequence[PathKey]) -> Entry | None:
        path = tuple(path)
        return self.source_of(path).entry(path)

    def locate(self, path: Sequence[PathKey], *, key: bool = False) -> Position:
        path = tuple(path)
        source = self.source_of(path)
        return source.doc.locate(path[len(source.prefix):], key=key)

    def start_of(self, path: Sequence[PathKey]) -> Position:
        path = tuple(path)
        source = self.source_of(path)
        if path[: len(source.prefix)] != source.prefix:
            return source.doc.root
        return source.doc.start_of(path[len(source.prefix):])

    @property
    def root(self) -> Position:
        return self.main.doc.root

    @property
    def problems(self) -> list[YamlProblem]:
        """Every source's YAML problems, with paths in the merged data."""
        return [YamlProblem(s.prefix + p.path, p.message, p.position, p.kind)
                for s in self.sources for p in s.doc.problems]

    # --- problems, named after their source -------------------------------------------------------

    def attribute(self, problem: Problem, path: Sequence[PathKey]) -> Problem:
        """``problem`` (about ``path``) as a :class:`SourcedProblem` unless it is the main file's."""
        return sourced(problem, self.source_of(path), self.main)

    def sort_key(self, problem: Problem) -> tuple[int, int, int, str]:
        """Layers in the order they apply, then file order."""
        name = problem.source if isinstance(problem, SourcedProblem) else self.main.name
        order = [s.name for s in self.sources]
        index = order.index(name) if name in order else len(order)
        return index, problem.line or 0, problem.column or 0, problem.field


def sourced(problem: Problem, source: Source, main: Source) -> Problem:
    """``problem`` named after ``source`` (unlocated for an override), or as is for the main file."""
    if source is main or source.name == main.name:
        return problem
    line, column = (problem.line, problem.column) if source.located else (None, None)
    return SourcedProblem(problem.field, problem.message, line, column, source=source.name)


def sorted_problems(problems: Iterable[Problem], layers: Layers) -> list[Problem]:
    return sorted(dict.fromkeys(problems), key=layers.sort_key)
