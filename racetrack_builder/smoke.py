"""Start a built job image and prove it serves: ready, and every documented example answers 2xx.

The job type's contract says ``docs_input_example(s)`` must give inputs whose result is "not
erroneous", so ``--smoke-test`` holds the build to it. Examples are read from the job's own
``/openapi.json``, which the wrapper generates from those methods, so nothing here re-implements
the wrapper's discovery.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import reporting
from .engine import Container, Engine
from .errors import BuildFailed

# As long as the image's HEALTHCHECK start period: a model may take minutes to load in __init__.
READY_TIMEOUT = 300.0
REQUEST_TIMEOUT = 60.0


@dataclass(frozen=True)
class ExampleResult:
    path: str
    status: int
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _NoAnswer(Exception):
    """A request that got no HTTP answer (refused, closed, timed out, not HTTP). Never leaves this
    module: the callers turn it into BuildFailed or treat it as "not ready yet"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _why(error: object, timeout: float) -> str:
    """A failed request's cause in a few words."""
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(error, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
        return "the job closed the connection without answering"
    if isinstance(error, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(error, http.client.HTTPException):
        return f"the answer was not valid HTTP ({type(error).__name__})"
    return str(error) or type(error).__name__


def _request(url: str, body: Any | None = None, timeout: float | None = None) -> tuple[int, str]:
    """(status, body) of a GET, or a POST of ``body`` as JSON; :class:`_NoAnswer` when no HTTP answer
    comes back within ``timeout`` seconds (default :data:`REQUEST_TIMEOUT`; per read, so a job that
    keeps sending is not cut off)."""
    timeout = REQUEST_TIMEOUT if timeout is None else timeout
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json"} if data else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            return exc.code, ""  # the status came; the body was cut off
    except urllib.error.URLError as exc:  # connecting failed: the cause is in .reason
        raise _NoAnswer(_why(exc.reason, timeout)) from exc
    except (OSError, http.client.HTTPException) as exc:  # RemoteDisconnected, TimeoutError reading
        raise _NoAnswer(_why(exc, timeout)) from exc


_PROBES = ("/live", "/ready", "/health")


def job_endpoints(base_url: str) -> list[tuple[str, str]]:
    """(METHOD, path) of what the running job serves, from its own OpenAPI document, probes left
    out; empty when the document cannot be read (``run`` then names only perform)."""
    try:
        status, body = _request(base_url + "/openapi.json")
        paths = json.loads(body)["paths"] if status == 200 else {}
    except (_NoAnswer, ValueError, KeyError, TypeError):
        return []
    if not isinstance(paths, dict):
        return []
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        if path not in _PROBES and isinstance(operations, dict)
        for method in operations
    ]


def gateway_prefixes(base_url: str) -> list[str]:
    """The gateway prefixes the running job also answers under, ``/pub/job/NAME/VERSION`` (Racetrack
    2.x's) and ``/pub/fatman/NAME/VERSION``, for the name and version its ``/health`` reports; empty
    when it reports none (an image built without them) or cannot be read."""
    try:
        status, body = _request(base_url + "/health")
        health = json.loads(body) if status in (200, 500, 503) else {}
        name, version = health.get("job_name"), health.get("job_version")
    except (_NoAnswer, ValueError, AttributeError):
        return []
    if not (isinstance(name, str) and isinstance(version, str) and name and version):
        return []
    return [f"/pub/job/{name}/{version}", f"/pub/fatman/{name}/{version}"]


def _error_of(body: str) -> str:
    """The ``error`` of a JSON answer of the wrapper, else the answer itself (shortened)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    return str(error) if error else body[:1000]


def wait_ready(base_url: str, container: Container, timeout: float = READY_TIMEOUT) -> None:
    """Poll ``/ready`` until it answers 200; fail with the job's own error or the container's log."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if container.status() in ("exited", "dead"):
            raise BuildFailed(
                "the job's container stopped before it was ready",
                log_tail=container.logs(),
                log_title=JOB_LOG_TITLE,
            )
        try:
            status, body = _request(base_url + "/ready", timeout=5)
        except _NoAnswer as exc:
            last = exc.reason  # still starting: the port is published before gunicorn listens
        else:
            if status == 200:
                return
            last = f"{status} {body[:500]}"
            # 503 (500 from a job.yaml's image, as Racetrack 2.x answers) naming the load's error.
            if status in (500, 503) and "error" in body:
                raise BuildFailed(
                    f"the job failed to start: {_error_of(body)}",
                    log_tail=container.logs(),
                    log_title=JOB_LOG_TITLE,
                    hint="the entrypoint's import or __init__ raised; its log below says where",
                )
        time.sleep(0.25)
    starting = '"starting"' in last
    raise BuildFailed(
        f"the job was not ready after {timeout:.0f}s (last answer: {last})",
        log_tail=container.logs(),
        log_title=JOB_LOG_TITLE,
        hint=(
            "its __init__ was still running: give it longer with --ready-timeout SECONDS"
            if starting
            else "the job's log below says why; --ready-timeout SECONDS waits longer"
        ),
    )


def documented_examples(openapi: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(path, JSON body) for every example input in an OpenAPI document."""
    found: list[tuple[str, Any]] = []
    for path, operations in (openapi.get("paths") or {}).items():
        post = (operations or {}).get("post") if isinstance(operations, dict) else None
        content = (((post or {}).get("requestBody") or {}).get("content") or {}).get("application/json") or {}
        if "example" in content:
            found.append((path, content["example"]))
        for example in (content.get("examples") or {}).values():
            if isinstance(example, dict) and "value" in example:
                found.append((path, example["value"]))
    return found


def call_examples(base_url: str, container: Container) -> list[ExampleResult]:
    """Send every documented example to the ready job at ``base_url``; BuildFailed, with the tail of
    ``container``'s log, when its OpenAPI document or an example gets no answer at all."""
    try:
        status, text = _request(base_url + "/openapi.json")
    except _NoAnswer as exc:
        raise BuildFailed(
            f"the job did not answer GET /openapi.json: {exc.reason}",
            hint="the wrapper serves it once ready; the job's log below says what happened",
            log_tail=container.logs(),
            log_title=JOB_LOG_TITLE,
        ) from exc
    if status != 200:
        raise BuildFailed(
            f"the job's /openapi.json answered {status}",
            log_tail=text.splitlines()[-10:],
            log_title="Its answer:",
        )
    try:
        examples = documented_examples(json.loads(text))
    except (ValueError, AttributeError, TypeError) as exc:
        raise BuildFailed(
            "the job's /openapi.json is not an OpenAPI document (JSON with \"paths\")",
            hint="a job must not serve /openapi.json itself: the wrapper generates it",
            log_tail=text.splitlines()[:10],
            log_title="Its answer:",
        ) from exc
    results = []
    for number, (path, body) in enumerate(examples, start=1):
        try:
            code, answer = _request(base_url + path, body)
        except _NoAnswer as exc:
            raise BuildFailed(
                f"documented example {number} of {len(examples)} (POST {path}) got no answer: {exc.reason}",
                hint=_no_answer_hint(exc.reason),
                log_tail=container.logs(),
                log_title=JOB_LOG_TITLE,
            ) from exc
        results.append(ExampleResult(path=path, status=code, body=answer[:500]))
    return results


def _no_answer_hint(reason: str) -> str:
    if reason.startswith("no answer within"):
        return (f"the smoke test waits {REQUEST_TIMEOUT:g}s for each example: give "
                "docs_input_example(s) an input the job answers quickly, or make the job faster")
    return ("the job's worker ended without answering (it crashed, was killed for memory, or ran past "
            "FATMAN_TIMEOUT): its log below says why; fix the job or give the example an input it handles")


@contextlib.contextmanager
def running(
    engine: Engine,
    image: str,
    environment: Mapping[str, str],
    *,
    name: str | None = None,
    host_port: int | None = None,
) -> Iterator[tuple[Container, str]]:
    """Run ``image`` with its port on 127.0.0.1; yield (container, base URL); always remove it.

    The container is named before it is created, so one whose start was interrupted (Ctrl-C while
    the engine creates it) is still found and removed.
    """
    name = name or f"racetrack-job-{uuid.uuid4().hex[:12]}"
    try:
        container = engine.run(image, environment=environment, name=name, host_port=host_port)
    except BaseException:
        with contextlib.suppress(Exception):
            engine.remove_container(name)
        raise
    try:
        yield container, f"http://127.0.0.1:{_published_port(container)}"
    finally:
        with contextlib.suppress(Exception):
            container.remove()


JOB_LOG_TITLE = "Last lines of the job's log:"


def _published_port(container: Container) -> int:
    """The host port of the wrapper's port. A container that already stopped has none: that is the
    job failing at start (an import-time crash, a file that shadows the wrapper), not our error."""
    port = container.port()
    if port is not None:
        return port
    code = container.exit_code()
    raise BuildFailed(
        f"the job's container stopped before it was ready ({container.status()}, exit code "
        f"{'?' if code is None else code})",
        log_tail=container.logs(),
        log_title=JOB_LOG_TITLE,
        hint="the job's log below says why; `racetrack-build run` shows it as the job starts",
    )


_WRAPPER_WARNING = re.compile(r"\[WARNING\] fatman_wrapper[\w.]*: (.*)")


def wrapper_warnings(log: str) -> list[str]:
    """What the wrapper warned about while loading and serving the job (a static endpoint whose
    file is missing, an example for no endpoint, a skipped metric), in the order logged, once each.
    Workers each load the job, so each warning comes once per worker."""
    seen: dict[str, None] = {}
    for line in log.splitlines():
        match = _WRAPPER_WARNING.search(line)
        if match:
            seen.setdefault(match.group(1).strip(), None)
    return list(seen)


def smoke_test(
    engine: Engine,
    image: str,
    environment: Mapping[str, str],
    ready_timeout: float = READY_TIMEOUT,
) -> list[ExampleResult]:
    """Start ``image``, wait until ready and send every documented example; BuildFailed unless all
    2xx. Each warning the wrapper logged meanwhile is reported: they pass the smoke test, but are
    the job's mistakes all the same."""
    with running(engine, image, environment) as (container, base_url):
        wait_ready(base_url, container, timeout=ready_timeout)
        reporting.progress(f"{image} is ready; calling the documented examples")
        results = call_examples(base_url, container)
        for warning in wrapper_warnings("\n".join(container.logs(tail=500))):
            reporting.warn(f"the job logged: {warning}")
    failed = [r for r in results if not r.ok]
    if failed:
        lines = [f"POST {r.path} -> {r.status}: {r.body}" for r in failed]
        raise BuildFailed(
            f"{len(failed)} of {len(results)} documented examples did not answer 2xx",
            hint="docs_input_example(s) must give inputs the job answers without an error: "
            "fix the example or the job",
            log_tail=lines,
            log_title="Examples that failed:",
        )
    return results
