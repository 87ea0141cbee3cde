"""Our own logic around a job's container, with a stand-in for docker-py's Container."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from racetrack_builder.errors import BuildFailed
from racetrack_builder.smoke import JOB_LOG_TITLE, _published_port, documented_examples, wrapper_warnings


class StoppedContainer:
    """A container that exited before its port was published (engine.Container's shape)."""

    name = "racetrack-job-test"
    published: int | None = None

    def status(self) -> str:
        return "exited" if self.published is None else "running"

    def exit_code(self) -> int | None:
        return 0 if self.published is None else None

    def port(self) -> int | None:
        return self.published

    def logs(self, tail: int = 30) -> list[str]:
        return ["Traceback (most recent call last):", "ImportError: boom"]

    def follow_logs(self) -> Iterator[str]:
        yield from self.logs()

    def remove(self) -> None:
        pass


def test_a_container_that_stopped_at_once_is_the_jobs_failure_not_a_crash() -> None:
    with pytest.raises(BuildFailed, match=r"stopped before it was ready \(exited, exit code 0\)") as exc:
        _published_port(StoppedContainer())
    assert exc.value.log_tail[-1] == "ImportError: boom"
    assert exc.value.log_title == JOB_LOG_TITLE


def test_the_published_port_is_read_from_the_binding() -> None:
    class Running(StoppedContainer):
        published = 49153

    assert _published_port(Running()) == 49153


def test_examples_are_read_from_every_post_operation() -> None:
    doc = {
        "paths": {
            "/api/v1/perform": {
                "post": {"requestBody": {"content": {"application/json": {"example": {"x": 1}}}}}
            },
            "/api/v1/explain": {
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"examples": {"a": {"value": {"y": 2}}, "b": {}}}}
                    }
                }
            },
            "/metrics": {"get": {}},
        }
    }
    assert documented_examples(doc) == [("/api/v1/perform", {"x": 1}), ("/api/v1/explain", {"y": 2})]


def test_wrapper_warnings_are_read_from_the_log_once_each() -> None:
    stamp = "2026-11-28 00:01:03,100 "  # how the wrapper's log lines start
    log = "\n".join(
        [
            "[2026-11-28 00:01:02 +0000] [1] [INFO] Starting gunicorn 27.0.1",
            stamp + "[8] [WARNING] fatman_wrapper.loader: static endpoint /missing: no such file",
            stamp + "[9] [WARNING] fatman_wrapper.loader: static endpoint /missing: no such file",
            "2026-11-28 00:01:03,102 [9] [INFO] fatman_wrapper: job Job ready in 0.00 s",
            stamp + "[9] [WARNING] fatman_wrapper: docs_input_examples() names /x, which is no endpoint",
            "2026-11-28 00:01:03,104 [9] [WARNING] urllib3: unrelated",
        ]
    )
    assert wrapper_warnings(log) == [
        "static endpoint /missing: no such file",
        "docs_input_examples() names /x, which is no endpoint",
    ]


def test_a_failed_start_is_told_by_the_wrappers_error_not_its_raw_json() -> None:
    from racetrack_builder.smoke import _error_of

    body = '{"status": "failed", "type": "JobLoadError", "error": "Job.__init__ raised ValueError"}'
    assert _error_of(body) == "Job.__init__ raised ValueError"
    assert _error_of("<html>oops</html>") == "<html>oops</html>"
