"""The OpenAPI document and the Swagger UI page, served without internet access."""

from __future__ import annotations


def test_openapi_describes_perform_and_auxiliary(make_app):
    client = make_app("auxiliary").test_client()
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    perform = doc["paths"]["/api/v1/perform"]["post"]
    assert perform["summary"] == "Sum the numbers."
    body = perform["requestBody"]["content"]["application/json"]
    assert body["example"] == {"numbers": [40, 2]}
    assert body["schema"]["properties"]["numbers"]["type"] == "array"
    assert body["schema"]["properties"]["numbers"]["items"] == {"type": "number"}
    assert body["schema"]["properties"]["numbers"]["description"] == "Numbers to add."
    assert body["schema"]["required"] == ["numbers"]
    explain = doc["paths"]["/api/v1/explain"]["post"]
    assert explain["summary"] == "Explain feature importance of a model result."
    schema = explain["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["x"]["description"] == "First element to add."
    assert explain["requestBody"]["content"]["application/json"]["example"] == {"x": 1, "y": 2}
    assert explain["responses"]["200"]["description"] == "Dict of feature importance."
    assert "/api/v1/reports/latest" in doc["paths"]
    assert "/api/v1/parameters" in doc["paths"]


def test_openapi_single_example_and_defaults(make_app):
    doc = make_app("adder").test_client().get("/openapi.json").get_json()
    media = doc["paths"]["/api/v1/perform"]["post"]["requestBody"]["content"]["application/json"]
    assert media["example"] == {"x": 20, "y": 5}
    assert media["schema"]["properties"]["y"]["default"] == 1.0
    assert media["schema"]["properties"]["x"]["type"] == "number"


def test_openapi_servers_follow_the_prefix(make_app):
    client = make_app("adder", name="adder", version="2.0.0").test_client()
    assert client.get("/openapi.json").get_json()["servers"] == [{"url": "/"}]
    prefixed = client.get("/pub/fatman/adder/2.0.0/openapi.json").get_json()
    assert prefixed["servers"] == [{"url": "/pub/fatman/adder/2.0.0"}]
    assert prefixed["info"]["title"] == "adder" and prefixed["info"]["version"] == "2.0.0"


def test_openapi_static_and_webview(make_app):
    assert "/api/v1/xrai" in make_app("static").test_client().get("/openapi.json").get_json()["paths"]
    assert "/api/v1/webview/" in make_app("webview").test_client().get("/openapi.json").get_json()["paths"]


def test_docs_page_uses_local_assets(make_app):
    client = make_app("adder", name="adder", version="2.0.0").test_client()
    assert client.get("/").headers["Location"].endswith("/docs")
    page = client.get("/pub/fatman/adder/2.0.0/docs").get_data(as_text=True)
    assert 'src="/pub/fatman/adder/2.0.0/docs/static/swagger-ui-bundle.js"' in page
    assert '"/pub/fatman/adder/2.0.0/openapi.json"' in page
    assert "http://" not in page and "https://" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = client.get(f"/docs/static/{asset}")
        assert response.status_code == 200 and len(response.get_data()) > 1000
    assert client.get("/docs/static/../../app.py").status_code == 404


def test_doubtful_docs_examples_are_named_in_the_log(make_app, tmp_path, caplog):
    """Examples that cannot be shown are not dropped in silence: the log says which and why."""
    (tmp_path / "fatman_entrypoint.py").write_text(
        "class Job:\n"
        "    def perform(self, x: int) -> int:\n"
        "        return x\n"
        "    def explain(self, y: int) -> int:\n"
        "        return y\n"
        "    def auxiliary_endpoints(self):\n"
        "        return {'/explain': self.explain}\n"
        "    def docs_input_example(self):\n"
        "        return {'x': 1}\n"
        "    def docs_input_examples(self):\n"
        "        return {'/perform': {'x': 2}, '/explian': {'y': 3}, '/explain': [3]}\n"
    )
    with caplog.at_level("WARNING", logger="fatman_wrapper"):
        doc = make_app("", root=tmp_path).test_client().get("/openapi.json").get_json()
    media = doc["paths"]["/api/v1/perform"]["post"]["requestBody"]["content"]["application/json"]
    assert media["example"] == {"x": 2}
    assert "replaces the one of docs_input_example()" in caplog.text
    assert "names /explian, which is no endpoint of this job (endpoints: /perform, /explain)" in caplog.text
    assert "ignoring docs_input_examples()['/explain']: list" in caplog.text
