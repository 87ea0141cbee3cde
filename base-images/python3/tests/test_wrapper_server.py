"""The real server process (gunicorn, several workers) on 127.0.0.1."""

from __future__ import annotations

import glob
import json
import os
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from wrapper_server import running_server
from wrapper_support import job_path

pytestmark = pytest.mark.slow


def call(url: str, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST" if data is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def perform_count(metrics_text: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "fatman_requests_total" and sample.labels == {
                "endpoint": "/api/v1/perform",
                "status": "200",
            }:
                return sample.value
    return 0.0


def test_server_serves_job_from_any_folder_and_counts_all_workers(tmp_path):
    metrics_dir = tmp_path / "prom"
    env = {
        "FATMAN_WORKERS": "3",
        "FATMAN_THREADS": "2",
        "FATMAN_NAME": "pkg",
        "FATMAN_VERSION": "1.0.0",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale file of an earlier run")
    with running_server(job_path("job_package"), env=env, cwd=tmp_path) as server:
        assert not (metrics_dir / "counter_999999.db").exists()
        # the job read ./model.txt (2.5) from its root although we started it elsewhere
        status, body = call(server.url + "/api/v1/perform", {"x": 2, "y": 3})
        assert (status, json.loads(body)) == (200, 15.0)
        sent = 1
        pids = set()
        for _ in range(300):  # a new connection each time, so the kernel spreads them over workers
            pids.add(json.loads(call(server.url + "/api/v1/pid", {})[1]))
            assert call(server.url + "/pub/fatman/pkg/1.0.0/api/v1/perform", {"x": 1, "y": 1})[0] == 200
            sent += 1
            if len(pids) >= 2 and sent > 30:
                break
        assert len(pids) >= 2, "the requests should have reached several workers"
        for _ in range(10):  # whichever worker answers, it reports every worker's calls
            status, text = call(server.url + "/metrics")
            assert status == 200
            assert perform_count(text.decode()) == sent
        status, body = call(server.url + "/api/v1/perform", {"x": "nope", "y": 1})
        assert status == 400 and json.loads(body)["fields"][0]["field"] == "x"
        assert call(server.url + "/docs")[0] == 200
        assert glob.glob(str(metrics_dir / "*.db"))


def test_server_stays_up_when_init_fails(tmp_path):
    log = tmp_path / "server.log"
    with running_server(job_path("failing_init"), ready_status=503, log_path=log) as server:
        assert call(server.url + "/live")[0] == 200
        status, body = call(server.url + "/ready")
        assert status == 503 and "raised FileNotFoundError" in json.loads(body)["error"]
        status, body = call(server.url + "/api/v1/perform", {})
        assert status == 503 and json.loads(body)["type"] == "JobNotReady"
        assert server.proc.poll() is None
    assert "model.pkl is missing" in log.read_text()


def test_server_auth_token(tmp_path):
    env = {"FATMAN_AUTH_TOKEN": "tok", "FATMAN_PUBLIC_ENDPOINTS": "/api/v1/parameters", "FATMAN_WORKERS": "1"}
    with running_server(job_path("adder"), env=env) as server:
        assert call(server.url + "/api/v1/perform", {"x": 1})[0] == 401
        assert call(server.url + "/api/v1/perform", {"x": 1}, {"X-Racetrack-Auth": "tok"})[0] == 200
        assert call(server.url + "/api/v1/parameters")[0] == 200


def test_server_removes_its_temporary_metrics_dir(tmp_path):
    log = tmp_path / "server.log"
    with running_server(job_path("adder"), env={"FATMAN_WORKERS": "1"}, log_path=log) as server:
        pass
    assert server.proc.returncode == 0
    text = log.read_text()
    marker = "metrics of all workers in "
    assert marker in text, text
    path = text[text.index(marker) + len(marker) :].split()[0]
    assert "fatman-metrics-" in path
    assert not os.path.exists(path)


def test_run_reports_bad_settings(tmp_path):
    import subprocess
    import sys

    from wrapper_support import server_env

    result = subprocess.run(
        [sys.executable, "-m", "fatman_wrapper", "run", "fatman_entrypoint.py"],
        cwd=job_path("adder"),
        env=server_env(FATMAN_WORKERS="many"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FATMAN_WORKERS='many' is not a whole number" in result.stderr


def test_metrics_folder_falls_back_to_dev_shm_on_a_read_only_root(monkeypatch):
    """readOnlyRootFilesystem leaves no /tmp: /dev/shm, a tmpfs in containers, still takes files."""
    import tempfile

    from fatman_wrapper import server

    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(prefix=None, dir=None):
        if dir is None:
            raise FileNotFoundError(2, "No usable temporary directory found in ['/tmp']")
        return real_mkdtemp(prefix=prefix, dir=dir)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    if not (os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)):
        pytest.skip("this machine has no writable /dev/shm")
    made = server._writable_temp_dir("fatman-metrics-")
    try:
        assert made.startswith("/dev/shm/fatman-metrics-")
    finally:
        os.rmdir(made)


def test_no_writable_folder_at_all_names_the_fix(monkeypatch):
    import tempfile

    from fatman_wrapper import server
    from fatman_wrapper.errors import JobLoadError

    def mkdtemp(prefix=None, dir=None):
        raise FileNotFoundError(2, "No usable temporary directory found in ['/tmp']")

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(JobLoadError, match="no writable folder for the workers' shared metrics") as exc:
        server._writable_temp_dir("fatman-metrics-")
    assert "--tmpfs /tmp" in exc.value.hint and "PROMETHEUS_MULTIPROC_DIR" in exc.value.hint
