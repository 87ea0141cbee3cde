"""One classification of each annotation feeds the argument check, the JSON schema and the encoder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import pathlib
import uuid
from typing import Any, Literal, Optional, Union

import pytest

from fatman_wrapper.converters import Invalid, compile_converter
from fatman_wrapper.encoding import dumps
from fatman_wrapper.openapi import json_schema
from fatman_wrapper.typeinfo import Kind, classify


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: float
    label: str = ""


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node] = dataclasses.field(default_factory=list)


class Model:
    """Stands in for a pydantic model: the wrapper recognises one by its methods."""

    @classmethod
    def model_validate(cls, value: Any) -> Any:
        return value


ONE_OF_EACH_KIND = [
    Any,
    None,
    Union[int, str],
    Literal["a"],
    Color,
    bool,
    int,
    float,
    str,
    list[int],
    tuple[int, str],
    dict[str, float],
    dt.date,
    Point,
    Model,
]


def test_every_kind_has_a_converter_and_a_schema():
    infos = [classify(tp) for tp in ONE_OF_EACH_KIND]
    assert {info.kind for info in infos} == set(Kind)
    for info in infos:
        assert callable(compile_converter(info))
        assert isinstance(json_schema(info), dict)


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        dt.date(2024, 1, 2),
        dt.time(12, 30, 15),
        decimal.Decimal("1.25"),
        uuid.UUID(int=7),
        pathlib.PurePosixPath("/data/model.pkl"),
        Color.RED,
    ],
)
def test_a_result_reads_back_as_an_argument_of_its_type(value):
    convert = compile_converter(classify(type(value)))
    assert convert(json.loads(dumps(value)), "x") == value


def test_the_schema_says_what_the_check_enforces():
    info = classify(Optional[Point])
    assert json_schema(info) == {
        "type": "object",
        "title": "Point",
        "properties": {"x": {"type": "number"}, "label": {"type": "string"}},
        "additionalProperties": False,
        "required": ["x"],
        "nullable": True,
    }
    convert = compile_converter(info)
    assert convert({"x": 1}, "p") == Point(1.0)
    with pytest.raises(Invalid, match="unexpected field"):
        convert({"x": 1, "y": 2}, "p")


def test_a_dataclass_that_contains_itself_is_described_down_to_the_repetition():
    info = classify(Node)
    children = dict(info.fields)["children"]
    assert children.kind is Kind.ARRAY and children.items[0].kind is Kind.ANY
    convert = compile_converter(info)
    assert convert({"value": 1, "children": [{"value": 2}]}, "n") == Node(1, [{"value": 2}])
    assert json_schema(info)["properties"]["children"] == {"type": "array", "items": {}}
