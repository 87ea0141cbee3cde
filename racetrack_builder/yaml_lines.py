"""YAML loading that remembers where every key and value came from.

PyYAML's ``safe_load`` returns plain data and forgets positions, silently keeps the last of two
equal keys and raises a handful of exception types (some of them not ``YAMLError`` at all, such as
``ValueError`` for the date ``2020-13-45``). This module composes the document into nodes, builds
the plain data itself and records, for every mapping entry and list item, the 1-based line and
column of the key and of the value, plus the source text of scalar values (so ``1.10`` can later be
read as the string ``"1.10"`` rather than the float ``1.1``).

It knows nothing about manifests: problems it can recover from (a duplicate key, a key that is not
plain text, an unsupported tag, a recursive alias) are collected in :attr:`LoadedDocument.problems`
with the path where they occur; anything that stops parsing raises :class:`YamlSyntaxError`.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

try:  # libyaml is several times faster; the pure-Python loader behaves the same way.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment, unused-ignore]

PathKey = str | int
Path = tuple[PathKey, ...]

# Deeper nesting than this is never a manifest; stopping here keeps the walk far from Python's
# recursion limit (libyaml itself allows 1000 levels).
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_MAP_TAGS = {_TAG + "map"}
_SEQ_TAGS = {_TAG + "seq"}
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp", "binary")}
_MERGE_TAG = _TAG + "merge"


@dataclass(frozen=True)
class Position:
    """A place in the text: 1-based line and column."""

    line: int
    column: int


@dataclass(frozen=True)
class Entry:
    """Where one mapping entry or list item sits in the text."""

    key: Position | None  # the key of a mapping entry; None for a list item
    value: Position
    raw: str | None  # source text of a scalar value (without quotes); None for collections
    tag: str  # the YAML tag the value resolved to, e.g. "tag:yaml.org,2002:float"


@dataclass(frozen=True)
class YamlProblem:
    """Something wrong in the YAML itself that did not stop parsing.

    ``kind`` is one of "duplicate", "key", "tag", "merge", "scalar" (the value is still there, as
    text where it could not be typed) or "alias", "depth" (the value was dropped: None).
    """

    path: Path
    message: str
    position: Position
    kind: str


class YamlSyntaxError(Exception):
    """The text is not YAML we can read; ``position`` says where, when known.

    ``problem`` is the YAML parser's own wording of what is wrong; ``context`` and
    ``context_position`` (when the parser gives them) say what it was reading and where that
    started, e.g. "while scanning a quoted scalar" at the opening quote.
    """

    def __init__(self, message: str, position: Position | None, *, problem: str = "",
                 context: str = "", context_position: Position | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.problem = problem or message
        self.context = context
        self.context_position = context_position


@dataclass
class LoadedDocument:
    """The plain data of a YAML document and the positions of everything in it.

    ``data`` is None for an empty document (no content or only comments). Containers are plain
    ``dict`` (keys are always the source text of the key, so ``1: x`` has the key ``"1"``) and
    ``list``; scalars are what YAML 1.1 makes of them (str, int, float, bool, None, date, bytes).
    """

    data: Any
    root: Position
    problems: list[YamlProblem] = field(default_factory=list)
    # id(container) -> {key or index: Entry}; _keep holds the containers so ids stay unique.
    _entries: dict[int, dict[PathKey, Entry]] = field(default_factory=dict, repr=False)
    _starts: dict[int, Position] = field(default_factory=dict, repr=False)
    _keep: list[Any] = field(default_factory=list, repr=False)

    def entry(self, path: Sequence[PathKey]) -> Entry | None:
        """The entry at ``path`` (keys and list indexes from the root), or None if absent."""
        node: Any = self.data
        found: Entry | None = None
        for step in path:
            entries = self._entries.get(id(node)) if isinstance(node, dict | list) else None
            if entries is None or step not in entries:
                return None
            found = entries[step]
            node = node[step]
        return found

    def locate(self, path: Sequence[PathKey], *, key: bool = False) -> Position:
        """Best position for ``path``: its key (``key=True``) or value, else its nearest ancestor.

        Paths that do not exist in the text (a missing field, an entry reached only through an
        alias) fall back to the closest enclosing entry, and finally to the document itself.
        """
        for end in range(len(path), 0, -1):
            found = self.entry(path[:end])
            if found is not None:
                if key and end == len(path) and found.key is not None:
                    return found.key
                return found.value
        return self.root

    def start_of(self, path: Sequence[PathKey]) -> Position:
        """Where the container at ``path`` starts (for "missing key" problems), else locate()."""
        node: Any = self.data
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return self.locate(path)
        if isinstance(node, dict | list) and id(node) in self._starts:
            return self._starts[id(node)]
        return self.locate(path)


def _short_tag(tag: str) -> str:
    """A tag as the user wrote it: ``tag:yaml.org,2002:set`` is ``!!set``."""
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def _pos(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def _position_in_text(text: str, index: int) -> Position:
    """Line/column of a UTF-8 byte offset (libyaml reports reader errors as byte offsets)."""
    encoded = text.encode("utf-8", "surrogatepass")
    index = max(0, min(index, len(encoded)))
    before = encoded[:index]
    line_start = before.rfind(b"\n") + 1
    column = len(before[line_start:].decode("utf-8", "replace")) + 1
    return Position(before.count(b"\n") + 1, column)


def _error_text(err: yaml.YAMLError | binascii.Error) -> str:
    """The YAML problem without PyYAML's "in <unicode string>, line N" trailers."""
    if isinstance(err, yaml.MarkedYAMLError):
        parts = [err.context, err.problem] if err.context else [err.problem]
        return ": ".join(p for p in parts if p) or "invalid YAML"
    if isinstance(err, yaml.reader.ReaderError):
        return f"unacceptable character #x{err.character:04x}: {err.reason}" if isinstance(
            err.character, int) else str(err.reason)
    return str(err).splitlines()[0] if str(err) else "invalid YAML"


