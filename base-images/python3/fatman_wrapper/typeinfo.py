"""What an annotation means to the wrapper, worked out once per parameter and result at startup.

``classify`` turns an annotation (``List[int]``, ``Optional[Config]``, ``datetime``...) into a
``TypeInfo``: its ``Kind``, the item types of a collection, the choices of a ``Literal`` or an
``Enum``, whether it takes null, the class it names. Three things are derived from that one
description, so that what the wrapper enforces and what it documents cannot disagree:

* the argument check of every request (``converters.compile_converter``);
* the JSON schema of the OpenAPI document (``openapi.json_schema``);
* with ``VALUE_TYPES``, the JSON form of dates, decimals, UUIDs and paths, read from requests and
  written into results alike (``encoding.py``).
"""

from __future__ import annotations

import ast
import collections.abc as cabc
import dataclasses
import datetime as dt
import decimal
import enum
import inspect
import pathlib
import re
import sys
import typing
import uuid
from collections.abc import Mapping
from typing import Any, Callable

if sys.version_info >= (3, 10):
    from types import UnionType

    UNION_ORIGINS: tuple[Any, ...] = (typing.Union, UnionType)
else:  # pragma: no cover - Python 3.9 has no ``X | Y`` types
    UNION_ORIGINS = (typing.Union,)


class Kind(enum.Enum):
    """How a value of an annotation travels in JSON; the JSON type's name where there is one."""

    ANY = "any"  # anything, taken as sent: no annotation, Any, classes the wrapper cannot check
    NULL = "null"
    UNION = "union"  # one of ``items``; ``nullable`` when None is among them
    LITERAL = "literal"  # one of ``choices``
    ENUM = "enum"  # a member of ``cls``, sent as its value (one of ``choices``)
    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    STRING = "string"
    ARRAY = "array"  # any length, each item an ``items[0]`` (if given), built into ``cls``
    TUPLE = "tuple"  # fixed length, position i an ``items[i]``
    OBJECT = "object"  # string keys, each value an ``items[0]`` (if given)
    VALUE = "value"  # a ``VALUE_TYPES`` row (``value_type``): a date, decimal, UUID or path
    DATACLASS = "dataclass"  # the ``fields`` of ``cls``; ``required`` ones must be given
    MODEL = "model"  # a pydantic model ``cls``, found by duck typing (model_validate / parse_obj)


@dataclasses.dataclass(frozen=True)
class ValueType:
    """A Python type that JSON carries as a string or a number.

    One row per type, read by the argument check (from ``iso`` strings, or by calling ``cls`` on a
    string or number), the JSON schema (``schema``) and the result encoder (``encode``).
    """

    cls: type
    schema: Mapping[str, Any]
    iso: bool  # read with ``cls.fromisoformat``; otherwise ``cls(text)``
    encode: Callable[[Any], Any]
    subclasses: bool = False  # an annotation naming a subclass is this type too (Path for PurePath)


def _isoformat(value: Any) -> str:
    return value.isoformat()


VALUE_TYPES: tuple[ValueType, ...] = (
    ValueType(dt.datetime, {"type": "string", "format": "date-time"}, iso=True, encode=_isoformat),
    ValueType(dt.date, {"type": "string", "format": "date"}, iso=True, encode=_isoformat),
    ValueType(dt.time, {"type": "string", "format": "time"}, iso=True, encode=_isoformat),
    # A number is what clients expect of a decimal; str() would change its JSON type.
    ValueType(decimal.Decimal, {"type": "number"}, iso=False, encode=float),
    ValueType(uuid.UUID, {"type": "string", "format": "uuid"}, iso=False, encode=str),
    ValueType(pathlib.PurePath, {"type": "string"}, iso=False, encode=str, subclasses=True),
)


@dataclasses.dataclass(frozen=True)
class TypeInfo:
    """An annotation classified: everything the checks, the schema and the encoder need of it."""

    kind: Kind
    annotation: Any  # as written (``Annotated[...]`` unwrapped), for messages
    items: tuple[TypeInfo, ...] = ()  # see Kind: union options, array/object items, tuple positions
    nullable: bool = False
    choices: tuple[Any, ...] = ()
    cls: Any = None  # the class of ENUM, VALUE, DATACLASS and MODEL; what an ARRAY is built into
    value_type: ValueType | None = None
    fields: tuple[tuple[str, TypeInfo], ...] = ()  # a dataclass's __init__ fields
    required: tuple[str, ...] = ()  # the fields without a default


def type_name(tp: Any) -> str:
    """A readable name of an annotation: ``float``, ``List[int]``, ``Optional[str]``, ``Any``."""
    if tp is inspect.Parameter.empty or tp is Any:
        return "Any"
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and typing.get_origin(tp) is None and not typing.get_args(tp):
        return tp.__name__
    text = repr(tp)
    return re.sub(r"\b(typing|typing_extensions|collections\.abc|builtins)\.", "", text)


def resolved_hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations; one that cannot be resolved counts as ``Any``, the others keep theirs.

    ``typing.get_type_hints`` gives up on the whole object when one annotation fails: a name that
    does not exist at run time, or ``int | None`` under ``from __future__ import annotations`` on
    Python 3.9, which has no ``|`` for types. Then each annotation is resolved on its own, ``X | Y``
    read as ``Union[X, Y]``, so one odd annotation does not switch off every other check.
    """
    try:
        return typing.get_type_hints(obj)
    except Exception:  # noqa: BLE001 - user code may name types that do not exist at run time
        pass
    raw = getattr(obj, "__annotations__", {}) or {}
    namespace = _namespace(obj)
    return {name: _resolve(value, namespace) for name, value in raw.items()}


def _namespace(obj: Any) -> dict[str, Any]:
    """The globals an object's string annotations were written in."""
    target = getattr(obj, "__func__", obj)
    found = getattr(target, "__globals__", None)
    if found is None:
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        found = vars(module) if module is not None else {}
    return dict(found)


