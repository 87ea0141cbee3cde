"""Every Racetrack 2.x example (``examples/v2-*``, described by a ``job.yaml``) builds from a real git
repository through the CLI, and its image answers as a 2.x job: under ``/pub/job/<name>/<version>``
and the fatman era's ``/pub/fatman/<name>/<version>``, with ``JobEntrypoint`` classes, auxiliary
endpoints, structured JSON log lines carrying the tracing id and the caller's name, and a chain call
from ``v2-chain-caller`` to ``v2-chain-callee`` with both jobs running.

The examples are committed into one bare repository laid out like this project (``examples/<name>``
on ``main``). A job.yaml's ``git.remote`` must be an ``https://`` URL (as in Racetrack 2.x), so the
repository is served by ``git http-backend`` over TLS on 127.0.0.1 with a certificate made here,
which git trusts through ``GIT_SSL_CAINFO``. pip inside the builds is pointed at the suite's local
index (``--network host``). Each example is built once per module and shared by the tests below.

Containers run with host networking, each listening on 127.0.0.1 on a port of its own
(``FATMAN_HOST``/``FATMAN_PORT``, see ``jobs.serve``), so the caller reaches the callee over loopback,
never through a bridge address.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import socketserver
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import docker
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from racetrack_builder.job import load_job
from tests import gitrepos
from tests.integration.jobs import (
    CliResult,
    DockerCleanup,
    JobServer,
    client_manifest,
    env_file,
    example_files,
    example_manifest,
    example_manifest_file,
    examples_tree,
    image_secret_hits,
    openapi_examples,
    run_cli,
    serve,
    v2_example_names,
)

pytestmark = pytest.mark.docker

REMOTE = "v2-examples.git"
MAIN = "main"
BASE_IMAGE = "racetrack/python3:latest"
TRACING_HEADER = "X-Request-Tracing-Id"
CALLER_HEADER = "X-Caller-Name"
CALLEE = "v2-chain-callee"
CALLER = "v2-chain-caller"


@dataclass(frozen=True)
class BuiltExample:
    """A v2 example built into an image by the CLI."""

    name: str
    tag: str
    manifest: dict[str, Any]  # as handed to the CLI (remote rewritten)
    result: CliResult
    commit: str

    @property
    def job_name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "0.0.1"))

    @property
    def prefixes(self) -> tuple[str, str]:
        """Racetrack 2.x's gateway prefix and the fatman era's."""
        return (f"/pub/job/{self.job_name}/{self.version}", f"/pub/fatman/{self.job_name}/{self.version}")


class HttpsGitServer(gitrepos.GitHttpServer):
    """``GitHttpServer`` over TLS: ``https://127.0.0.1:PORT/NAME``, with ``certificate`` and ``key``
    (a certificate for ``IP:127.0.0.1``) as the server's identity."""

    def __init__(self, base_path: Path, *, certificate: Path, key: Path) -> None:
        super().__init__(base_path)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificate, key)

    def _server_class(self) -> type[WSGIServer]:
        # Each connection's TLS handshake in a thread of its own: with the listening socket wrapped
        # instead, every handshake runs in the accept of the one serving thread, so a client that
        # stalls in its handshake holds up every other clone.
        context = self.context

        class TLSServer(socketserver.ThreadingMixIn, WSGIServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                try:
                    tls = context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # that connection only
                try:
                    super().finish_request(tls, client_address)
                finally:
                    tls.close()

        return TLSServer

    def url(self, name: str, *, credentials: bool = False) -> str:
        return "https://" + super().url(name, credentials=credentials).removeprefix("http://")


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for IP:127.0.0.1, made with openssl; the certificate is its own CA."""
    certificate, key = folder / "git-server.pem", folder / "git-server-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True, timeout=60)
    return certificate, key


@dataclass(frozen=True)
class HttpsRemote:
    """The examples' bare repository and its https:// clone URL, with the CA git must trust."""

    bare: Path
    url: str
    ca_file: Path


@pytest.fixture(scope="module")
def examples_remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsRemote]:
    """A bare repository with every v2 example on ``main``, served over https on 127.0.0.1."""
    base = tmp_path_factory.mktemp("v2-examples-remotes")
    bare = gitrepos.make_bare_repo(base / REMOTE, examples_tree(v2_example_names()), branch=MAIN)
    certificate, key = _self_signed_certificate(tmp_path_factory.mktemp("v2-git-tls"))
    with HttpsGitServer(base, certificate=certificate, key=key) as server:
        yield HttpsRemote(bare, server.url(REMOTE), certificate)


