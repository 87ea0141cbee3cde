"""What an endpoint method accepts, computed once at startup and used on every request.

``describe_method`` reads a bound method's signature, type hints and docstring into an
``EndpointSignature``. Its ``bind`` turns a decoded JSON object into keyword arguments, checking
every argument against its annotation with converters compiled ahead of time (the hot path does no
introspection). The same signature feeds ``/parameters`` and the OpenAPI document.
"""

from __future__ import annotations

import copy
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

from .errors import ApiError, JobLoadError

if sys.version_info >= (3, 10):
    from types import UnionType

    _UNION_ORIGINS: tuple[Any, ...] = (typing.Union, UnionType)
else:  # pragma: no cover - Python 3.9 has no ``X | Y`` types
    _UNION_ORIGINS = (typing.Union,)

Converter = Callable[[Any, str], Any]


class _Invalid(Exception):
    """One argument (or a part of it, ``field`` being a path like ``items[2].x``) is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type, as a client wrote it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


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


def _expected(tp: Any) -> str:
    return f"expected {type_name(tp)}"


def _fail(field: str, tp: Any, value: Any) -> _Invalid:
    return _Invalid(field, f"{_expected(tp)}, got {json_kind(value)}")


def _item_path(field: str, key: Any) -> str:
    return f"{field}[{key}]" if isinstance(key, int) else f"{field}.{key}"


def compile_converter(tp: Any) -> Converter:
    """A function checking one decoded JSON value against annotation ``tp``.

    It returns the value converted to what the annotation promises (an int for ``float`` becomes a
    float, a list for ``Tuple``/``Set`` becomes a tuple/set, an ISO string for ``datetime`` a
    datetime, a dict for a dataclass or a pydantic model that object) or raises ``_Invalid``.
    Annotations it cannot check (arbitrary classes, type variables) accept the value unchanged.
    """
    if tp is inspect.Parameter.empty or tp is Any or tp is object or isinstance(tp, (str, typing.TypeVar)):
        return _identity
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return compile_converter(args[0])
    if tp is None or tp is type(None):
        return _none_converter
    if origin in _UNION_ORIGINS:
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own message says what is wrong inside a value
            return _optional_converter(tp, compile_converter(options[0]))
        return _union_converter(tp, [compile_converter(a) for a in args])
    if origin is typing.Literal:
        return _literal_converter(tp, args)
    if tp is bool:
        return _bool_converter
    if tp is int:
        return _int_converter
    if tp is float:
        return _float_converter
    if tp is str:
        return _str_converter
    base = origin if origin is not None else tp
    if base is list or _is_abc(base, ("Sequence", "MutableSequence", "Iterable", "Collection")):
        return _list_converter(tp, compile_converter(args[0]) if args else _identity, list)
    if base in (set, frozenset):
        return _list_converter(tp, compile_converter(args[0]) if args else _identity, base)
    if _is_abc(base, ("Set", "MutableSet")):
        return _list_converter(tp, compile_converter(args[0]) if args else _identity, set)
    if base is tuple:
        return _tuple_converter(tp, args)
    if base is dict or _is_abc(base, ("Mapping", "MutableMapping")):
        return _dict_converter(tp, compile_converter(args[1]) if len(args) == 2 else _identity)
    if isinstance(base, type):
        return _class_converter(base)
    return _identity


def _is_abc(base: Any, names: tuple[str, ...]) -> bool:
    import collections.abc as cabc

    return any(base is getattr(cabc, n) for n in names)


def _identity(value: Any, field: str) -> Any:
    return value


def _none_converter(value: Any, field: str) -> Any:
    if value is None:
        return None
    raise _Invalid(field, f"expected null, got {json_kind(value)}")


def _bool_converter(value: Any, field: str) -> Any:
    if value is True or value is False:
        return value
    raise _fail(field, bool, value)


def _int_converter(value: Any, field: str) -> Any:
    cls = type(value)
    if cls is int:
        return value
    # JavaScript clients send 2.0 for 2; accept integral floats, refuse 2.5 and true.
    if cls is float and value.is_integer():
        return int(value)
    raise _fail(field, int, value)


def _float_converter(value: Any, field: str) -> Any:
    cls = type(value)
    if cls is float:
        return value
    if cls is int:
        return float(value)
    raise _fail(field, float, value)


def _str_converter(value: Any, field: str) -> Any:
    if type(value) is str:
        return value
    raise _fail(field, str, value)


def _optional_converter(tp: Any, inner: Converter) -> Converter:
    def convert(value: Any, field: str) -> Any:
        if value is None:
            return None
        try:
            return inner(value, field)
        except _Invalid as exc:
            if exc.field == field:  # the value itself is wrong: name the whole Optional type
                raise _fail(field, tp, value) from None
            raise

    return convert


def _union_converter(tp: Any, converters: list[Converter]) -> Converter:
    def convert(value: Any, field: str) -> Any:
        for conv in converters:
            try:
                return conv(value, field)
            except _Invalid:
                continue
        raise _fail(field, tp, value)

    return convert


def _literal_converter(tp: Any, choices: tuple[Any, ...]) -> Converter:
    def convert(value: Any, field: str) -> Any:
        for choice in choices:
            if value == choice and type(value) is type(choice):
                return choice
        allowed = ", ".join(repr(c) for c in choices)
        raise _Invalid(field, f"expected one of {allowed}, got {value!r}")

    return convert


def _list_converter(tp: Any, item: Converter, build: Callable[[Any], Any]) -> Converter:
    def convert(value: Any, field: str) -> Any:
        if type(value) is not list:
            raise _fail(field, tp, value)
        if item is _identity:
            return build(value)
        return build([item(v, f"{field}[{i}]") for i, v in enumerate(value)])

    return convert


def _tuple_converter(tp: Any, args: tuple[Any, ...]) -> Converter:
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        return _list_converter(tp, compile_converter(args[0]) if args else _identity, tuple)
    items = [compile_converter(a) for a in args]

    def convert(value: Any, field: str) -> Any:
        if type(value) is not list:
            raise _fail(field, tp, value)
        if len(value) != len(items):
            raise _Invalid(field, f"{_expected(tp)}, got an array of {len(value)} items")
        return tuple(conv(v, f"{field}[{i}]") for i, (conv, v) in enumerate(zip(items, value)))

    return convert


def _dict_converter(tp: Any, value_conv: Converter) -> Converter:
    def convert(value: Any, field: str) -> Any:
        if type(value) is not dict:
            raise _fail(field, tp, value)
        if value_conv is _identity:
            return value
        return {k: value_conv(v, _item_path(field, k)) for k, v in value.items()}

    return convert


def _class_converter(cls: type) -> Converter:
    if issubclass(cls, enum.Enum):
        return _enum_converter(cls)
    if cls in (dt.datetime, dt.date, dt.time):
        return _iso_converter(cls)
    if cls in (decimal.Decimal, uuid.UUID) or issubclass(cls, pathlib.PurePath):
        return _from_string_converter(cls)
    if dataclasses.is_dataclass(cls):
        return _dataclass_converter(cls)
    # pydantic models, found by duck typing so the wrapper never imports pydantic itself.
    validate = getattr(cls, "model_validate", None) or getattr(cls, "parse_obj", None)
    if callable(validate):
        return _model_converter(cls, validate)
    if cls is list or cls is dict:
        return _identity
    return _identity


def _enum_converter(cls: type) -> Converter:
    def convert(value: Any, field: str) -> Any:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)  # type: ignore[attr-defined]
            raise _Invalid(field, f"expected one of {allowed}, got {value!r}") from None

    return convert


def _iso_converter(cls: Any) -> Converter:
    def convert(value: Any, field: str) -> Any:
        if type(value) is not str:
            raise _Invalid(field, f"expected an ISO 8601 {cls.__name__} string, got {json_kind(value)}")
        text = value[:-1] + "+00:00" if value.endswith("Z") else value  # 3.9/3.10 reject "Z"
        try:
            return cls.fromisoformat(text)
        except ValueError:
            raise _Invalid(field, f"expected an ISO 8601 {cls.__name__} string, got {value!r}") from None

    return convert


def _from_string_converter(cls: Any) -> Converter:
    def convert(value: Any, field: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _fail(field, cls, value)
        try:
            if cls is decimal.Decimal:  # repr keeps a float's shortest form: 0.1, not 0.1000000000000000055
                return cls(repr(value) if isinstance(value, float) else value)
            return cls(str(value))
        except (ValueError, TypeError, decimal.InvalidOperation):
            raise _Invalid(field, f"{_expected(cls)}, got {value!r}") from None

    return convert


def _dataclass_converter(cls: Any) -> Converter:
    hints = _type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    convs = {f.name: compile_converter(hints.get(f.name, Any)) for f in fields}
    required = {
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }

    def convert(value: Any, field: str) -> Any:
        if type(value) is not dict:
            raise _fail(field, cls, value)
        for name in required:
            if name not in value:
                raise _Invalid(f"{field}.{name}", "missing required field")
        unknown = [k for k in value if k not in convs]
        if unknown:
            raise _Invalid(f"{field}.{unknown[0]}", f"unexpected field (expected: {', '.join(convs)})")
        return cls(**{k: convs[k](v, f"{field}.{k}") for k, v in value.items()})

    return convert


def _model_converter(cls: Any, validate: Callable[[Any], Any]) -> Converter:
    def convert(value: Any, field: str) -> Any:
        try:
            return validate(value)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            errors = getattr(exc, "errors", None)
            if callable(errors):
                first = errors()[0]
                loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.get("loc", ()))
                raise _Invalid(field + loc, str(first.get("msg", exc))) from None
            raise _Invalid(field, str(exc)) from None

    return convert


def _type_hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations; string annotations that cannot be resolved count as ``Any``."""
    try:
        return typing.get_type_hints(obj)
    except Exception:  # noqa: BLE001 - user code may name types that do not exist at run time
        raw = getattr(obj, "__annotations__", {}) or {}
        return {k: (Any if isinstance(v, str) else v) for k, v in raw.items()}


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """One keyword argument of an endpoint method."""

    name: str
    annotation: Any
    required: bool
    default: Any  # inspect.Parameter.empty when required
    var_keyword: bool = False  # the ``**kwargs`` catch-all
    description: str = ""

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)


