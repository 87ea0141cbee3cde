"""Racetrack 2.x's contract beside the fatman era's: both gateway prefixes, JOB_* names, the home
page, /health's 2.x fields, JobEntrypoint and request_context."""

from __future__ import annotations

import pytest

from fatman_wrapper import __version__
from fatman_wrapper.config import Settings, name_conflicts
from fatman_wrapper.errors import JobLoadError, without_paths

PREFIXES = ("/pub/job/adder/1.2.3", "/pub/fatman/adder/1.2.3")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_route_answers_under_both_prefixes(make_app, prefix):
    client = make_app("adder", name="adder", version="1.2.3").test_client()
    assert client.post(prefix + "/api/v1/perform", json={"x": 2, "y": 4}).get_json() == 8.0
    assert client.get(prefix + "/api/v1/parameters").status_code == 200
    for probe in ("/health", "/live", "/ready"):
        assert client.get(prefix + probe).status_code == 200, probe
    docs = client.get(prefix + "/docs").get_data(as_text=True)
    assert f"{prefix}/openapi.json" in docs and f"{prefix}/docs/static" in docs
    assert client.get(prefix + "/docs/static/swagger-ui.css").status_code == 200
    assert client.get(prefix + "/openapi.json").get_json()["servers"] == [{"url": prefix}]
    root = client.get(prefix + "/")
    assert root.status_code == 302 and root.headers["Location"] == prefix + "/docs"
    metrics = client.get(prefix + "/metrics").get_data(as_text=True)
    # Counted under the route's own label, whichever prefix the call came through.
    assert 'fatman_requests_total{endpoint="/api/v1/perform",status="200"} 1.0' in metrics
    # Another job, or another version, is not this one.
    assert client.post(prefix.replace("adder", "other") + "/api/v1/perform", json={"x": 1}).status_code == 404
    assert client.post(prefix.replace("1.2.3", "9.9.9") + "/api/v1/perform", json={"x": 1}).status_code == 404


@pytest.mark.parametrize("family", ["/pub/job", "/pub/fatman"])
def test_latest_names_this_job_for_calls_straight_to_it(make_app, family):
    client = make_app("adder", name="adder", version="1.2.3").test_client()
    assert client.post(f"{family}/adder/latest/api/v1/perform", json={"x": 3}).get_json() == 3.0


def test_static_and_webview_under_both_prefixes(make_app):
    static = make_app("static", name="files", version="1.0.0").test_client()
    webview = make_app("webview", name="ui", version="0.1.0").test_client()
    for family in ("/pub/job", "/pub/fatman"):
        assert static.get(f"{family}/files/1.0.0/api/v1/manifest").status_code == 200, family
        prefix = f"{family}/ui/0.1.0"
        assert webview.get(prefix + "/api/v1/webview/").status_code == 200, family
        assert webview.post(prefix + "/api/v1/webview/postme", json=[1]).get_json() == {"hello": [1]}
        assert webview.get(prefix + "/api/v1/webview/static/style.css").status_code == 200
        assert webview.get(prefix + "/webview/static/style.css").status_code == 200


def test_public_endpoints_and_the_token_hold_under_both_prefixes(make_app):
    client = make_app(
        "adder", name="adder", version="1.2.3", auth_token="t0ken", public_endpoints=("/api/v1/parameters",)
    ).test_client()
    for prefix in PREFIXES:
        assert client.post(prefix + "/api/v1/perform", json={"x": 1}).status_code == 401
        ok = client.post(prefix + "/api/v1/perform", json={"x": 1}, headers={"X-Racetrack-Auth": "t0ken"})
        assert ok.status_code == 200
        assert client.get(prefix + "/api/v1/parameters").status_code == 200


def test_webview_base_url_follows_the_prefix_family(make_app):
    client = make_app("webview", name="ui", version="0.1.0", pub_family="/pub/job").test_client()
    page = client.get("/pub/fatman/ui/0.1.0/api/v1/webview/").get_data(as_text=True)
    assert "Webview at /pub/job/ui/0.1.0/api/v1/webview" in page