@pytest.fixture(scope="module")
def shared_images(docker_client: docker.DockerClient) -> Iterator[DockerCleanup]:
    tracker = DockerCleanup(docker_client)
    yield tracker
    problems = tracker.remove_all()
    if problems:
        pytest.fail("could not remove the v2 examples' images: " + "; ".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def build_example(
    examples_remote: HttpsRemote,
    shared_images: DockerCleanup,
    base_image: str,
    public_index: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], BuiltExample]:
    """``build(name) -> BuiltExample``: the example built once per module (later calls reuse it),
    from its own job.yaml with ``git.remote`` pointed at ``examples_remote``. Fails the calling test
    when the CLI does not exit 0."""
    built: dict[str, BuiltExample] = {}
    clients = tmp_path_factory.mktemp("v2-example-clients")

    def build(name: str) -> BuiltExample:
        if name in built:
            return built[name]
        assert example_manifest_file(name) == "job.yaml", f"examples/{name} is a v2 example without job.yaml"
        manifest_path = client_manifest(clients / name, name, remote=examples_remote.url,
                                        build_env={"PIP_INDEX_URL": public_index})
        assert manifest_path.name == "job.yaml"
        tag = shared_images.image_tag(f"example-{name}")
        result = run_cli("build", manifest_path, "--network", "host", "--tag", tag, "--json",
                         env={"GIT_SSL_CAINFO": str(examples_remote.ca_file)})
        assert result.returncode == 0, result.describe()
        # Shown with `pytest -rP`.
        print(f"built examples/{name} in {result.duration:.1f}s")
        branch = example_manifest(name)["git"].get("branch") or MAIN
        commit = gitrepos.git("rev-parse", f"refs/heads/{branch}", cwd=examples_remote.bare)
        built[name] = BuiltExample(name, tag, yaml.safe_load(manifest_path.read_text()), result, commit)
        return built[name]

    return build


def _post(job: JobServer, path: str, body: dict[str, Any], **kwargs: Any) -> Any:
    answer = job.post(path, json=body, **kwargs)
    assert answer.status_code == 200, (path, body, answer.status_code, answer.text, job.logs())
    return answer.json()


