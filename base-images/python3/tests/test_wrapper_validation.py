"""Arguments are checked against perform's annotations before it runs (typed_validation job)."""

from __future__ import annotations

import sys

import pytest

VALID = {"count": 3, "ratio": 2, "name": "n", "flag": True, "tags": ["a", "b"]}


@pytest.fixture
def client(make_app):
    return make_app("typed_validation").test_client()


def problems(response):
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["type"] == "ValidationError"
    return {p["field"]: p["problem"] for p in body["fields"]}


def test_valid_arguments_are_converted_to_their_annotations(client):
    body = dict(
        VALID,
        count=4.0,
        weights={"a": 1},
        pair=[1, "x"],
        kind="b",
        when="2024-01-02T03:04:05Z",
        config={"depth": 2},
        mode="slow",
        anything={"k": [1]},
    )
    result = client.post("/api/v1/perform", json=body).get_json()
    assert result["count"] == [4, "int"]  # an integral float is accepted for int
    assert result["ratio"] == [2.0, "float"]  # an int is widened to float
    assert result["pair"] == [1, "x", "tuple"]
    assert result["weights"] == {"a": 1.0}
    assert result["when"] == "2024-01-02T03:04:05+00:00"
    assert result["config"] == {"depth": 2, "name": "default"}
    assert result["mode"] == "slow"
    assert result["anything"] == {"k": [1]}


def test_missing_argument(client):
    body = dict(VALID)
    del body["name"]
    assert problems(client.post("/api/v1/perform", json=body)) == {"name": "missing required argument"}


def test_unknown_argument_without_kwargs(client):
    found = problems(client.post("/api/v1/perform", json=dict(VALID, colour="red")))
    assert list(found) == ["colour"]
    assert found["colour"].startswith("unexpected argument (accepted: count, ratio, name")


@pytest.mark.parametrize(
    "field,value,problem",
    [
        ("count", "3", "expected int, got string"),
        ("count", 2.5, "expected int, got number"),
        ("count", True, "expected int, got boolean"),
        ("ratio", "1.5", "expected float, got string"),
        ("ratio", None, "expected float, got null"),
        ("name", 5, "expected str, got integer"),
        ("flag", 1, "expected bool, got integer"),
        ("tags", "a,b", "expected List[str], got string"),
        ("kind", "c", "expected one of 'a', 'b', got 'c'"),
        ("mode", "medium", "expected one of 'fast', 'slow', got 'medium'"),
    ],
)
def test_wrong_type_names_field_and_problem(client, field, value, problem):
    found = problems(client.post("/api/v1/perform", json=dict(VALID, **{field: value})))
    assert found == {field: problem}
    response = client.post("/api/v1/perform", json=dict(VALID, **{field: value}))
    assert field in response.get_json()["error"]


def test_nested_problems_name_the_path(client):
    assert problems(client.post("/api/v1/perform", json=dict(VALID, tags=["a", 2]))) == {
        "tags[1]": "expected str, got integer"
    }
    assert problems(client.post("/api/v1/perform", json=dict(VALID, weights={"w": "x"}))) == {
        "weights.w": "expected float, got string"
    }
    assert problems(client.post("/api/v1/perform", json=dict(VALID, config={"depth": "deep"}))) == {
        "config.depth": "expected int, got string"
    }
    assert problems(client.post("/api/v1/perform", json=dict(VALID, pair=[1]))) == {
        "pair": "expected Tuple[int, str], got an array of 1 items"
    }
    assert "when" in problems(client.post("/api/v1/perform", json=dict(VALID, when="yesterday")))


def test_every_problem_is_reported_at_once(client):
    found = problems(client.post("/api/v1/perform", json={"count": "x", "ratio": 1.0, "extra": 1}))
    assert set(found) == {"count", "extra", "name", "flag", "tags"}


def test_kwargs_accept_unknown_names_and_check_their_type(client):
    response = client.post("/api/v1/flexible", json={"base": 1, "alpha": 2, "beta": 0.5})
    assert response.get_json() == {"base": 1, "options": {"alpha": 2.0, "beta": 0.5}}
    assert problems(client.post("/api/v1/flexible", json={"base": 1, "alpha": "x"})) == {
        "alpha": "expected float, got string"
    }


def test_endpoint_without_parameters_refuses_arguments(client):
    assert client.post("/api/v1/nothing").get_json() == "ok"
    found = problems(client.post("/api/v1/nothing", json={"x": 1}))
    assert found == {"x": "unexpected argument (accepted: no arguments)"}


def test_pydantic_model_parameter(tmp_path, monkeypatch):
    from fatman_wrapper import create_app
    from fatman_wrapper.config import Settings

    (tmp_path / "entry.py").write_text(
        "import pydantic\n"
        "class Item(pydantic.BaseModel):\n    name: str\n    size: int\n"
        "class E:\n    def perform(self, item: Item) -> Item:\n        return item\n"
    )
    monkeypatch.chdir(tmp_path)
    client = create_app("entry.py", root=tmp_path, settings=Settings()).test_client()
    assert client.post("/api/v1/perform", json={"item": {"name": "a", "size": 2}}).get_json() == {
        "name": "a",
        "size": 2,
    }
    found = problems(client.post("/api/v1/perform", json={"item": {"name": "a", "size": "big"}}))
    assert list(found) == ["item.size"]


def test_postponed_annotations_are_resolved(tmp_path, monkeypatch):
    from fatman_wrapper import create_app
    from fatman_wrapper.config import Settings

    (tmp_path / "entry.py").write_text(
        "from __future__ import annotations\nfrom typing import Optional\n"
        "class E:\n    def perform(self, x: int, y: Optional[float] = None, z: int | None = None) -> int:\n"
        "        return x\n"
    )
    monkeypatch.chdir(tmp_path)
    client = create_app("entry.py", root=tmp_path, settings=Settings()).test_client()
    assert client.post("/api/v1/perform", json={"x": 1, "z": 2}).get_json() == 1
    assert problems(client.post("/api/v1/perform", json={"x": "1"})) == {"x": "expected int, got string"}
    # Python 3.9 has no `int | None` object: the wrapper reads the text as Optional[int] there.
    written = "int | None" if sys.version_info >= (3, 10) else "Optional[int]"
    assert problems(client.post("/api/v1/perform", json={"x": 1, "z": "2"})) == {
        "z": f"expected {written}, got string"
    }