class _Builder:
    """Turns composed nodes into plain data, recording positions and recoverable problems."""

    def __init__(self, loader: Any, doc: LoadedDocument) -> None:
        self.loader = loader
        self.doc = doc
        self.built: dict[int, Any] = {}  # id(node) -> data, so aliases share (no billion laughs)
        self.active: set[int] = set()  # nodes being built: meeting one again is a cycle

    def problem(self, kind: str, path: Path, message: str, position: Position) -> None:
        self.doc.problems.append(YamlProblem(path, message, position, kind))

    def build(self, node: yaml.Node, path: Path) -> Any:
        key = id(node)
        if key in self.active:
            self.problem("alias", path, "refers to itself through an alias (remove the recursive alias)",
                         _pos(node.start_mark))
            return None
        if key in self.built:
            return self.built[key]
        if len(path) > MAX_DEPTH:
            self.problem("depth", path, f"is nested more than {MAX_DEPTH} levels deep (flatten it)",
                         _pos(node.start_mark))
            return None
        self.active.add(key)
        try:
            if isinstance(node, yaml.MappingNode):
                value: Any = self.mapping(node, path)
            elif isinstance(node, yaml.SequenceNode):
                value = self.sequence(node, path)
            else:  # a ScalarNode: the only other kind of node
                value = self.scalar(cast(yaml.ScalarNode, node), path)
        finally:
            self.active.discard(key)
        self.built[key] = value
        return value

    def _container(self, node: yaml.Node, container: Any, path: Path, kind: str, tags: set[str]) -> None:
        self.doc._keep.append(container)
        self.doc._starts[id(container)] = _pos(node.start_mark)
        self.doc._entries[id(container)] = {}
        if node.tag not in tags:
            tag = _short_tag(node.tag)
            self.problem("tag", path, f"uses the unsupported YAML tag {tag!r} (remove the tag; a plain "
                                      f"{kind} is expected)", _pos(node.start_mark))

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        self._container(node, result, path, "mapping", _MAP_TAGS)
        entries = self.doc._entries[id(result)]
        merged: list[tuple[dict[str, Any], dict[PathKey, Entry]]] = []
        seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            key_pos = _pos(key_node.start_mark)
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE_TAG:
                merged.extend(self.merge_sources(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem("key", path, "has a key that is a list or mapping (keys must be plain text)",
                             key_pos)
                continue
            name = key_node.value
            if name in seen:
                first = seen[name]
                self.problem("duplicate", path + (name,),
                             f"is given twice (first on line {first.line}; keep one)", key_pos)
            seen[name] = key_pos
            result[name] = self.build(value_node, path + (name,))
            entries[name] = self._entry(key_pos, value_node)
        # YAML merge keys ("<<: *defaults"): explicit keys win, earlier merge sources win over later.
        for source, source_entries in merged:
            for name, value in source.items():
                if name not in result:
                    result[name] = value
                    if name in source_entries:
                        entries[name] = source_entries[name]
        return result

    def merge_sources(self, node: yaml.Node, path: Path) -> list[tuple[dict[str, Any], dict[PathKey, Entry]]]:
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
        sources = []
        for item in nodes:
            if not isinstance(item, yaml.MappingNode):
                self.problem("merge", path, "has a merge key '<<' that does not refer to a mapping "
                                            "(merge only mappings)", _pos(item.start_mark))
                continue
            data = self.build(item, path)
            if isinstance(data, dict):
                sources.append((data, self.doc._entries.get(id(data), {})))
        return sources

    def sequence(self, node: yaml.SequenceNode, path: Path) -> list[Any]:
        result: list[Any] = []
        self._container(node, result, path, "list", _SEQ_TAGS)
        entries = self.doc._entries[id(result)]
        for index, item in enumerate(node.value):
            result.append(self.build(item, path + (index,)))
            entries[index] = self._entry(None, item)
        return result

    def scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        if node.tag not in _SCALAR_TAGS:
            tag = _short_tag(node.tag)
            self.problem("tag", path, f"uses the unsupported YAML tag {tag!r} (remove the tag)",
                         _pos(node.start_mark))
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, binascii.Error) as err:
            self.problem("scalar", path, f"cannot be read: {_error_text(err)} (fix or quote the value)",
                         _pos(node.start_mark))
            return node.value
        except Exception:  # PyYAML's scalar constructors fail in many ways
            # An implicit date such as 2020-13-45 (ValueError), an integer too long to convert, or
            # an explicit tag on text that is not of that type (!!bool maybe: KeyError,
            # !!timestamp x: AttributeError). The user wrote text; keep the text as written.
            return node.value

    @staticmethod
    def _entry(key: Position | None, value_node: yaml.Node) -> Entry:
        raw = value_node.value if isinstance(value_node, yaml.ScalarNode) else None
        return Entry(key=key, value=_pos(value_node.start_mark), raw=raw, tag=value_node.tag)


def load_yaml(text: str) -> LoadedDocument:
    """Parse one YAML document from ``text``, keeping positions; raise YamlSyntaxError if unreadable.

    Several documents in one stream are an error (a manifest is one document).
    """
    loader = None
    try:
        try:
            loader = _Loader(text)
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            raise YamlSyntaxError(
                _error_text(err), _pos(mark) if mark else None, problem=err.problem or "",
                context=err.context or "",
                context_position=_pos(err.context_mark) if err.context_mark else None,
            ) from err
        except yaml.reader.ReaderError as err:
            raise YamlSyntaxError(_error_text(err), _position_in_text(text, err.position)) from err
        except yaml.YAMLError as err:
            raise YamlSyntaxError(_error_text(err), None) from err
        except UnicodeError as err:
            # libyaml re-encodes str input as UTF-8; lone surrogates cannot be encoded.
            start = getattr(err, "start", 0)
            offset = len(text[:start].encode("utf-8", "surrogatepass"))
            raise YamlSyntaxError("the text contains a character that is not valid Unicode "
                                  "(save the file as UTF-8)", _position_in_text(text, offset)) from err
        if node is None:
            return LoadedDocument(data=None, root=Position(1, 1))
        doc = LoadedDocument(data=None, root=_pos(node.start_mark))
        doc.data = _Builder(loader, doc).build(node, ())
        return doc
    finally:
        if loader is not None:
            loader.dispose()