class _UnionsFromBars(ast.NodeTransformer):
    """``A | B`` -> ``Union[A, B]``, for Pythons before 3.10."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.BitOr):
            return node
        typing_module = ast.Name(id="__fatman_typing__", ctx=ast.Load())
        union = ast.Attribute(value=typing_module, attr="Union", ctx=ast.Load())
        return ast.Subscript(value=union, slice=ast.Tuple(elts=[node.left, node.right], ctx=ast.Load()),
                             ctx=ast.Load())


def _resolve(value: Any, namespace: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        return value
    try:
        tree = ast.fix_missing_locations(_UnionsFromBars().visit(ast.parse(value, mode="eval")))
        code = compile(tree, "<annotation>", "eval")
        # The job's own annotation text, evaluated as typing.get_type_hints would.
        return eval(code, {**namespace, "__fatman_typing__": typing})  # noqa: S307
    except Exception:  # noqa: BLE001 - a name that does not exist at run time, and the like
        return Any


_SCALARS = {bool: Kind.BOOLEAN, int: Kind.INTEGER, float: Kind.NUMBER, str: Kind.STRING}
# collections.abc classes (what typing.Sequence[...] and friends stand for) -> the class an array
# of them is built into.
_ABC_ARRAYS: dict[Any, type] = {
    cabc.Sequence: list,
    cabc.MutableSequence: list,
    cabc.Iterable: list,
    cabc.Collection: list,
    cabc.Set: set,
    cabc.MutableSet: set,
}
_ARRAYS: dict[Any, type] = {list: list, set: set, frozenset: frozenset}
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


def classify(tp: Any) -> TypeInfo:
    """The ``TypeInfo`` of annotation ``tp``; never raises for what a user may write.

    Unknown annotations (arbitrary classes, type variables, unresolved string annotations) are
    ``Kind.ANY``. A dataclass that refers to itself (a tree of nodes) is described down to the first
    repetition, which is ``Kind.ANY``.
    """
    return _classify(tp, ())


def _classify(tp: Any, enclosing: tuple[type, ...]) -> TypeInfo:
    if tp is inspect.Parameter.empty or tp is Any or tp is object or isinstance(tp, (str, typing.TypeVar)):
        return TypeInfo(Kind.ANY, tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _classify(args[0], enclosing)
    if tp is None or tp is type(None):
        return TypeInfo(Kind.NULL, tp)
    if origin in UNION_ORIGINS:
        options = tuple(_classify(a, enclosing) for a in args if a is not type(None))
        return TypeInfo(Kind.UNION, tp, items=options, nullable=len(options) != len(args))
    if origin is typing.Literal:
        return TypeInfo(Kind.LITERAL, tp, choices=args)
    for scalar, kind in _SCALARS.items():
        if tp is scalar:
            return TypeInfo(kind, tp)
    base = origin if origin is not None else tp
    if args == ((),):  # Tuple[()] before Python 3.11; 3.11+ gives no args, as for a bare tuple
        args = ()
    build = _ARRAYS.get(base) if isinstance(base, type) else None
    if build is None and base is not tuple:
        build = next((cls for abc, cls in _ABC_ARRAYS.items() if base is abc), None)
    if build is None and base is tuple and (not args or (len(args) == 2 and args[1] is Ellipsis)):
        build = tuple
    if build is not None:
        items = (_classify(args[0], enclosing),) if args else ()
        return TypeInfo(Kind.ARRAY, tp, items=items, cls=build)
    if base is tuple:
        return TypeInfo(Kind.TUPLE, tp, items=tuple(_classify(a, enclosing) for a in args))
    if any(base is m for m in _MAPPINGS):
        values = (_classify(args[1], enclosing),) if len(args) == 2 else ()
        return TypeInfo(Kind.OBJECT, tp, items=values)
    if isinstance(base, type):
        return _classify_class(tp, base, enclosing)
    return TypeInfo(Kind.ANY, tp)


def _classify_class(tp: Any, cls: type, enclosing: tuple[type, ...]) -> TypeInfo:
    if issubclass(cls, enum.Enum):
        return TypeInfo(Kind.ENUM, tp, cls=cls, choices=tuple(m.value for m in cls))
    for row in VALUE_TYPES:
        if cls is row.cls or (row.subclasses and issubclass(cls, row.cls)):
            return TypeInfo(Kind.VALUE, tp, cls=cls, value_type=row)
    if dataclasses.is_dataclass(cls):
        if cls in enclosing:
            return TypeInfo(Kind.ANY, tp)
        hints = resolved_hints(cls)
        init_fields = [f for f in dataclasses.fields(cls) if f.init]
        inner = (*enclosing, cls)
        return TypeInfo(
            Kind.DATACLASS,
            tp,
            cls=cls,
            fields=tuple((f.name, _classify(hints.get(f.name, Any), inner)) for f in init_fields),
            required=tuple(
                f.name
                for f in init_fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ),
        )
    # pydantic models, found by duck typing so the wrapper never imports pydantic itself.
    if callable(getattr(cls, "model_validate", None) or getattr(cls, "parse_obj", None)):
        return TypeInfo(Kind.MODEL, tp, cls=cls)
    return TypeInfo(Kind.ANY, tp)
