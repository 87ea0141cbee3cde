"""JSON encoding of job results, including the types users return every day.

The standard encoder refuses numpy arrays and scalars, dates, dataclasses, pydantic models, sets,
paths, enums, decimals and UUIDs. ``dumps`` handles them by duck typing so the wrapper never imports
numpy or pydantic: a value is only inspected when ``json`` itself gives up on it, so plain results
take the C encoder's fast path. Dates, decimals, UUIDs and paths are written in the form the argument
check reads them from (``typeinfo.VALUE_TYPES``), so a result can be sent back as an argument.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import re
from typing import Any

from .typeinfo import VALUE_TYPES


class EncodingFailed(TypeError):
    """A result contains a value the wrapper cannot turn into JSON."""


def _default(obj: Any) -> Any:
    """Return a JSON-encodable stand-in for ``obj``; called by ``json`` only for unknown types."""
    # numpy arrays and scalars (and anything array-like from other libraries: cupy, jax, torch
    # tensors on CPU) expose tolist()/item(); an array's tolist() yields plain Python values.
    if hasattr(obj, "dtype"):
        if hasattr(obj, "tolist"):
            return obj.tolist()
        if hasattr(obj, "item"):
            return obj.item()
    # pydantic v2, then v1: both give plain data; mode="json" also converts dates and the like.
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump) and not isinstance(obj, type):
        return model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    legacy_dict = getattr(obj, "dict", None)
    if callable(legacy_dict) and hasattr(obj, "__fields__") and not isinstance(obj, type):
        return legacy_dict()
    if isinstance(obj, enum.Enum):
        return obj.value  # what the argument check reads an Enum parameter from
    for row in VALUE_TYPES:  # dates, decimals, UUIDs, paths: the JSON form parameters are read from
        if isinstance(obj, row.cls):
            return row.encode(obj)
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, (set, frozenset)):
        try:
            return sorted(obj)
        except TypeError:  # mixed types cannot be ordered; any order beats failing
            return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if hasattr(obj, "tolist"):  # pandas Series/Index, array.array
        return obj.tolist()
    if hasattr(obj, "to_dict"):  # pandas DataFrame and friends
        return obj.to_dict()
    if hasattr(obj, "__iter__") and not isinstance(obj, (str, dict)):  # generators, ranges, deques
        return list(obj)
    raise EncodingFailed(
        f"the result contains a {type(obj).__module__}.{type(obj).__qualname__}, "
        "which cannot be encoded as JSON"
    )


def dumps(value: Any, *, allow_nan: bool = True) -> str:
    """Encode ``value`` as compact JSON, converting the common non-JSON types.

    ``allow_nan=False`` refuses NaN and infinities with ``ValueError``: Python writes them as
    ``NaN``/``Infinity``, which is not JSON, and most clients other than Python's fail to parse it.
    """
    return json.dumps(value, default=_default, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)


# In JSON text as ``json.dumps`` writes it, a non-finite float is the bare token NaN, Infinity or
# -Infinity; the same letters inside a string literal (matched first, whole) are left alone.
_NON_FINITE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?Infinity|NaN')
# A lone surrogate (U+D800-U+DFFF) has no UTF-8 form; one can only be inside a string literal.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _null_for_non_finite(match: re.Match[str]) -> str:
    text = match.group()
    return text if text[0] == '"' else "null"


def _escaped_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def utf8(text: str) -> bytes:
    """JSON text from ``dumps`` as the UTF-8 bytes of an answer.

    A string may hold a lone surrogate (``"\\ud800"`` in a request's JSON decodes to one, and a job
    may echo it back), which UTF-8 cannot encode: it is written as the escape ``\\ud800`` instead,
    as JSON allows. Only text that holds one takes the slower path.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_escaped_surrogate, text).encode("utf-8")


def dumps_result(value: Any) -> str:
    """A job's result as strict JSON: NaN and infinities become ``null``.

    JSON has no NaN: Python would write ``NaN``, which clients other than Python's cannot parse,
    and failing a model's whole answer for one missing value helps nobody. ``null`` is what pandas'
    ``to_json`` writes for them too. Only results that hold such a float take the slower path: one
    more encoding and a scan of its text, without recursion, so a deeply nested result that the
    encoder can write is written however deep it is.
    """
    try:
        return dumps(value, allow_nan=False)
    except ValueError:
        return _NON_FINITE.sub(_null_for_non_finite, dumps(value))


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (dicts, lists, numbers...), e.g. a parameter's default value."""
    return json.loads(dumps(value))