@dataclasses.dataclass
class EndpointSignature:
    """The precomputed signature of an endpoint method and the checks its requests go through."""

    name: str
    parameters: list[ParameterSpec]
    return_annotation: Any
    summary: str
    description: str
    returns_doc: str
    _converters: dict[str, Converter] = dataclasses.field(default_factory=dict, repr=False)
    _extra: Converter | None = dataclasses.field(default=None, repr=False)
    _required: tuple[str, ...] = dataclasses.field(default=(), repr=False)

    def bind(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check a decoded JSON object against the signature and return the keyword arguments.

        Raises ``ApiError`` 400 listing every wrong field: missing, unknown (when there is no
        ``**kwargs``) or of the wrong type.
        """
        problems: list[dict[str, str]] = []
        kwargs: dict[str, Any] = {}
        converters = self._converters
        for key, value in payload.items():
            conv = converters.get(key)
            if conv is None:
                conv = self._extra
                if conv is None:
                    accepted = ", ".join(converters) or "no arguments"
                    problems.append({"field": key, "problem": f"unexpected argument (accepted: {accepted})"})
                    continue
            try:
                kwargs[key] = conv(value, key)
            except _Invalid as exc:
                problems.append({"field": exc.field, "problem": exc.problem})
        for name in self._required:
            if name not in payload:
                problems.append({"field": name, "problem": "missing required argument"})
        if problems:
            summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
            raise ApiError(
                400,
                f"invalid arguments for {self.name}: {summary}",
                error_type="ValidationError",
                fields=problems,
            )
        return kwargs

    def parameters_json(self) -> list[dict[str, Any]]:
        """The ``/parameters`` answer: name, type and, for optional ones, ``default_value``."""
        from .encoding import to_jsonable

        out: list[dict[str, Any]] = []
        for p in self.parameters:
            item: dict[str, Any] = {"name": p.name, "type": p.type_name}
            if p.var_keyword:
                item["name"] = f"**{p.name}"
                item["kind"] = "var_keyword"
            elif not p.required:
                item["default_value"] = to_jsonable(p.default)
            out.append(item)
        return out


def _snapshot(default: Any) -> Any:
    """The default as declared, for the docs: a mutable default (``options: dict = {}``) that the
    job changes in a call must not change what ``/parameters`` and the OpenAPI document show."""
    try:
        return copy.deepcopy(default)
    except Exception:  # noqa: BLE001 - an object that cannot be copied is shown as it is
        return default


def describe_method(method: Callable[..., Any], name: str, *, unbound: bool = False) -> EndpointSignature:
    """Precompute the signature of an endpoint method (``perform`` or an auxiliary one).

    ``unbound``: ``method`` is the function on the class, whose first parameter (``self``) is not
    an argument. Raises ``JobLoadError`` for a signature that cannot take a JSON object: ``*args``
    or positional-only parameters.
    """
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError) as exc:
        raise JobLoadError(f"cannot read the signature of {name}: {exc}") from exc
    if unbound and sig.parameters:
        sig = sig.replace(parameters=list(sig.parameters.values())[1:])
    hints = _type_hints(method)
    docs = parse_docstring(inspect.getdoc(method) or "")
    params: list[ParameterSpec] = []
    converters: dict[str, Converter] = {}
    extra: Converter | None = None
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            raise JobLoadError(
                f"{name} declares *{p.name}, which a JSON object cannot fill",
                hint=f"replace *{p.name} with named parameters, or a list parameter such as "
                f"'{p.name}: list', or **kwargs",
            )
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise JobLoadError(
                f"{name} declares the positional-only parameter '{p.name}', which a JSON object cannot fill",
                hint="remove the '/' marker from the signature",
            )
        annotation = hints.get(p.name, p.annotation)
        conv = compile_converter(annotation)
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            extra = conv
            params.append(
                ParameterSpec(
                    p.name, annotation, False, inspect.Parameter.empty, True, docs.params.get(p.name, "")
                )
            )
            continue
        converters[p.name] = conv
        required = p.default is inspect.Parameter.empty
        params.append(
            ParameterSpec(
                p.name, annotation, required, _snapshot(p.default), False, docs.params.get(p.name, "")
            )
        )
    return EndpointSignature(
        name=name,
        parameters=params,
        return_annotation=hints.get("return", sig.return_annotation),
        summary=docs.summary,
        description=docs.description,
        returns_doc=docs.returns,
        _converters=converters,
        _extra=extra,
        _required=tuple(p.name for p in params if p.required and not p.var_keyword),
    )


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
