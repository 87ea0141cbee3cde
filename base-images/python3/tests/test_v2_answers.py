"""Where the fatman era and Racetrack 2.x answer differently, each image answers as its own era does:
FATMAN_CONTRACT=2 (set by images built from a job.yaml) gives 2.x's answers, anything else the
fatman era's (which the other test files check too)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fatman_wrapper.config import Settings
from fatman_wrapper.errors import JobLoadError

PREFIX = "/pub/job/adder/1.2.3"
V1, V2 = {"contract": 1}, {"contract": 2}

# Arguments the job's signature refuses only when called: 2.x counts them as a ValueError (400),
# while a TypeError from inside the job is the job's own failure (500) in both eras.
KWARGS_JOB = '''
class KwargsEntrypoint:
    def perform(self, **named):
        if named.get("bug"):
            return None + 1
        return sorted(named)
'''


def _kwargs_app(make_app, tmp_path: Path, **settings):
    (tmp_path / "fatman_entrypoint.py").write_text(textwrap.dedent(KWARGS_JOB))
    return make_app("adder", root=tmp_path, **settings)


@pytest.mark.parametrize(
    ("env", "contract"),
    [({}, 1), ({"FATMAN_CONTRACT": ""}, 1), ({"FATMAN_CONTRACT": "1"}, 1), ({"FATMAN_CONTRACT": " 2 "}, 2)],
)
def test_the_contract_comes_from_the_environment(env, contract):
    settings = Settings.from_env(env)
    assert settings.contract == contract and settings.v2 is (contract == 2)


@pytest.mark.parametrize("raw", ["3", "v2", "2.x", "true"])
def test_an_unknown_contract_stops_the_wrapper(raw):
    with pytest.raises(JobLoadError, match="FATMAN_CONTRACT"):
        Settings.from_env({"FATMAN_CONTRACT": raw})


@pytest.mark.parametrize(("settings", "code"), [(V1, 302), (V2, 307)])
def test_the_root_redirects_to_the_home_page(make_app, settings, code):
    app = make_app("adder", name="adder", version="1.2.3", home_page="/api/v1/webview/", **settings)
    client = app.test_client()
    for prefix in ("", PREFIX, "/pub/fatman/adder/1.2.3"):
        root = client.get(prefix + "/")
        assert root.status_code == code, prefix
        assert root.headers["Location"] == prefix + "/api/v1/webview/"


@pytest.mark.parametrize(("settings", "code"), [(V1, 500), (V2, 400)])
def test_a_value_error_of_the_job(make_app, settings, code):
    client = make_app("faults", **settings).test_client()
    answer = client.post("/api/v1/perform", json={"mode": "raise", "x": 3})
    assert answer.status_code == code
    assert answer.get_json() == {"error": "asked to raise with x=3.0", "type": "ValueError", "status": code}


@pytest.mark.parametrize("settings", [V1, V2])
def test_arguments_the_wrapper_checks_are_400_in_both(make_app, settings):
    client = make_app("adder", **settings).test_client()
    answer = client.post("/api/v1/perform", json={"y": 2, "z": 1})
    assert answer.status_code == 400
    body = answer.get_json()
    assert {"error", "type"} <= set(body) and body["type"] == "ValidationError"
    assert {f["field"] for f in body["fields"]} == {"x", "z"}


@pytest.mark.parametrize(("settings", "code", "kind"), [(V1, 500, "TypeError"), (V2, 400, "ValueError")])
def test_arguments_the_method_refuses_when_called(make_app, tmp_path, settings, code, kind):
    client = _kwargs_app(make_app, tmp_path, **settings).test_client()
    assert client.post("/api/v1/perform", json={"a": 1}).get_json() == ["a"]
    answer = client.post("/api/v1/perform", json={"self": 1})  # bound: "multiple values for 'self'"
    assert answer.status_code == code
    body = answer.get_json()
    assert body["type"] == kind and "self" in body["error"] and body["status"] == code


@pytest.mark.parametrize("settings", [V1, V2])
def test_a_type_error_inside_the_job_stays_500(make_app, tmp_path, settings):
    client = _kwargs_app(make_app, tmp_path, **settings).test_client()
    answer = client.post("/api/v1/perform", json={"bug": True})
    assert answer.status_code == 500 and answer.get_json()["type"] == "TypeError"


def test_a_value_error_is_400_with_a_request_timeout_too(make_app):
    client = make_app("faults", request_timeout=30.0, **V2).test_client()
    answer = client.post("/api/v1/perform", json={"mode": "raise"})
    assert answer.status_code == 400 and answer.get_json()["type"] == "ValueError"


def test_other_errors_keep_their_codes_in_v2(make_app):
    client = make_app("adder", **V2).test_client()
    assert client.post("/api/v1/perform", data="{", content_type="application/json").status_code == 400
    assert client.post("/api/v1/nothing", json={}).status_code == 404
    assert client.get("/api/v1/perform").status_code == 405


def test_a_body_that_is_not_an_object_is_422_with_detail_in_v2_as_2x_answers(make_app):
    for contract, status in ((V2, 422), (V1, 400)):
        answer = make_app("adder", **contract).test_client().post(
            "/api/v1/perform", data="[1, 2]", content_type="application/json")
        assert answer.status_code == status
        body = answer.get_json()
        assert body["error"] == "the request body must be a JSON object of named arguments, got an array"
        assert (body.get("detail") == body["error"]) is (contract is V2)


def test_health_of_a_ready_job(make_app):
    fatman = make_app("adder", name="adder", version="1.2.3", **V1).test_client().get("/health")
    job = make_app("adder", name="adder", version="1.2.3", **V2).test_client().get("/health")
    assert fatman.status_code == job.status_code == 200
    assert fatman.get_json()["status"] == "ready" and "error" not in fatman.get_json()
    body = job.get_json()
    assert body["status"] == "pass" and body["error"] is None
    assert (body["live"], body["ready"], body["service"], body["job_name"]) == (True, True, "job", "adder")
    old = fatman.get_json()
    assert (old["service"], old["fatman_name"], old["fatman_version"]) == ("fatman", "adder", "1.2.3")
    assert "fatman_name" not in body
    # Every other field as the fatman era's /health has it.
    assert {k: v for k, v in body.items() if k not in ("status", "error", "service")} == {
        k: v for k, v in old.items() if k not in ("status", "service", "fatman_name", "fatman_version")
    }


@pytest.mark.parametrize(
    ("job", "error"),
    [
        ("failing_init", "FileNotFoundError"),
        ("failing_import", "ModuleNotFoundError"),
        ("no_class", "JobLoadError"),
    ],
)
def test_health_of_a_job_that_failed_to_load(make_app, job, error):
    fatman = make_app(job, **V1).test_client()
    client = make_app(job, **V2).test_client()
    old = fatman.get("/health")
    assert old.status_code == 503 and old.get_json()["status"] == "failed"
    answer = client.get("/health")
    assert answer.status_code == 500
    body = answer.get_json()
    assert body["status"] == "fail" and (body["live"], body["ready"]) == (False, False)
    # The type's name only, never the exception's text (it may hold a secret).
    assert body["error"] == error
    assert "model.pkl is missing" not in answer.get_data(as_text=True)
    # /live: 2.x's deployment waits on it, so a job that cannot load is not live there; the fatman
    # era's /live only says the server answers.
    live = client.get("/live")
    assert live.status_code == 500
    assert live.get_json() == {"live": False, "error": error, "deployment_timestamp": None}
    assert "model.pkl is missing" not in live.get_data(as_text=True)
    assert (fatman.get("/live").status_code, fatman.get("/live").get_json()) == (200, {"status": "alive"})
    # /ready keeps the short reason, and the fatman era's answers.
    # /ready: 2.x's 500 {ready: false}, with the fatman era's short reason beside it.
    ready = client.get("/ready")
    old_ready = fatman.get("/ready")
    assert old_ready.status_code == 503 and "ready" not in old_ready.get_json()
    assert ready.status_code == 500 and ready.get_json() == {"ready": False, **old_ready.get_json()}


def test_health_while_the_job_loads(monkeypatch):
    from wrapper_support import BufferedClient, job_path

    from fatman_wrapper import create_app

    monkeypatch.chdir(job_path("slow_init"))
    monkeypatch.setenv("FATMAN_TEST_INIT_SECONDS", "1.0")
    app = create_app(
        "fatman_entrypoint.py",
        root=job_path("slow_init"),
        settings=Settings(timeout=30, **V2),
        background=True,
    )
    app.test_client_class = BufferedClient
    client = app.test_client()
    starting = client.get("/health")
    assert starting.status_code == 500
    assert (starting.get_json()["status"], starting.get_json()["error"]) == ("fail", None)
    # Loading is live: 2.x waits up to 15 minutes for /live, then 10 for /ready.
    live = client.get("/live")
    assert live.status_code == 200
    assert live.get_json() == {"status": "alive", "live": True, "deployment_timestamp": None}
    assert client.get("/ready").get_json() == {"ready": False, "status": "starting"}
    assert client.get("/ready").status_code == 500
    assert client.post("/api/v1/perform", json={"x": 1}).get_json() == 2  # waits for the load
    ready = client.get("/health")
    assert ready.status_code == 200 and ready.get_json()["status"] == "pass"


@pytest.mark.parametrize(
    ("settings", "health_codes", "v2"), [(V1, {"200", "503"}, False), (V2, {"200", "500"}, True)]
)
def test_the_openapi_document_names_the_codes_of_its_era(make_app, settings, health_codes, v2):
    document = make_app("adder", **settings).test_client().get("/openapi.json").get_json()
    assert set(document["paths"]["/health"]["get"]["responses"]) == health_codes
    assert set(document["paths"]["/ready"]["get"]["responses"]) == health_codes
    assert set(document["paths"]["/live"]["get"]["responses"]) == ({"200", "500"} if v2 else {"200"})
    described = document["paths"]["/api/v1/perform"]["post"]["responses"]["400"]["description"]
    assert ("ValueError" in described) is v2


def test_an_empty_body_calls_the_docs_example_in_2x(make_app):
    # Racetrack 2.x: a request without a body is the endpoint's docs example; the fatman era's is {}.
    job = make_app("adder", **V2).test_client()
    fatman = make_app("adder", **V1).test_client()
    assert job.post("/api/v1/perform").get_json() == 100.0  # {"x": 20, "y": 5}
    assert job.post("/api/v1/perform", data=b"  \n").get_json() == 100.0
    assert job.post("/api/v1/perform", json={"x": 2}).get_json() == 2.0  # a body is the arguments
    refused = job.post("/api/v1/perform", json={})  # {} is a body: no example, x is missing
    assert refused.status_code == 400 and "x" in refused.get_json()["error"]
    assert fatman.post("/api/v1/perform").status_code == 400
    # docs_input_examples() gives each auxiliary endpoint its own; one without keeps {}.
    aux = make_app("auxiliary", **V2).test_client()
    for path, example in (("explain", {"x": 1, "y": 2}), ("perform", {"numbers": [40, 2]})):
        assert aux.post(f"/api/v1/{path}").get_json() == aux.post(f"/api/v1/{path}", json=example).get_json()
    assert aux.post("/api/v1/reports/latest").get_json() == {"report": "all good"}
