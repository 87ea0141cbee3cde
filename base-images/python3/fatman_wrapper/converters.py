"""The argument check: one function per parameter, compiled at startup from its ``TypeInfo``.

A converter takes one decoded JSON value and the name of the field it came in, and returns the value
converted to what the annotation promises (an int for ``float`` becomes a float, a list for
``Tuple``/``Set`` a tuple/set, an ISO string for ``datetime`` a datetime, a dict for a dataclass or
a pydantic model that object) or raises ``Invalid``. Everything about the annotation was worked out
by ``typeinfo.classify``; a converter only looks at the value.
"""

from __future__ import annotations

import decimal
from typing import Any, Callable

from .typeinfo import Kind, TypeInfo, type_name

Converter = Callable[[Any, str], Any]


class Invalid(Exception):
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


def _expected(tp: Any) -> str:
    return f"expected {type_name(tp)}"


def _fail(field: str, tp: Any, value: Any) -> Invalid:
    return Invalid(field, f"{_expected(tp)}, got {json_kind(value)}")


def _item_path(field: str, key: Any) -> str:
    return f"{field}[{key}]" if isinstance(key, int) else f"{field}.{key}"


def compile_converter(info: TypeInfo) -> Converter:
    """The function checking one decoded JSON value against the annotation ``info`` describes.

    Annotations of ``Kind.ANY`` accept the value unchanged.
    """
    return _COMPILERS[info.kind](info)


def _identity(value: Any, field: str) -> Any:
    return value  # Kind.ANY: the value as sent


def _none_converter(value: Any, field: str) -> Any:
    if value is None:
        return None
    raise Invalid(field, f"expected null, got {json_kind(value)}")


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


def _union(info: TypeInfo) -> Converter:
    tp = info.annotation
    if len(info.items) == 1:  # Optional[X]: X's own message says what is wrong inside a value
        inner = compile_converter(info.items[0])

        def optional(value: Any, field: str) -> Any:
            if value is None:
                return None
            try:
                return inner(value, field)
            except Invalid as exc:
                if exc.field == field:  # the value itself is wrong: name the whole Optional type
                    raise _fail(field, tp, value) from None
                raise

        return optional
    converters = [compile_converter(item) for item in info.items]
    if info.nullable:
        converters.insert(0, _none_converter)

    def union(value: Any, field: str) -> Any:
        for conv in converters:
            try:
                return conv(value, field)
            except Invalid:
                continue
        raise _fail(field, tp, value)

    return union


def _choices(allowed: tuple[Any, ...]) -> str:
    return ", ".join(repr(c) for c in allowed)


def _literal(info: TypeInfo) -> Converter:
    choices = info.choices

    def literal(value: Any, field: str) -> Any:
        for choice in choices:
            if value == choice and type(value) is type(choice):
                return choice
        raise Invalid(field, f"expected one of {_choices(choices)}, got {value!r}")

    return literal


def _enum(info: TypeInfo) -> Converter:
    cls, choices = info.cls, info.choices

    def member(value: Any, field: str) -> Any:
        try:
            return cls(value)
        except ValueError:
            raise Invalid(field, f"expected one of {_choices(choices)}, got {value!r}") from None

    return member


def _item_converter(info: TypeInfo) -> Converter:
    return compile_converter(info.items[0]) if info.items else _identity


def _array(info: TypeInfo) -> Converter:
    tp, build, item = info.annotation, info.cls, _item_converter(info)

    def array(value: Any, field: str) -> Any:
        if type(value) is not list:
            raise _fail(field, tp, value)
        if item is _identity:
            return build(value)
        return build([item(v, f"{field}[{i}]") for i, v in enumerate(value)])

    return array