def _json_lines(text: str) -> list[dict[str, Any]]:
    """The log lines of ``text`` that are JSON objects."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _container_log(job: JobServer) -> str:
    return job.container.logs(stdout=True, stderr=True).decode("utf-8", "replace")


# ---- checks every 2.x job image must pass ------------------------------------------------------------


def check_job_endpoints(job: JobServer, example: BuiltExample, prefix: str) -> dict[str, Any]:
    """Probes with 2.x's /health fields, the home-page redirect, Swagger UI, OpenAPI, parameters, the
    documented examples and the tracing id answered back, under ``prefix``; returns the OpenAPI
    document."""
    for probe in ("/health", "/live", "/ready"):
        answer = job.get(prefix + probe)
        assert answer.status_code == 200, (prefix, probe, answer.text)
    health = job.get(prefix + "/health").json()
    assert health["service"] == "job", health
    assert (health["job_name"], health["job_version"]) == (example.job_name, example.version), health
    assert health["live"] is True and health["ready"] is True, health
    assert health["job_type_version"], health
    assert health["git_version"] == example.commit, health  # GIT_VERSION: the commit built
    assert job.get(prefix + "/live").json()["live"] is True
    assert health["status"] == "pass" and health["error"] is None, health  # 2.x's status, not "ready"

    root = job.get(prefix + "/")
    assert root.status_code == 307, (prefix, root.status_code, root.text)  # 2.x's redirect (302: fatman era)
    assert root.headers["Location"].endswith(f"{prefix}/docs"), root.headers["Location"]
    docs = job.get(prefix + "/docs")
    assert docs.status_code == 200 and docs.headers["Content-Type"].startswith("text/html")

    document = job.get(prefix + "/openapi.json").json()
    assert document["info"]["title"] == example.job_name
    assert "/api/v1/perform" in document["paths"]
    examples = openapi_examples(document)
    assert "/api/v1/perform" in examples, "every v2 example documents an input for /api/v1/perform"
    parameters = job.get(prefix + "/api/v1/parameters")
    assert parameters.status_code == 200, parameters.text
    assert set(examples["/api/v1/perform"]) <= {p["name"] for p in parameters.json()}, parameters.json()

    if example.name != CALLER:  # the caller's example needs its callee (test_chain_call_...)
        for path, body in examples.items():
            tracing_id = f"test-{uuid.uuid4()}"
            answer = job.post(prefix + path, json=body, headers={TRACING_HEADER: tracing_id})
            assert 200 <= answer.status_code < 300, (path, body, answer.status_code, answer.text, job.logs())
            assert answer.headers.get(TRACING_HEADER) == tracing_id, answer.headers
        # Without a tracing id, the wrapper makes one and answers it.
        answer = job.post(prefix + "/api/v1/perform", json=examples["/api/v1/perform"])
        assert answer.status_code == 200 and answer.headers.get(TRACING_HEADER), answer.headers
    return document


# ---- what each example promises ---------------------------------------------------------------------


def check_primer(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    assert _post(job, prefix + "/api/v1/perform", {"numbers": [6, 7]}) == 42
    assert _post(job, prefix + "/api/v1/perform", {"numbers": []}) == 1
    assert openapi_examples(document)["/api/v1/perform"] == {"numbers": [6, 7]}
    # jobtype_extra's limits and Racetrack's deployment settings reach the image.
    env = dict(item.split("=", 1) for item in job.container.image.attrs["Config"]["Env"])
    assert (env["FATMAN_MAX_CONCURRENCY"], env["FATMAN_MAX_QUEUE"]) == ("4", "8"), env
    assert env["JOB_TYPE_VERSION"] == "2.15.1", env
    assert env["FATMAN_CONTRACT"] == "2", env  # Racetrack 2.x's answers
    labels = job.container.image.labels
    assert labels["org.racetrack.replicas"] == "2"
    assert labels["org.racetrack.resources.memory-max"] == "1Gi"
    assert labels["team"] == "examples"


def check_auxiliary_endpoints(job: JobServer, example: BuiltExample, prefix: str,
                              document: dict[str, Any]) -> None:
    assert openapi_examples(document) == {
        "/api/v1/perform": {"numbers": [40, 2]},
        "/api/v1/explain": {"x": 1, "y": 3},
        "/api/v1/stats": {"numbers": [1, 2, 3, 6]},
    }
    assert _post(job, prefix + "/api/v1/perform", {"numbers": [40, 2]}) == 42
    explained = _post(job, prefix + "/api/v1/explain", {"x": 1, "y": 3})
    assert explained == {"x_importance": 0.25, "y_importance": 0.75}
    assert _post(job, prefix + "/api/v1/stats", {"numbers": [1, 2, 3, 6]}) == {
        "count": 4, "min": 1, "max": 6, "mean": 3,
    }
    failing = job.post(prefix + "/api/v1/stats", json={"numbers": []})
    assert failing.status_code == 400 and "at least one number" in failing.text, failing.text  # a ValueError
    assert failing.json()["type"] == "ValueError", failing.text
    assert job.post(prefix + "/api/v1/nope", json={}).status_code == 404


def check_chain_callee(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    assert _post(job, prefix + "/api/v1/perform", {"x": 40, "y": 2}) == 42
    # Chain calls name the version "latest"; the job answers under it as well, under both prefixes.
    family = prefix.rsplit("/", 2)[0]
    assert _post(job, f"{family}/{example.job_name}/latest/api/v1/perform", {"x": 1, "y": 2}) == 3


def check_chain_caller(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    # Alone, with no PUB_URL to call through, perform fails and says why.
    answer = job.post(prefix + "/api/v1/perform", json={"numbers": [1, 2]})
    assert answer.status_code == 500, (answer.status_code, answer.text)
    assert "PUB_URL" in answer.text and CALLEE in answer.text, answer.text


def check_structured_logs(job: JobServer, example: BuiltExample, prefix: str,
                          document: dict[str, Any]) -> None:
    tracing_id, caller = f"trace-{uuid.uuid4()}", f"alice-{uuid.uuid4().hex[:6]}"
    headers = {TRACING_HEADER: tracing_id, CALLER_HEADER: caller}
    answer = job.post(prefix + "/api/v1/perform", json={"text": "one two three"}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"words": 3, "caller": caller}
    assert answer.headers[TRACING_HEADER] == tracing_id
    failing = job.post(prefix + "/api/v1/perform", json={"text": "  "}, headers=headers)
    assert failing.status_code == 400, failing.text  # a ValueError: 400 in 2.x
    assert failing.json()["type"] == "ValueError" and "the text is empty" in failing.text, failing.text

    # The engine copies the container's output into its log as it comes, a moment after the answer.
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in _json_lines(_container_log(job)) if line.get("tracing_id") == tracing_id]
        if any("cause" in line for line in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert lines, f"no JSON log line with tracing_id {tracing_id}:\n{job.logs()}"
    for line in lines:
        assert {"time", "lvl", "msg", "logger"} <= set(line), line
        assert line.get("caller_name") == caller, line
    messages = [line["msg"] for line in lines]
    assert f"counting words for {caller}" in messages, messages
    access = [line for line in lines if line.get("path") == prefix + "/api/v1/perform"]
    assert {line.get("status") for line in access} >= {200}, access
    assert all(line.get("method") == "POST" and "duration_ms" in line for line in access), access
    errors = [line for line in lines if "cause" in line]
    assert errors and "ValueError" in errors[0]["cause"] and "the text is empty" in errors[0]["cause"], lines
    assert "traceback" in errors[0], errors[0]


def check_static_endpoints(job: JobServer, example: BuiltExample, prefix: str,
                           document: dict[str, Any]) -> None:
    files = example_files(example.name)
    expected = [
        ("/api/v1/manifest", "job.yaml", "application/x-yaml"),  # explicit mimetype
        ("/api/v1/model-card", "model-card.json", "application/json"),  # guessed from the name
        ("/api/v1/assets/", "assets/index.html", "text/html"),  # a folder: its index.html
        ("/api/v1/assets/style.css", "assets/style.css", "text/css"),
        ("/api/v1/assets/data/thresholds.csv", "assets/data/thresholds.csv", "text/csv"),
    ]
    for path, file_name, mimetype in expected:
        answer = job.get(prefix + path)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        content_type = answer.headers["Content-Type"]
        assert content_type.split(";")[0] == mimetype, (path, content_type)
        assert answer.content == files[file_name], path
    for path in ("/api/v1/assets/missing.css", "/api/v1/assets/..%2Fjob.yaml", "/api/v1/model-card/x"):
        assert job.get(prefix + path).status_code == 404, path
    assert _post(job, prefix + "/api/v1/perform", {"score": 0.8}) == "positive"
    assert _post(job, prefix + "/api/v1/perform", {"score": 0.2}) == "negative"


def _webview_page(job: JobServer, example: BuiltExample, prefix: str) -> None:
    """The webview's page, its stylesheet (./static) and its form's endpoint answer, with no token."""
    page = job.get(prefix + "/api/v1/webview/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), page.text
    assert "<h1>Greeter</h1>" in page.text, page.text
    stylesheet = re.search(r'href="([^"]+/static/style\.css)"', page.text)
    assert stylesheet, page.text
    assert stylesheet.group(1).endswith("/api/v1/webview/static/style.css"), stylesheet.group(1)
    css = job.get(stylesheet.group(1))
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css"), css.text
    assert css.content == example_files(example.name)["static/style.css"]
    # The same file under this prefix, whatever prefix base_url names.
    css = job.get(prefix + "/api/v1/webview/static/style.css")
    assert css.status_code == 200 and css.content == example_files(example.name)["static/style.css"]
    greet = re.search(r"fetch\('([^']+)'", page.text)
    assert greet and greet.group(1).endswith("/api/v1/webview/greet"), page.text
    assert _post(job, greet.group(1), {"name": "Ada", "excited": True}) == {"greeting": "Hello, Ada!"}
    assert _post(job, prefix + "/api/v1/webview/greet", {"name": "Bo"}) == {"greeting": "Hello, Bo."}
    assert job.post(prefix + "/api/v1/webview/greet", json={}).status_code == 400


def check_webview(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    assert example.manifest["public_endpoints"] == ["/api/v1/webview"]
    _webview_page(job, example, prefix)
    greeting = _post(job, prefix + "/api/v1/perform", {"name": "Racetrack", "excited": True})
    assert greeting == "Hello, Racetrack!"


def _metric_samples(job: JobServer, prefix: str) -> dict[str, Any]:
    answer = job.get(prefix + "/metrics")
    assert answer.status_code == 200, answer.text
    return {f.name: f for f in text_string_to_metric_families(answer.text)}


def check_metrics(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    before = _metric_samples(job, prefix)["example_v2_predictions"].samples[0].value
    assert _post(job, prefix + "/api/v1/perform", {"x": 3}) == 6.5
    assert _post(job, prefix + "/api/v1/perform", {"x": 7.25}) == 15.0
    families = _metric_samples(job, prefix)
    predictions = families["example_v2_predictions"]
    assert predictions.type == "gauge", predictions
    assert predictions.documentation == "Predictions made by this worker since it started"
    assert [s.value for s in predictions.samples] == [before + 2], predictions.samples
    assert [s.value for s in families["example_v2_last_input"].samples] == [7.25]
    coefficient = families["example_v2_model_coefficient"]
    assert coefficient.documentation == "Coefficients of the linear model"
    assert {s.labels["coefficient"]: s.value for s in coefficient.samples} == {"slope": 2.0, "intercept": 0.5}
    # The wrapper's own request metrics are there too, and 2.x's last_call_timestamp (newest of the
    # workers', in seconds).
    assert "fatman_request_duration_seconds" in families, sorted(families)
    last_call = families["last_call_timestamp"]
    assert last_call.samples[0].value > time.time() - 300, last_call


def check_env_secrets(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    # Started without the runtime secret (a plain build needs none): runtime_env alone.
    assert _post(job, prefix + "/api/v1/perform", {"name": "racetrack"}) == {
        "greeting": "Hello, racetrack!", "api_key_configured": False, "api_key_fingerprint": None,
    }


CHECKS: dict[str, Callable[[JobServer, BuiltExample, str, dict[str, Any]], None]] = {
    "v2-primer": check_primer,
    "v2-auxiliary-endpoints": check_auxiliary_endpoints,
    "v2-chain-callee": check_chain_callee,
    "v2-chain-caller": check_chain_caller,
    "v2-structured-logs": check_structured_logs,
    "v2-static-endpoints": check_static_endpoints,
    "v2-webview": check_webview,
    "v2-metrics": check_metrics,
    "v2-env-secrets": check_env_secrets,
}


def test_every_v2_example_has_a_check() -> None:
    assert sorted(CHECKS) == v2_example_names()
    for name in v2_example_names():
        assert example_manifest_file(name) == "job.yaml", name
        assert "jobtype" in example_manifest(name), f"examples/{name}/job.yaml names no jobtype"


@pytest.mark.parametrize("name", v2_example_names())
def test_v2_example_builds_and_serves(name: str, build_example: Callable[[str], BuiltExample],
                                      docker_client: docker.DockerClient,
                                      docker_cleanup: DockerCleanup) -> None:
    example = build_example(name)
    summary = example.result.json()
    assert summary["ok"] is True and summary["image"] == example.tag, summary
    # racetrack/python3:latest, or the same wrapper's image under its sources' tag when another
    # racetrack-build on this engine has retagged :latest for its own wrapper (base_image.sources_ref).
    assert re.fullmatch(re.escape(BASE_IMAGE) + r"(-[0-9a-f]{12})?", summary["base_image"]), summary
    assert summary["commit"] == example.commit
    image = docker_client.images.get(example.tag)
    assert image.id == summary["id"]
    assert image.labels["org.opencontainers.image.revision"] == example.commit
    assert image.labels["org.racetrack.jobtype"] == example.manifest["jobtype"]
    env = dict(item.split("=", 1) for item in image.attrs["Config"]["Env"])
    assert (env["JOB_NAME"], env["JOB_VERSION"]) == (example.job_name, example.version), env
    # 2.x writes build_env as the image's ENV; runtime_env wins where both name a variable.
    seen_env = {**(example.manifest.get("build_env") or {}), **(example.manifest.get("runtime_env") or {})}
    for key, value in seen_env.items():
        assert env[key] == str(value), (key, env)
    assert env["VENV_PACKAGES_PATH"] == "/opt/fatman/job/site-packages"

    with serve(docker_client, example.tag, name=docker_cleanup.container_name(name), network="host") as job:
        for prefix in example.prefixes:
            document = check_job_endpoints(job, example, prefix)
            CHECKS[name](job, example, prefix, document)


def test_chain_call_reaches_the_callee_with_the_callers_tracing_id(
        build_example: Callable[[str], BuiltExample], docker_client: docker.DockerClient,
        docker_cleanup: DockerCleanup) -> None:
    callee, caller = build_example(CALLEE), build_example(CALLER)
    token = f"token-{uuid.uuid4().hex}"
    # The callee logs JSON with the caller's name, and requires the token the caller's infrastructure
    # gives it (AUTH_TOKEN), so the test sees both what arrived and that it was allowed in.
    callee_env = {"LOG_STRUCTURED": "true", "LOG_CALLER_NAME": "true", "FATMAN_AUTH_TOKEN": token}
    with serve(docker_client, callee.tag, name=docker_cleanup.container_name(CALLEE), network="host",
               environment=callee_env) as callee_job:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", callee_job.url), callee_job.url
        assert callee_job.container.attrs["HostConfig"]["NetworkMode"] == "host"
        caller_env = {"PUB_URL": f"{callee_job.url}/pub", "AUTH_TOKEN": token}
        with serve(docker_client, caller.tag, name=docker_cleanup.container_name(CALLER), network="host",
                   environment=caller_env) as caller_job:
            for prefix in caller.prefixes:
                tracing_id, who = f"chain-{uuid.uuid4()}", f"tester-{uuid.uuid4().hex[:6]}"
                answer = caller_job.post(prefix + "/api/v1/perform", json={"numbers": [40, 1, 1]},
                                         headers={TRACING_HEADER: tracing_id, CALLER_HEADER: who})
                assert answer.status_code == 200, (answer.text, caller_job.logs(), callee_job.logs())
                assert answer.json() == 42
                assert answer.headers[TRACING_HEADER] == tracing_id

                seen = [line for line in _json_lines(_container_log(callee_job))
                        if line.get("tracing_id") == tracing_id]
                adds = [line for line in seen if str(line.get("msg", "")).startswith("adding ")]
                assert len(adds) == 3, f"the callee logged {adds} for {tracing_id}:\n{callee_job.logs()}"
                assert all(line.get("caller_name") == who for line in adds), adds
                via_latest = f"/pub/job/{CALLEE}/latest/api/v1/perform"
                calls = [line for line in seen if line.get("path") == via_latest]
                assert [line.get("status") for line in calls] == [200, 200, 200], seen
            # The caller's own log carries the same id.
            assert tracing_id in _container_log(caller_job), caller_job.logs()

            # The token mattered: without it the callee refuses.
            refused = callee_job.post(f"/pub/job/{CALLEE}/latest/api/v1/perform", json={"x": 1, "y": 2})
            assert refused.status_code == 401, refused.text


def test_v2_webview_is_public_while_the_api_needs_the_token(
        build_example: Callable[[str], BuiltExample], docker_client: docker.DockerClient,
        docker_cleanup: DockerCleanup) -> None:
    example = build_example("v2-webview")
    token = secrets.token_urlsafe(16)
    with serve(docker_client, example.tag, name=docker_cleanup.container_name("v2-webview-auth"),
               network="host", environment={"FATMAN_AUTH_TOKEN": token}) as job:
        for prefix in example.prefixes:
            body = {"name": "Ada"}
            refused = job.post(prefix + "/api/v1/perform", json=body)
            assert refused.status_code == 401, refused.text
            assert job.post(prefix + "/api/v1/perform", json=body,
                            headers={"X-Racetrack-Auth": "wrong"}).status_code == 401
            allowed = job.post(prefix + "/api/v1/perform", json=body, headers={"X-Racetrack-Auth": token})
            assert allowed.status_code == 200 and allowed.json() == "Hello, Ada.", allowed.text
            for guarded in ("/metrics", "/openapi.json", "/api/v1/parameters"):
                assert job.get(prefix + guarded).status_code == 401, guarded
            # The page, its static files and its form's endpoint, without a token.
            _webview_page(job, example, prefix)


def test_v2_env_secrets_job_sees_the_runtime_secret_as_run_gives_it(
        build_example: Callable[[str], BuiltExample], docker_client: docker.DockerClient,
        docker_cleanup: DockerCleanup, tmp_path: Path) -> None:
    example = build_example("v2-env-secrets")
    manifest = example_manifest("v2-env-secrets")
    assert "secret_build_env_file" not in manifest, "the example's secrets are runtime-only"
    secret_file = manifest["secret_runtime_env_file"]
    template = example_files("v2-env-secrets")
    assert secret_file not in template, f"{secret_file} would be committed (it must be git-ignored)"
    assert f"{secret_file}.dist" in template
    key = secrets.token_hex(16)
    # The user's manifest with the filled-in secret file beside it, read as `racetrack-build run`
    # reads it: the runtime secrets become the container's environment.
    path = client_manifest(tmp_path / "client", example.manifest, remote=example.manifest["git"]["remote"],
                           file_name="job.yaml", secret_files={secret_file: env_file({"DEMO_API_KEY": key})})
    spec = load_job(path, build="no", runtime="required")
    assert dict(spec.runtime_secrets) == {"DEMO_API_KEY": key}
    image_env = docker_client.images.get(example.tag).attrs["Config"]["Env"]
    assert not any(key in item for item in image_env), "the runtime secret is in the image"
    with serve(docker_client, example.tag, name=docker_cleanup.container_name("v2-env-secrets-run"),
               network="host", environment=dict(spec.runtime_secrets)) as job:
        for prefix in example.prefixes:
            assert _post(job, prefix + "/api/v1/perform", {"name": "racetrack"}) == {
                "greeting": "Hello, racetrack!",  # runtime_env's GREETING and GREETING_PUNCTUATION
                "api_key_configured": True,
                "api_key_fingerprint": hashlib.sha256(key.encode()).hexdigest()[:8],
            }
            assert key not in job.get(prefix + "/health").text


# The examples with secrets that this module scans for leaks (test_secrets_coverage.py reads it).
SECRETS_SCANNED = ("v2-env-secrets",)


def test_v2_env_secrets_built_beside_its_filled_in_secret_file_keeps_none_of_it(
        examples_remote: HttpsRemote, public_index: str, docker_client: docker.DockerClient,
        docker_cleanup: DockerCleanup, tmp_path: Path) -> None:
    """A build reads the runtime secrets only to mask them: built with the filled-in file beside the
    manifest, the image's history, configuration and files (docker save) hold no value of it."""
    name = "v2-env-secrets"
    secret_file = example_manifest(name)["secret_runtime_env_file"]
    key = f"rt-{secrets.token_hex(16)}"
    path = client_manifest(tmp_path / "client", name, remote=examples_remote.url,
                           build_env={"PIP_INDEX_URL": public_index},
                           secret_files={secret_file: env_file({"DEMO_API_KEY": key})})
    tag = docker_cleanup.image_tag("v2-env-secrets-scan")
    result = run_cli("build", path, "--network", "host", "--tag", tag, "-v",
                     env={"GIT_SSL_CAINFO": str(examples_remote.ca_file)})
    assert result.returncode == 0, result.describe()
    assert key not in result.stdout + result.stderr
    files, leaks = image_secret_hits(docker_client, tag, [key])  # configuration, history, every file
    assert leaks == [], leaks
    assert files > 1000, files  # the scan read the image's files, not just its metadata


