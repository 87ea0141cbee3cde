"""GET /metrics: per-endpoint requests, errors and durations plus the job's own metrics."""

from __future__ import annotations

import logging

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str):
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_requests_errors_and_durations_per_endpoint(make_app):
    client = make_app("auxiliary").test_client()
    for _ in range(3):
        client.post("/api/v1/perform", json={"numbers": [1]})
    client.post("/api/v1/explain", json={"x": "bad"})
    client.post("/api/v1/boom", json={})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    # One charset parameter: a doubled one is rejected by strict scrapers.
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = samples(response.get_data(as_text=True))
    assert found[("fatman_requests_total", (("endpoint", "/api/v1/perform"), ("status", "200")))] == 3
    assert found[("fatman_requests_total", (("endpoint", "/api/v1/explain"), ("status", "400")))] == 1
    assert found[("fatman_requests_total", (("endpoint", "/api/v1/boom"), ("status", "500")))] == 1
    assert found[("fatman_request_errors_total", (("endpoint", "/api/v1/boom"),))] == 1
    assert ("fatman_request_errors_total", (("endpoint", "/api/v1/perform"),)) not in found
    assert found[("fatman_request_duration_seconds_count", (("endpoint", "/api/v1/perform"),))] == 3
    assert found[("fatman_request_duration_seconds_sum", (("endpoint", "/api/v1/perform"),))] > 0


def test_unknown_paths_share_one_label(make_app):
    client = make_app("adder").test_client()
    for path in ("/a", "/b", "/c/d"):
        client.get(path)
    client.post("/api/v1/x1", json={})
    client.post("/api/v1/x2", json={})
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert found[("fatman_requests_total", (("endpoint", "unmatched"), ("status", "404")))] == 3
    assert found[("fatman_requests_total", (("endpoint", "/api/v1/<unknown>"), ("status", "404")))] == 2


def test_requests_refused_before_their_handler_count_under_their_routes_label(make_app):
    client = make_app("auxiliary", auth_token="t0ken").test_client()
    for path in ("/api/v1/perform", "/api/v1/explain", "/api/v1/nowhere", "/docs/static/x.js", "/nowhere"):
        assert client.post(path).status_code == 401, path
    found = samples(client.get("/metrics", headers={"X-Racetrack-Auth": "t0ken"}).get_data(as_text=True))
    for label in ("/api/v1/perform", "/api/v1/explain", "/api/v1/<unknown>", "/docs/static", "unmatched"):
        assert found[("fatman_requests_total", (("endpoint", label), ("status", "401")))] == 1, label


def test_job_metrics_with_descriptions_and_labels(make_app):
    client = make_app("metrics").test_client()
    client.post("/api/v1/perform", json={"x": 1})
    text = client.get("/metrics").get_data(as_text=True)
    assert "# HELP fatman_is_crazy Whether your fatman is crazy or not" in text
    found = samples(text)
    assert found[("fatman_is_crazy", (("color", "blue"),))] == 0.25
    assert found[("fatman_is_crazy", (("color", "red"),))] == 0.75
    assert found[("fatman_perform_calls_seen", ())] == 1
    assert found[("fatman_custom_metrics_up", ())] == 1


def test_failing_job_metrics_do_not_break_metrics(make_app, caplog):
    client = make_app("failing_metrics").test_client()
    client.post("/api/v1/perform")
    with caplog.at_level(logging.ERROR):
        response = client.get("/metrics")
    assert response.status_code == 200
    found = samples(response.get_data(as_text=True))
    assert found[("fatman_custom_metrics_up", ())] == 0
    assert found[("fatman_requests_total", (("endpoint", "/api/v1/perform"), ("status", "200")))] == 1
    assert "metrics backend is down" in caplog.text


def test_malformed_job_metrics_are_skipped(tmp_path, make_app):
    (tmp_path / "fatman_entrypoint.py").write_text(
        "class E:\n    def perform(self):\n        return 1\n"
        "    def metrics(self):\n"
        "        return [{'name': 'bad name', 'value': 1}, {'name': 'ok_metric', 'value': 'x'},"
        " 'junk', {'name': 'good_metric', 'value': 2}]\n"
    )
    client = make_app("", root=tmp_path).test_client()
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert found[("good_metric", ())] == 2
    assert not any(name in ("ok_metric", "bad name") for name, _ in found)


def test_job_metrics_named_like_the_wrappers_are_skipped(tmp_path, make_app, caplog):
    # Each would give a second "# TYPE" line for a name the wrapper already exposes (or a sample
    # name one of its families produces), which strict Prometheus parsers refuse.
    clashing = [
        "fatman_requests_total",
        "fatman_requests",
        "fatman_request_errors_total",
        "fatman_request_duration_seconds_bucket",
        "fatman_request_duration_seconds_count",
        "fatman_custom_metrics_up",
    ]
    items = ", ".join(f"{{'name': {name!r}, 'value': 7}}" for name in clashing)
    (tmp_path / "fatman_entrypoint.py").write_text(
        "class E:\n    def perform(self):\n        return 1\n"
        f"    def metrics(self):\n        return [{items}, {{'name': 'fatman_requests_seen', 'value': 3}}]\n"
    )
    client = make_app("", root=tmp_path).test_client()
    client.post("/api/v1/perform")
    with caplog.at_level(logging.WARNING, logger="fatman_wrapper.metrics"):
        text = client.get("/metrics").get_data(as_text=True)
    type_lines = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(type_lines) == len(set(type_lines)), type_lines
    found = samples(text)
    assert found[("fatman_requests_seen", ())] == 3
    assert found[("fatman_requests_total", (("endpoint", "/api/v1/perform"), ("status", "200")))] == 1
    assert found[("fatman_custom_metrics_up", ())] == 1
    assert not any(value == 7 for value in found.values())
    for name in clashing:
        assert f"skipping metric {name}: " in caplog.text
    assert "rename it" in caplog.text


def test_last_call_timestamp_follows_the_jobs_calls(make_app):
    import time

    client = make_app("auxiliary").test_client()
    assert samples(client.get("/metrics").get_data(as_text=True))[("last_call_timestamp", ())] == 0
    client.get("/health")
    client.get("/api/v1/parameters")  # probes and documentation are no calls
    assert samples(client.get("/metrics").get_data(as_text=True))[("last_call_timestamp", ())] == 0
    before = time.time()
    client.post("/api/v1/explain", json={"x": 1, "y": 2})  # an auxiliary endpoint counts too
    stamp = samples(client.get("/metrics").get_data(as_text=True))[("last_call_timestamp", ())]
    assert before - 1 <= stamp <= time.time() + 1


def test_a_db_file_being_created_by_another_worker_is_left_out(tmp_path) -> None:
    """prometheus_client creates a worker's file empty and sizes it after: /metrics in between
    answered 500 (struct.error) before."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    from fatman_wrapper.metrics import WorkerFiles

    written = MmapedDict(str(tmp_path / "counter_1.db"))
    key = mmap_key("fatman_requests_total", "fatman_requests_total", [], [], "Requests.")
    written.write_value(key, 3.0, 0.0)
    written.close()
    (tmp_path / "counter_2.db").touch()  # another worker, between open() and truncate()
    registry = CollectorRegistry()
    registry.register(WorkerFiles(str(tmp_path)))
    assert "fatman_requests_total 3.0" in generate_latest(registry).decode()
