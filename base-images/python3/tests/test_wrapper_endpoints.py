"""Every endpoint of the wrapper through the Flask test client, one scenario job per case."""

from __future__ import annotations

import json
import logging

import pytest


def test_perform_multiplies(make_app):
    client = make_app("adder").test_client()
    response = client.post("/api/v1/perform", json={"x": 20, "y": 5})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == 100.0


def test_perform_uses_defaults(make_app):
    client = make_app("adder").test_client()
    assert client.post("/api/v1/perform", json={"x": 3}).get_json() == 3.0


def test_parameters_lists_signature_with_default_value(make_app):
    client = make_app("adder").test_client()
    response = client.get("/api/v1/parameters")
    assert response.status_code == 200
    assert response.get_json() == [
        {"name": "x", "type": "float"},
        {"name": "y", "type": "float", "default_value": 1.0},
    ]


def test_parameters_show_kwargs(make_app):
    client = make_app("typed_validation").test_client()
    params = client.get("/api/v1/parameters").get_json()
    names = [p["name"] for p in params]
    assert names[:5] == ["count", "ratio", "name", "flag", "tags"]
    by_name = {p["name"]: p for p in params}
    assert by_name["tags"]["type"] == "List[str]"
    assert by_name["weights"] == {
        "name": "weights",
        "type": "Optional[Dict[str, float]]",
        "default_value": None,
    }
    assert by_name["pair"]["default_value"] == [0, ""]
    assert by_name["mode"]["default_value"] == "fast"
    assert by_name["anything"] == {"name": "anything", "type": "Any", "default_value": None}


def test_parameters_show_var_keyword(tmp_path, monkeypatch):
    from fatman_wrapper import create_app
    from fatman_wrapper.config import Settings

    (tmp_path / "entry.py").write_text(
        "class E:\n    def perform(self, a: int, **kwargs: float) -> int:\n        return a\n"
    )
    monkeypatch.chdir(tmp_path)
    client = create_app("entry.py", root=tmp_path, settings=Settings()).test_client()
    assert client.get("/api/v1/parameters").get_json() == [
        {"name": "a", "type": "int"},
        {"name": "**kwargs", "type": "float", "kind": "var_keyword"},
    ]
    assert client.post("/api/v1/perform", json={"a": 1, "b": 2, "c": 3}).get_json() == 1


def test_auxiliary_endpoints(make_app):
    client = make_app("auxiliary").test_client()
    assert client.post("/api/v1/perform", json={"numbers": [40, 2]}).get_json() == 42
    assert client.post("/api/v1/explain", json={"x": 1, "y": 3}).get_json() == {
        "x_importance": 0.25,
        "y_importance": 0.75,
    }
    assert client.post("/api/v1/reports/latest").get_json() == {"report": "all good"}
    assert client.post("/api/v1/reports/latest", json={}).get_json() == {"report": "all good"}


def test_auxiliary_arguments_are_validated(make_app):
    client = make_app("auxiliary").test_client()
    response = client.post("/api/v1/explain", json={"x": 1})
    assert response.status_code == 400
    assert response.get_json()["fields"] == [{"field": "y", "problem": "missing required argument"}]


def test_unknown_endpoint_is_404_json(make_app):
    client = make_app("auxiliary").test_client()
    response = client.post("/api/v1/nowhere", json={})
    assert response.status_code == 404
    body = response.get_json()
    assert body["type"] == "NotFound"
    assert "/api/v1/explain" in body["error"]
    assert client.get("/no/such/page").get_json()["status"] == 404


def test_wrong_method_is_405_json(make_app):
    client = make_app("adder").test_client()
    response = client.delete("/api/v1/perform")
    assert response.status_code == 405
    assert response.get_json()["type"] == "MethodNotAllowed"
    assert "POST" in response.headers["Allow"]


def test_exception_in_perform_is_500_and_server_keeps_serving(make_app, caplog):
    client = make_app("auxiliary").test_client()
    with caplog.at_level(logging.ERROR, logger="fatman_wrapper"):
        response = client.post("/api/v1/boom", json={"reason": "testing"})
    assert response.status_code == 500
    assert response.get_json() == {"error": "exploded: testing", "type": "ValueError", "status": 500}
    assert "Traceback" in caplog.text and "exploded: testing" in caplog.text
    assert client.post("/api/v1/perform", json={"numbers": [1, 2]}).get_json() == 3