def test_a_fatman_yaml_and_its_job_yaml_translation_give_the_same_image_contents(
        build_example: Callable[[str], BuiltExample], examples_remote: HttpsRemote,
        docker_client: docker.DockerClient, docker_cleanup: DockerCleanup, tmp_path: Path) -> None:
    """The same job described both ways: the same layers (files), the same command; only labels and
    the 2.x wrapper settings in the environment differ."""
    v2 = build_example("v2-auxiliary-endpoints")
    job_yaml = example_manifest("v2-auxiliary-endpoints")
    fatman = {
        "name": job_yaml["name"], "owner_email": job_yaml["owner_email"], "version": job_yaml["version"],
        "lang": "python3:latest", "git": dict(job_yaml["git"]),
        "python": {"entrypoint_path": job_yaml["jobtype_extra"]["entrypoint_path"],
                   "entrypoint_class": job_yaml["jobtype_extra"]["entrypoint_class"]},
    }
    path = client_manifest(tmp_path / "fatman", fatman, remote=examples_remote.url, file_name="fatman.yaml")
    tag = docker_cleanup.image_tag("v2-translation")
    result = run_cli("build", path, "--network", "host", "--tag", tag, "--json",
                     env={"GIT_SSL_CAINFO": str(examples_remote.ca_file)})
    assert result.returncode == 0, result.describe()
    one, other = (docker_client.api.inspect_image(ref) for ref in (tag, v2.tag))
    # Two clones give the files other times, so the job's layer is compared by what it holds.
    assert _layer_contents(docker_client, tag) == _layer_contents(docker_client, v2.tag)
    assert one["Config"]["Cmd"] == other["Config"]["Cmd"]
    # And the job.yaml's build_env, which 2.x's images keep in their environment (the fatman era's
    # is for the build only).
    only_2x = {"JOB_TYPE_VERSION", "FATMAN_PUB_PREFIX", "FATMAN_HOME_PAGE", "FATMAN_CONTRACT",
               "VENV_PACKAGES_PATH", *(v2.manifest.get("build_env") or {})}
    env_2x = [e for e in other["Config"]["Env"] if e.split("=", 1)[0] not in only_2x]
    assert one["Config"]["Env"] == env_2x


def _layer_contents(docker_client: docker.DockerClient, ref: str) -> list[list[tuple[object, ...]]]:
    """Per layer, in order: (path, mode, uid, gid, sha256 of the content) of each entry, sorted;
    times left out."""
    import io
    import tarfile

    saved = b"".join(docker_client.images.get(ref).save(named=True))
    layers: dict[str, list[tuple[object, ...]]] = {}
    order: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
        order = manifest[0]["Layers"]
        for name in order:
            data = archive.extractfile(name).read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                entries = []
                for entry in layer:
                    content = layer.extractfile(entry) if entry.isfile() else None
                    digest = hashlib.sha256(content.read()).hexdigest() if content else entry.linkname
                    entries.append((entry.name, entry.mode, entry.uid, entry.gid, digest))
            layers[name] = sorted(entries)
    return [layers[name] for name in order]