def _tuple(info: TypeInfo) -> Converter:
    tp = info.annotation
    items = [compile_converter(position) for position in info.items]

    def fixed_tuple(value: Any, field: str) -> Any:
        if type(value) is not list:
            raise _fail(field, tp, value)
        if len(value) != len(items):
            raise Invalid(field, f"{_expected(tp)}, got an array of {len(value)} items")
        return tuple(conv(v, f"{field}[{i}]") for i, (conv, v) in enumerate(zip(items, value)))

    return fixed_tuple


def _object(info: TypeInfo) -> Converter:
    tp, value_conv = info.annotation, _item_converter(info)

    def mapping(value: Any, field: str) -> Any:
        if type(value) is not dict:
            raise _fail(field, tp, value)
        if value_conv is _identity:
            return value
        return {k: value_conv(v, _item_path(field, k)) for k, v in value.items()}

    return mapping


def _value(info: TypeInfo) -> Converter:
    cls = info.cls
    assert info.value_type is not None  # Kind.VALUE always names its row
    if info.value_type.iso:

        def from_iso(value: Any, field: str) -> Any:
            if type(value) is not str:
                raise Invalid(field, f"expected an ISO 8601 {cls.__name__} string, got {json_kind(value)}")
            text = value[:-1] + "+00:00" if value.endswith("Z") else value  # 3.9/3.10 reject "Z"
            try:
                return cls.fromisoformat(text)
            except ValueError:
                raise Invalid(field, f"expected an ISO 8601 {cls.__name__} string, got {value!r}") from None

        return from_iso

    def from_text(value: Any, field: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _fail(field, cls, value)
        try:
            if cls is decimal.Decimal:  # repr keeps a float's shortest form: 0.1, not 0.1000000000000000055
                return cls(repr(value) if isinstance(value, float) else value)
            return cls(str(value))
        except (ValueError, TypeError, decimal.InvalidOperation):
            raise Invalid(field, f"{_expected(cls)}, got {value!r}") from None

    return from_text


def _dataclass(info: TypeInfo) -> Converter:
    cls = info.cls
    convs = {name: compile_converter(field_info) for name, field_info in info.fields}
    required = info.required

    def instance(value: Any, field: str) -> Any:
        if type(value) is not dict:
            raise _fail(field, cls, value)
        for name in required:
            if name not in value:
                raise Invalid(f"{field}.{name}", "missing required field")
        unknown = next((k for k in value if k not in convs), None)
        if unknown is not None:
            raise Invalid(f"{field}.{unknown}", f"unexpected field (expected: {', '.join(convs)})")
        return cls(**{k: convs[k](v, f"{field}.{k}") for k, v in value.items()})

    return instance


def _model(info: TypeInfo) -> Converter:
    cls = info.cls
    validate: Callable[[Any], Any] = getattr(cls, "model_validate", None) or cls.parse_obj

    def model(value: Any, field: str) -> Any:
        try:
            return validate(value)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            errors = getattr(exc, "errors", None)
            if callable(errors):
                first = errors()[0]
                loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.get("loc", ()))
                raise Invalid(field + loc, str(first.get("msg", exc))) from None
            raise Invalid(field, str(exc)) from None

    return model


def _constant(converter: Converter) -> Callable[[TypeInfo], Converter]:
    return lambda info: converter


_COMPILERS: dict[Kind, Callable[[TypeInfo], Converter]] = {
    Kind.ANY: _constant(_identity),
    Kind.NULL: _constant(_none_converter),
    Kind.UNION: _union,
    Kind.LITERAL: _literal,
    Kind.ENUM: _enum,
    Kind.BOOLEAN: _constant(_bool_converter),
    Kind.INTEGER: _constant(_int_converter),
    Kind.NUMBER: _constant(_float_converter),
    Kind.STRING: _constant(_str_converter),
    Kind.ARRAY: _array,
    Kind.TUPLE: _tuple,
    Kind.OBJECT: _object,
    Kind.VALUE: _value,
    Kind.DATACLASS: _dataclass,
    Kind.MODEL: _model,
}