@pytest.mark.parametrize("body", [b"{not json", b'{"x": 1,}', b"\xff\xfe\x00", b"[1, 2]", b'"text"', b"12"])
def test_malformed_or_non_object_body_is_400(make_app, body):
    client = make_app("adder").test_client()
    response = client.post("/api/v1/perform", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["type"] == "MalformedJSON"


def test_body_over_limit_is_413(make_app):
    client = make_app("adder", max_body_bytes=100).test_client()
    big = json.dumps({"x": 1, "y": 2, "pad": "a" * 200})
    response = client.post("/api/v1/perform", data=big, content_type="application/json")
    assert response.status_code == 413
    assert "FATMAN_MAX_BODY_BYTES" in response.get_json()["error"]
    assert client.post("/api/v1/perform", json={"x": 1, "y": 2}).status_code == 200


def test_body_over_limit_without_content_length_is_413(make_app):
    client = make_app("adder", max_body_bytes=100).test_client()
    big = json.dumps({"x": 1, "pad": "a" * 200}).encode()
    response = client.post(
        "/api/v1/perform",
        input_stream=__import__("io").BytesIO(big),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_probes_of_a_ready_job(make_app):
    client = make_app("adder", name="adder", version="1.2.3").test_client()
    assert client.get("/live").get_json() == {"status": "alive"}
    assert client.get("/ready").get_json() == {"status": "ready"}
    health = client.get("/health").get_json()
    assert health["status"] == "ready"
    assert health["name"] == "adder" and health["version"] == "1.2.3"
    assert health["entrypoint_class"] == "AdderEntrypoint"


def test_routes_are_served_under_the_pub_prefix(make_app):
    client = make_app("adder", name="adder", version="1.2.3").test_client()
    prefix = "/pub/fatman/adder/1.2.3"
    assert client.post(prefix + "/api/v1/perform", json={"x": 2, "y": 4}).get_json() == 8.0
    assert client.get(prefix + "/health").status_code == 200
    assert client.get(prefix + "/api/v1/parameters").status_code == 200
    root = client.get(prefix + "/")
    assert root.status_code == 302 and root.headers["Location"].endswith(prefix + "/docs")
    # another name or version is not this job
    assert client.post("/pub/fatman/adder/9.9.9/api/v1/perform", json={"x": 1}).status_code == 404
    assert client.post("/pub/fatman/adder/1.2.3x/api/v1/perform", json={"x": 1}).status_code == 404


def test_helper_classes_do_not_get_in_the_way(make_app):
    client = make_app("helper_classes").test_client()
    assert client.post("/api/v1/perform", json={"x": 2}).get_json() == {"value": 2.0}


def test_job_package_imports_from_the_job_root(make_app):
    client = make_app("job_package").test_client()
    assert client.post("/api/v1/perform", json={"x": 2, "y": 3}).get_json() == 15.0


@pytest.mark.parametrize(
    "job,method,path,allow",
    [
        ("adder", "get", "/api/v1/perform", "OPTIONS, POST"),
        ("adder", "put", "/api/v1/perform", "OPTIONS, POST"),
        ("adder", "post", "/api/v1/parameters", "GET, HEAD, OPTIONS"),
        ("auxiliary", "get", "/api/v1/explain", "OPTIONS, POST"),
        ("auxiliary", "get", "/api/v1/reports/latest", "OPTIONS, POST"),
        ("auxiliary", "delete", "/api/v1/boom", "OPTIONS, POST"),
        ("static", "post", "/api/v1/xrai", "GET, HEAD, OPTIONS"),
        ("static", "post", "/api/v1/assets/style.css", "GET, HEAD, OPTIONS"),
    ],
)
def test_wrong_method_on_an_existing_endpoint_is_405_with_allow(make_app, job, method, path, allow):
    client = make_app(job, name="j", version="1").test_client()
    for prefix in ("", "/pub/fatman/j/1"):
        response = getattr(client, method)(prefix + path, json={})
        assert response.status_code == 405, (prefix, path)
        assert response.headers["Allow"] == allow
        body = response.get_json()
        assert body["type"] == "MethodNotAllowed" and body["status"] == 405
        assert path in body["error"] and allow.split(", ")[-1] in body["error"]
        # OPTIONS advertises exactly what the 405 allows
        options = client.options(prefix + path)
        assert options.status_code == 200 and options.headers["Allow"] == allow
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'status="405"' in metrics and 'endpoint="unmatched",status="405"' not in metrics


def test_unknown_api_path_stays_404_for_every_method(make_app):
    client = make_app("auxiliary").test_client()
    for method in ("get", "post", "put", "delete", "options"):
        response = getattr(client, method)("/api/v1/nowhere", json={})
        assert response.status_code == 404, method
        assert response.get_json()["type"] == "NotFound"
        assert "Allow" not in response.headers


def test_a_body_nested_past_the_parsers_limit_is_400_not_500(make_app):
    client = make_app("adder").test_client()
    response = client.post("/api/v1/perform", data=b"[" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["type"] == "MalformedJSON"


@pytest.mark.parametrize("timeout", [0, 30])  # with FATMAN_REQUEST_TIMEOUT the call runs in a thread
def test_async_endpoints_are_awaited(make_app, timeout):
    client = make_app("async_perform", request_timeout=timeout).test_client()
    assert client.post("/api/v1/perform", json={"x": 21, "delay": 0.01}).get_json() == 42
    assert client.post("/api/v1/ping").get_json() == "pong"
    parameters = client.get("/api/v1/parameters").get_json()
    assert [p["name"] for p in parameters] == ["x", "delay"]


def test_a_mutable_default_changed_by_a_call_is_documented_as_declared(make_app, tmp_path):
    (tmp_path / "fatman_entrypoint.py").write_text(
        "class Job:\n"
        "    def perform(self, options: dict = {}) -> int:  # noqa: B006 - the mistake under test\n"
        "        options['seen'] = options.get('seen', 0) + 1\n"
        "        return options['seen']\n"
    )
    client = make_app("", root=tmp_path).test_client()
    assert [client.post("/api/v1/perform").get_json() for _ in range(3)] == [1, 2, 3]
    assert client.get("/api/v1/parameters").get_json() == [
        {"name": "options", "type": "dict", "default_value": {}}
    ]
    schema = client.get("/openapi.json").get_json()["paths"]["/api/v1/perform"]["post"]["requestBody"]
    assert schema["content"]["application/json"]["schema"]["properties"]["options"]["default"] == {}