def test_job_names_win_over_fatman_names():
    env = {"JOB_NAME": "new", "JOB_VERSION": "2.0.0", "FATMAN_NAME": "old", "FATMAN_VERSION": "1.0.0"}
    settings = Settings.from_env(env)
    assert (settings.name, settings.version) == ("new", "2.0.0")
    assert name_conflicts(env) == [
        "JOB_NAME='new' and FATMAN_NAME='old' differ: serving as 'new'",
        "JOB_VERSION='2.0.0' and FATMAN_VERSION='1.0.0' differ: serving as '2.0.0'",
    ]
    # Each falls back on its own: the Docker infrastructure of 2.x sets no JOB_VERSION.
    settings = Settings.from_env({"JOB_NAME": "new", "FATMAN_VERSION": "1.0.0"})
    assert (settings.name, settings.version) == ("new", "1.0.0")
    assert Settings.from_env({"FATMAN_NAME": "old", "FATMAN_VERSION": "1"}).name == "old"
    assert name_conflicts({"JOB_NAME": "same", "FATMAN_NAME": "same"}) == []


def test_the_prefix_family_comes_from_the_environment():
    named = {"JOB_NAME": "a", "JOB_VERSION": "1"}
    assert Settings.from_env(named).pub_prefix == "/pub/job/a/1"
    assert Settings.from_env({**named, "FATMAN_NAME": "a"}).pub_prefix == "/pub/fatman/a/1"
    assert Settings.from_env({**named, "FATMAN_NAME": "a", "FATMAN_PUB_PREFIX": "/pub/job/"}).pub_prefix == (
        "/pub/job/a/1"
    )
    assert set(Settings.from_env(named).pub_prefixes) == {
        "/pub/job/a/1",
        "/pub/job/a/latest",
        "/pub/fatman/a/1",
        "/pub/fatman/a/latest",
    }
    assert Settings.from_env({}).pub_prefixes == ()
    with pytest.raises(JobLoadError, match="FATMAN_PUB_PREFIX"):
        Settings.from_env({"FATMAN_PUB_PREFIX": "/gateway"})


def test_home_page_redirects_under_the_prefix_used(make_app):
    client = make_app("webview", name="ui", version="0.1.0", home_page="/api/v1/webview/").test_client()
    assert client.get("/").headers["Location"] == "/api/v1/webview/"
    assert client.get("/pub/job/ui/0.1.0/").headers["Location"] == "/pub/job/ui/0.1.0/api/v1/webview/"
    assert client.get("/pub/fatman/ui/0.1.0/").headers["Location"] == "/pub/fatman/ui/0.1.0/api/v1/webview/"


@pytest.mark.parametrize(
    ("raw", "page"),
    [("", "/docs"), ("/docs", "/docs"), ("docs", "/docs"), ("/api/v1/webview/", "/api/v1/webview/"),
     ("/api/v1/webview/?tab=2", "/api/v1/webview/?tab=2")],
)
def test_home_page_setting(raw, page):
    assert Settings.from_env({"FATMAN_HOME_PAGE": raw}).home_page == page


@pytest.mark.parametrize(
    "raw",
    ["http://evil.example/", "//evil.example", "/", "/../secret", "/a/../../b", "/a//b", "/a/%2e%2e/b",
     "/a\\b", "/a b", "/\r\nSet-Cookie: x", "/?x"],
)
def test_home_page_must_be_a_path_of_this_job(raw):
    with pytest.raises(JobLoadError, match="FATMAN_HOME_PAGE"):
        Settings.from_env({"FATMAN_HOME_PAGE": raw})


def test_health_reports_the_job_type_version_and_2x_fields(make_app, monkeypatch):
    client = make_app(
        "adder",
        name="adder",
        version="1.2.3",
        job_type_version="2.15.1",
        git_version="abc123",
        deployed_by_racetrack_version="2.36.0",
        deployment_timestamp="1764590000",
    ).test_client()
    health = client.get("/health").get_json()
    assert health["status"] == "ready" and health["entrypoint_class"] == "AdderEntrypoint"  # as before
    assert health["service"] == "fatman"  # the fatman era's, with 2.x's fields beside it
    assert (health["fatman_name"], health["fatman_version"]) == ("adder", "1.2.3")
    assert (health["job_name"], health["job_version"]) == ("adder", "1.2.3")
    assert (health["live"], health["ready"]) == (True, True)
    assert health["job_type_version"] == "2.15.1"
    assert health["git_version"] == "abc123" and health["deployed_by_racetrack_version"] == "2.36.0"
    assert health["deployment_timestamp"] == 1764590000
    live = client.get("/live").get_json()
    assert live == {"status": "alive", "live": True, "deployment_timestamp": 1764590000}


def test_health_without_a_job_type_version_reports_the_wrappers(make_app):
    client = make_app("adder").test_client()
    health = client.get("/health").get_json()
    assert health["job_type_version"] == __version__
    assert health["git_version"] is None and health["deployment_timestamp"] is None
    assert Settings.from_env({"JOB_TYPE_VERSION": "2.15.1"}).job_type_version == "2.15.1"


