"""Findings of the security audit, each reproduced as it was reported on 127.0.0.1 (findings 4-13)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from wrapper_server import running_server
from wrapper_support import job_path

from fatman_wrapper.auth import TokenGuard
from fatman_wrapper.signature import MAX_PROBLEMS, TEXT_LIMIT

ECHO_JOB = """\
from typing import Any


class EchoEntrypoint:
    def perform(self, data: Any = None) -> Any:
        return data

    def auxiliary_endpoints(self):
        return {"/nested": self.nested, "/fail": self.fail}

    def nested(self, depth: int, leaf: Any = "nan") -> Any:
        value = float("nan") if leaf == "nan" else leaf
        for _ in range(depth):
            value = [value]
        return {"result": value}

    def fail(self, text: str) -> Any:
        raise ValueError(text)
"""


def _job(root: Path, source: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "fatman_entrypoint.py").write_text(source)
    return root


@pytest.fixture
def echo(make_app, tmp_path):
    return make_app("", root=_job(tmp_path / "echo", ECHO_JOB)).test_client()


# 4. One request could take a gigabyte: every problem of a body of unknown keys was listed.


def test_a_body_of_many_unknown_keys_lists_the_first_problems_and_counts_the_rest(make_app):
    client = make_app("adder").test_client()
    keys = 200_000
    body = "{" + ",".join(f'"k{i}":0' for i in range(keys)) + "}"
    response = client.post("/api/v1/perform", data=body, content_type="application/json")
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["type"] == "ValidationError"
    assert len(answer["fields"]) == MAX_PROBLEMS
    # Every unknown key and the missing x are problems: the ones not listed are counted.
    assert answer["fields_omitted"] == keys + 1 - MAX_PROBLEMS
    assert f"and {keys + 1 - MAX_PROBLEMS} more problem(s)" in answer["error"]
    assert len(response.get_data()) < 20_000  # was 1,000 times the body's size per problem listed


def test_a_huge_key_or_value_is_not_echoed_back_whole(make_app):
    client = make_app("adder").test_client()
    response = client.post("/api/v1/perform", json={"k" * 1_000_000: 1, "x": "y" * 1_000_000})
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert all(len(f["field"]) <= TEXT_LIMIT and len(f["problem"]) <= TEXT_LIMIT for f in fields)
    assert len(response.get_data()) < 5_000


def test_a_few_problems_are_all_listed_without_a_count(make_app):
    client = make_app("adder").test_client()
    answer = client.post("/api/v1/perform", json={"x": "a", "z": 1}).get_json()
    assert {f["field"] for f in answer["fields"]} == {"x", "z"}
    assert "fields_omitted" not in answer


# 5. A JSON lone surrogate gave a 500 with a traceback.


def test_a_lone_surrogate_echoed_back_is_valid_json(echo):
    response = echo.post("/api/v1/perform", data=b'{"data":"\\ud800 x"}', content_type="application/json")
    assert response.status_code == 200
    body = response.get_data()
    body.decode("utf-8")  # strict UTF-8
    assert body == b'"\\ud800 x"'
    assert json.loads(body) == "\ud800 x"


def test_a_lone_surrogate_in_an_unknown_key_gives_the_wrappers_400(make_app):
    client = make_app("adder").test_client()
    body = b'{"nope\\ud800":1,"x":1}'
    response = client.post("/api/v1/perform", data=body, content_type="application/json")
    assert response.status_code == 400
    answer = json.loads(response.get_data().decode("utf-8"))
    assert answer["type"] == "ValidationError"
    assert answer["fields"][0]["field"] == "nope\ud800"


def test_a_lone_surrogate_in_a_jobs_exception_gives_its_500(echo):
    response = echo.post("/api/v1/fail", data=b'{"text":"bad \\udfff"}', content_type="application/json")
    assert response.status_code == 500
    answer = json.loads(response.get_data().decode("utf-8"))
    assert answer == {"error": "bad \udfff", "type": "ValueError", "status": 500}


# 6. A result nested about 900 deep that holds a NaN gave a RecursionError 500.


def test_a_deeply_nested_result_with_a_nan_answers_null_in_its_place(echo):
    response = echo.post("/api/v1/nested", json={"depth": 900})
    assert response.status_code == 200, response.get_data()[:300]
    text = response.get_data(as_text=True)
    assert text == '{"result":' + "[" * 900 + "null" + "]" * 900 + "}"


def test_non_finite_floats_in_strings_and_keys_are_left_alone():
    from fatman_wrapper.encoding import dumps_result

    value = {"NaN": [float("nan"), 'say "NaN" or -Infinity', float("-inf")], "Infinity": float("inf")}
    assert json.loads(dumps_result(value)) == {
        "NaN": [None, 'say "NaN" or -Infinity', None],
        "Infinity": None,
    }


def test_a_result_too_deep_to_encode_is_an_encoding_error(echo):
    response = echo.post("/api/v1/nested", json={"depth": 100_000, "leaf": 1})
    assert response.status_code == 500
    assert response.get_json()["type"] == "EncodingError"


# 7. The webview static/ folder was served when it is a symlink out of the job root.


def test_a_static_folder_linking_out_of_the_job_root_is_not_served(make_app, copied_job, tmp_path):
    root = copied_job("webview")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    for child in (root / "static").iterdir():
        child.unlink()
    (root / "static").rmdir()
    os.symlink("../outside", root / "static")
    client = make_app("", root=root).test_client()
    for path in ("/webview/static/secret.txt", "/api/v1/webview/static/secret.txt"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"top secret" not in response.get_data()


def test_a_static_folder_linking_inside_the_job_root_is_served(make_app, copied_job):
    root = copied_job("webview")
    os.rename(root / "static", root / "public")
    os.symlink("public", root / "static")
    client = make_app("", root=root).test_client()
    assert client.get("/webview/static/style.css").status_code == 200


# 10. The double-slash redirect trusted the Host header.


def test_a_double_slash_is_404_not_a_redirect_to_the_host_header(make_app):
    client = make_app("webview", auth_token="t", public_endpoints=("/webview/static",)).test_client()
    for path in ("/webview/static//style.css", "/api/v1/webview/static//style.css", "//docs"):
        response = client.get(path, headers={"Host": "evil.example"})
        assert response.status_code in (401, 404), path
        assert "Location" not in response.headers, path
    assert client.get("/webview/static//style.css", headers={"Host": "evil.example"}).status_code == 404


def test_the_wrappers_own_redirects_are_relative(make_app):
    client = make_app("static").test_client()
    evil = {"Host": "evil.example"}
    assert client.get("/api/v1/assets", headers=evil).headers["Location"] == "/api/v1/assets/"
    assert client.get("/", headers=evil).headers["Location"] == "/docs"
    from fatman_wrapper.views import local_redirect

    assert local_redirect("//evil.example/docs", 302).headers["Location"] == "/evil.example/docs"


# 11. /health served the text of an ImportError.

DSN = "postgres://admin:s3cret@db/x"


@pytest.mark.parametrize(
    "source,shown",
    [
        (f"raise ImportError('cannot reach {DSN}')\n", "ImportError (its message"),
        (
            f"raise ModuleNotFoundError('{DSN}', name='psycopg2')\n",
            "ModuleNotFoundError: No module named 'psycopg2'",
        ),
        (f"raise ImportError('{DSN}', name='dbdriver')\n", "ImportError in importing module 'dbdriver'"),
        (f"raise SyntaxError('{DSN}')\n", "SyntaxError (its message"),
        (f"x = '{DSN}' +\n", "SyntaxError in fatman_entrypoint.py line 1"),
    ],
)
def test_import_errors_answer_their_type_and_names_never_their_text(
    make_app, tmp_path, caplog, source, shown
):
    caplog.set_level(logging.ERROR, logger="fatman_wrapper")
    client = make_app("", root=_job(tmp_path / "job", source)).test_client()
    for path in ("/health", "/ready", "/api/v1/perform", "/openapi.json"):
        text = client.get(path).get_data(as_text=True)
        assert "s3cret" not in text and "postgres://" not in text, path
    assert shown in client.get("/health").get_json()["error"]
    assert "s3cret" in caplog.text  # the log keeps everything


# 12. A slow __init__ starved the probes.


@pytest.mark.slow
def test_probes_answer_within_a_second_while_requests_wait_for_a_slow_init():
    requests = 16  # more than the worker's 8 threads
    env = {"FATMAN_TEST_INIT_SECONDS": "6", "FATMAN_WORKERS": "1", "FATMAN_TIMEOUT": "60"}
    with running_server(job_path("slow_init"), env=env, ready_status=503) as server:
        results: list[tuple[int, dict, str | None]] = []

        def perform() -> None:
            request = urllib.request.Request(
                server.url + "/api/v1/perform",
                data=b'{"x": 1}',
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    results.append((response.status, json.loads(response.read()), None))
            except urllib.error.HTTPError as exc:
                results.append((exc.code, json.loads(exc.read()), exc.headers.get("Retry-After")))

        threads = [threading.Thread(target=perform) for _ in range(requests)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # the requests reach the worker and wait (or are refused)
        for probe, status in (("/live", 200), ("/ready", 503), ("/health", 503)):
            started = time.monotonic()
            try:
                with urllib.request.urlopen(server.url + probe, timeout=5) as response:
                    code = response.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            assert time.monotonic() - started < 1.0, probe
            assert code == status, probe
        for thread in threads:
            thread.join(timeout=40)
    assert len(results) == requests
    waited = [body for code, body, _ in results if code == 200]
    refused = [(body, retry) for code, body, retry in results if code == 503]
    # Up to 6 (the threads but the 2 spare ones) waited for the job instead of failing...
    assert 1 <= len(waited) <= 6 and all(body == 2 for body in waited)
    # ...and the rest were told at once to come back.
    assert len(waited) + len(refused) == requests
    assert all(body["type"] == "JobNotReady" and retry == "1" for body, retry in refused)


def test_only_some_requests_wait_for_a_loading_job():
    from fatman_wrapper.app import load_waiters
    from fatman_wrapper.errors import ApiError
    from fatman_wrapper.holder import JobHolder

    holder = JobHolder(lambda: None, wait_seconds=30, max_waiting=1)  # type: ignore[arg-type,return-value]
    waiting = threading.Thread(target=holder.wait_loaded, daemon=True)
    waiting.start()
    time.sleep(0.1)
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        holder.require()
    assert time.monotonic() - started < 0.5
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
    assert [load_waiters(n) for n in (1, 2, 3, 8)] == [0, 1, 1, 6]


# 13. Public endpoints opened the wrong things.


def test_the_spec_path_of_webview_static_files_can_be_made_public(make_app):
    client = make_app("webview", auth_token="t", public_endpoints=("/webview/static",)).test_client()
    assert client.get("/webview/static/style.css").status_code == 200
    assert client.get("/api/v1/webview/static/style.css").status_code == 200
    assert client.get("/api/v1/webview/").status_code == 401


@pytest.mark.parametrize("public", ["/", "/api", "/api/v1"])
def test_a_path_above_the_api_opens_the_job_not_the_wrappers_pages(make_app, public):
    client = make_app("webview", auth_token="t", public_endpoints=(public,)).test_client()
    for path in ("/api/v1/perform", "/api/v1/webview/", "/webview/static/style.css"):
        assert client.get(path).status_code != 401, path
    for path in ("/metrics", "/docs", "/docs/static/swagger-ui.css", "/openapi.json", "/"):
        assert client.get(path).status_code == 401, path


def test_the_wrappers_pages_open_when_named():
    guard = TokenGuard("t", ["/docs", "/openapi.json"])
    assert guard.is_exempt("/docs") and guard.is_exempt("/docs/static/swagger-ui.css")
    assert guard.is_exempt("/openapi.json")
    assert not guard.is_exempt("/metrics") and not guard.is_exempt("/api/v1/perform")
    assert TokenGuard("t", ["/metrics"]).is_exempt("/metrics")
