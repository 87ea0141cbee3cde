"""Results the standard JSON encoder refuses are encoded (numpy_result job)."""

from __future__ import annotations

import json

import pytest

from fatman_wrapper.encoding import dumps


def test_numpy_array_result(make_app):
    client = make_app("numpy_result").test_client()
    assert client.post("/api/v1/perform", json={"size": 3}).get_json() == [0.0, 1.5, 3.0]


def test_everyday_types_are_encoded(make_app):
    client = make_app("numpy_result").test_client()
    response = client.post("/api/v1/everything")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "matrix": [[1, 0], [0, 1]],
        "scalar": 0.5,
        "integer": 7,
        "flag": True,
        "date": "2024-01-02",
        "datetime": "2024-01-02T03:04:05+00:00",
        "point": {"x": 1.0, "when": "2024-05-06"},
        "reading": {"sensor": "s1", "taken_at": "2024-01-01T12:00:00"},
        "set": [1, 2, 3],
        "path": "/data/model.pkl",
        "decimal": 1.25,
        "uuid": "12345678-1234-5678-1234-567812345678",
        "color": "red",
        "delta": 60.0,
    }


def test_unencodable_result_is_500_naming_the_type(make_app):
    client = make_app("numpy_result").test_client()
    response = client.post("/api/v1/unencodable")
    assert response.status_code == 500
    body = response.get_json()
    assert body["type"] == "EncodingError"
    assert "builtins.object" in body["error"]
    assert client.post("/api/v1/perform", json={}).status_code == 200


def test_plain_values_keep_the_standard_encoding():
    assert json.loads(dumps({"a": [1, 2.5, None, True, "é"]})) == {"a": [1, 2.5, None, True, "é"]}


def test_no_numpy_or_pydantic_import_in_the_wrapper():
    import pathlib

    package = pathlib.Path(__import__("fatman_wrapper").__file__).parent
    for source in package.glob("*.py"):
        text = source.read_text()
        assert "import numpy" not in text and "import pydantic" not in text, source


@pytest.mark.parametrize(
    "value,expected", [(frozenset({"b", "a"}), ["a", "b"]), (range(3), [0, 1, 2]), (b"hi", "aGk=")]
)
def test_other_containers(value, expected):
    assert json.loads(dumps(value)) == expected


def test_non_finite_floats_answer_null_so_the_body_stays_strict_json(make_app):
    # Python would write "Infinity", which is not JSON: most clients could not parse the 200.
    response = make_app("adder").test_client().post("/api/v1/perform", json={"x": 1e308, "y": 10})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "null"


def test_nan_inside_containers_becomes_null_and_the_rest_is_kept():
    from fatman_wrapper.encoding import dumps_result

    value = {"scores": [1.5, float("nan"), float("-inf")], "when": frozenset({2}), "ok": True}
    assert json.loads(dumps_result(value)) == {"scores": [1.5, None, None], "when": [2], "ok": True}
    assert dumps_result([1.0, 2.0]) == "[1.0,2.0]"
