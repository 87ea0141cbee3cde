"""Overload limit (429), per-request timeout (504) and their settings, in one process."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fatman_wrapper.config import SPARE_THREADS, Settings
from fatman_wrapper.errors import JobLoadError
from fatman_wrapper.limits import CallTimedOut, ConcurrencyLimiter, call_with_timeout


def status_count(metrics_text: str, endpoint: str, status: int) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "fatman_requests_total" and sample.labels == {
                "endpoint": endpoint,
                "status": str(status),
            }:
                return sample.value
    return 0.0


def test_settings_defaults_leave_limits_off():
    settings = Settings.from_env({})
    assert (settings.max_concurrency, settings.request_timeout, settings.graceful_timeout) == (0, 0.0, 30)
    assert settings.worker_threads == settings.threads


def test_settings_queue_defaults_to_the_limit_and_threads_make_room():
    one = {"FATMAN_WORKERS": "1"}
    settings = Settings.from_env({**one, "FATMAN_MAX_CONCURRENCY": "4", "FATMAN_THREADS": "2"})
    assert settings.max_queue == 4
    assert settings.worker_threads == 4 + 4 + SPARE_THREADS
    settings = Settings.from_env(
        {**one, "FATMAN_MAX_CONCURRENCY": "1", "FATMAN_MAX_QUEUE": "0", "FATMAN_THREADS": "16"}
    )
    assert (settings.max_queue, settings.worker_threads) == (0, 16)


@pytest.mark.parametrize(("workers", "concurrency", "queue", "expected"), [
    ("2", "1", None, (1, 1, 1)),  # one call at a time is one worker
    ("2", "4", None, (2, 2, 2)),
    ("2", "3", None, (1, 3, 3)),  # 3 is not shared evenly by 2
    ("4", "6", "2", (2, 3, 1)),
    ("2", "4", "1", (1, 4, 1)),
])
def test_the_overload_limit_is_the_servers_in_all(workers, concurrency, queue, expected):
    env = {"FATMAN_WORKERS": workers, "FATMAN_MAX_CONCURRENCY": concurrency}
    if queue is not None:
        env["FATMAN_MAX_QUEUE"] = queue
    settings = Settings.from_env(env)
    assert (settings.workers, settings.max_concurrency, settings.max_queue) == expected
    assert settings.workers * settings.max_concurrency == int(concurrency)
    assert Settings.from_env({"FATMAN_WORKERS": workers}).workers == int(workers)  # no limit: as asked


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FATMAN_REQUEST_TIMEOUT", "soon", "FATMAN_REQUEST_TIMEOUT='soon' is not a number"),
        ("FATMAN_REQUEST_TIMEOUT", "-1", "is not a finite number of at least 0"),
        ("FATMAN_QUEUE_TIMEOUT", "nan", "is not a finite number of at least 0"),
        ("FATMAN_MAX_CONCURRENCY", "-2", "FATMAN_MAX_CONCURRENCY=-2 is below 0"),
        ("FATMAN_GRACEFUL_TIMEOUT", "1.5", "is not a whole number"),
    ],
)
def test_settings_refuse_malformed_values(name, value, message):
    with pytest.raises(JobLoadError, match=message):
        Settings.from_env({name: value})


def test_limiter_admits_queues_and_refuses():
    limiter = ConcurrencyLimiter(limit=1, queue=1, wait_seconds=5)
    first = limiter.acquire()
    assert first is not None
    admitted = []
    waiter = threading.Thread(target=lambda: admitted.append(limiter.acquire()))
    waiter.start()
    deadline = time.monotonic() + 5
    while limiter.waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert limiter.waiting == 1
    assert limiter.acquire() is None  # running 1 and waiting 1: the third is refused at once
    first.release()
    waiter.join(5)
    assert admitted and admitted[0] is not None and limiter.active == 1
    admitted[0].release()
    admitted[0].release()  # a second release of the same slot gives nothing back twice
    assert limiter.active == 0


def test_limiter_queue_wait_is_bounded():
    limiter = ConcurrencyLimiter(limit=1, queue=5, wait_seconds=0.2)
    slot = limiter.acquire()
    started = time.monotonic()
    assert limiter.acquire() is None
    assert 0.15 < time.monotonic() - started < 2
    assert limiter.waiting == 0
    slot.release()


def test_call_with_timeout_returns_raises_and_gives_up():
    assert call_with_timeout(lambda: 42, 5, name="t") == 42
    with pytest.raises(ZeroDivisionError):
        call_with_timeout(lambda: 1 / 0, 5, name="t")
    finished = threading.Event()

    def slow():
        time.sleep(0.3)
        finished.set()

    limiter = ConcurrencyLimiter(limit=1, queue=0, wait_seconds=0)
    slot = limiter.acquire()
    with pytest.raises(CallTimedOut):
        call_with_timeout(slow, 0.05, name="t", slot=slot)
    slot.release()  # the request is answered; the call still holds the slot
    assert limiter.active == 1
    assert finished.wait(5)
    deadline = time.monotonic() + 5
    while limiter.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert limiter.active == 0


def test_app_answers_429_past_the_limit_but_never_refuses_probes(make_app):
    app = make_app("faults", max_concurrency=1, max_queue=0)
    client = app.test_client()
    results: list[int] = []
    slow = threading.Thread(
        target=lambda: results.append(
            app.test_client().post("/api/v1/perform", json={"mode": "sleep", "seconds": 1}).status_code
        )
    )
    slow.start()
    deadline = time.monotonic() + 5
    limiter = app.wsgi_app.limiter
    while limiter.active == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    refused = client.post("/api/v1/perform", json={"mode": "ok"})
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["type"] == "TooManyRequests" and body["status"] == 429
    assert "FATMAN_MAX_CONCURRENCY" in body["error"]
    assert client.post("/api/v1/pid", json={}).status_code == 429
    for probe in ("/live", "/ready", "/health", "/metrics"):
        assert client.get(probe).status_code == 200, probe
    slow.join(10)
    assert results == [200]
    assert client.post("/api/v1/perform", json={"mode": "ok"}).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert status_count(text, "/api/v1/perform", 429) == 1
    assert status_count(text, "/api/v1/pid", 429) == 1
    assert limiter.active == 0


def test_app_answers_504_and_recovers(make_app):
    app = make_app("faults", request_timeout=0.2)
    client = app.test_client()
    started = time.monotonic()
    response = client.post("/api/v1/perform", json={"mode": "sleep", "seconds": 1.5})
    assert time.monotonic() - started < 1.2
    assert response.status_code == 504
    body = response.get_json()
    assert body["type"] == "GatewayTimeout" and body["status"] == 504
    assert "FATMAN_REQUEST_TIMEOUT" in body["error"]
    # later requests succeed, and the job's own errors still come through the timeout thread
    assert client.post("/api/v1/perform", json={"mode": "ok", "x": 2}).get_json()["x"] == 2
    raised = client.post("/api/v1/perform", json={"mode": "raise"})
    assert raised.status_code == 500 and raised.get_json()["type"] == "ValueError"
    text = client.get("/metrics").get_data(as_text=True)
    assert status_count(text, "/api/v1/perform", 504) == 1