def test_health_of_a_failed_job_says_not_ready(make_app):
    response = make_app("failing_init").test_client().get("/health")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "failed"
    assert (body["live"], body["ready"], body["service"]) == (True, False, "fatman")


def test_a_plain_job_entrypoint_class_just_works(make_app):
    for class_name in (None, "JobEntrypoint"):
        client = make_app("v2_plain", class_name).test_client()
        assert client.post("/api/v1/perform", json={"x": 1, "y": 2}).get_json() == 3.0
        assert client.get("/health").get_json()["entrypoint_class"] == "JobEntrypoint"


def test_the_library_base_class_and_request_context(make_app):
    client = make_app("v2_context").test_client()
    response = client.post(
        "/api/v1/perform?q=1",
        json={"x": 2},
        headers={"X-Request-Tracing-Id": "trace-1", "X-Caller-Name": "alice"},
    )
    body = response.get_json()
    assert body["x"] == 2 and body["tracing_id"] == "trace-1" and body["caller"] == "alice"
    assert body["method"] == "POST" and body["query"] == {"q": "1"}
    assert body["extra"] == {"x": 2}  # a fresh dict per request
    assert body["had_context_in_init"] is False
    # The base class's defaults mean "none": no webview, no static files, no metrics.
    assert client.get("/api/v1/webview/").status_code == 404
    assert client.post("/api/v1/outside").get_json() == {"outside": "LookupError"}


def test_request_context_reaches_a_call_run_with_a_timeout(make_app):
    client = make_app("v2_context", request_timeout=5.0).test_client()
    body = client.post("/api/v1/perform", json={"x": 1}, headers={"X-Request-Tracing-Id": "t-9"}).get_json()
    assert body["tracing_id"] == "t-9" and body["thread"].startswith("fatman-call")


def test_summaries_keep_both_prefixes_whole():
    text = "calling /pub/job/a/1/api/v1/perform and /pub/fatman/a/1/x from /src/fatman/model.py"
    kept = "calling /pub/job/a/1/api/v1/perform and /pub/fatman/a/1/x from .../model.py"
    assert without_paths(text) == kept


def test_openapi_declares_the_token_header_when_one_is_required(make_app):
    guarded = make_app("adder", auth_token="t0ken").test_client()
    document = guarded.get("/openapi.json", headers={"X-Racetrack-Auth": "t0ken"}).get_json()
    scheme = {"type": "apiKey", "in": "header", "name": "X-Racetrack-Auth"}
    assert document["components"]["securitySchemes"] == {"RacetrackAuth": scheme}
    assert document["security"] == [{"RacetrackAuth": []}]
    assert document["paths"]["/live"]["get"]["security"] == []  # the probes answer anyone
    document = make_app("adder").test_client().get("/openapi.json").get_json()
    assert "security" not in document and "securitySchemes" not in document["components"]


def test_a_2x_jobs_openapi_declares_the_token_header_pub_asks_for(make_app):
    # Behind Racetrack 2.x's Pub the job checks no token itself, but every call needs
    # X-Racetrack-Auth: Swagger UI must offer to send it.
    document = make_app("adder", contract=2).test_client().get("/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["RacetrackAuth"]["name"] == "X-Racetrack-Auth"
    assert document["security"] == [{"RacetrackAuth": []}]
    assert document["paths"]["/health"]["get"]["security"] == []


def test_the_base_classs_empty_docs_example_is_no_example(make_app, tmp_path, caplog):
    # Found by a new user: a subclass giving only docs_input_examples() was warned that it
    # "replaces the one of docs_input_example()", the base class's own {}.
    (tmp_path / "fatman_entrypoint.py").write_text(
        "from racetrack_job_wrapper.entrypoint import JobEntrypoint as Base\n\n"
        "class JobEntrypoint(Base):\n"
        "    def perform(self, x: float) -> float:\n"
        "        return x\n\n"
        "    def docs_input_examples(self):\n"
        "        return {'/perform': {'x': 4}}\n"
    )
    with caplog.at_level("WARNING"):
        client = make_app("v2_context", root=tmp_path, contract=2).test_client()
        assert client.post("/api/v1/perform").get_json() == 4  # the example, for a bodiless call
    assert "replaces the one of docs_input_example()" not in caplog.text
    document = client.get("/openapi.json").get_json()
    assert document["paths"]["/api/v1/perform"]["post"]["requestBody"]["content"]["application/json"][
        "example"] == {"x": 4}
