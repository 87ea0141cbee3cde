"""Every fatman.yaml example in examples/ builds from a real git repository through the CLI, and its
image serves every endpoint the example promises, at the root and under /pub/fatman/<name>/<version>.
The examples another module builds (``jobs.examples_built_elsewhere()``: the data-science ones of
test_data_science_examples.py) are left to it, and the Racetrack 2.x ones (``examples/v2-*``,
job.yaml) to test_v2_examples.py.

The examples are committed into one bare repository laid out like this project (``examples/<name>``
on ``main``), except ``subdirectory-branch``, which lives only on its own branch in a subfolder.
Builds clone it over ``file://``; ``adder`` is cloned from the local git daemon (``git://127.0.0.1``)
to cover a network remote. pip inside the builds uses the suite's local index (``--network host``).
Images are built once per module and shared by the tests below.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import docker
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests import gitrepos
from tests.integration.jobs import (
    CliResult,
    DockerCleanup,
    JobServer,
    client_manifest,
    env_file,
    example_files,
    example_manifest,
    example_names,
    example_requirements,
    examples_built_elsewhere,
    examples_tree,
    openapi_examples,
    our_base_ref,
    private_index_secrets,
    run_cli,
    serve,
)

if TYPE_CHECKING:
    from tests.integration.package_index import PackageIndex

pytestmark = pytest.mark.docker

REMOTE = "racetrack-build.git"
MAIN = "main"
SUBDIR_EXAMPLE = "subdirectory-branch"
DAEMON_EXAMPLE = "adder"
# Built with --smoke-test, so the build command's own smoke test runs against a real image once.
SMOKE_TESTED_EXAMPLE = "system-dependencies"
BASE_IMAGE = "racetrack/python3:latest"
PRIVATE_PACKAGE = "racetrack-private-demo"


def checked_example_names() -> list[str]:
    """The fatman.yaml examples this module builds and checks: all but those built elsewhere."""
    elsewhere = examples_built_elsewhere()
    return [name for name in example_names() if name not in elsewhere]


@dataclass(frozen=True)
class BuiltExample:
    """An example built into an image by the CLI."""

    name: str
    tag: str
    manifest: dict[str, Any]  # as handed to the CLI (remote rewritten)
    result: CliResult
    commit: str
    runtime_env: dict[str, str]  # the runtime secrets `racetrack-build run` would hand the container
    build_secrets: dict[str, str]

    @property
    def prefix(self) -> str:
        return f"/pub/fatman/{self.manifest['name']}/{self.manifest['version']}"


@pytest.fixture(scope="module")
def examples_remote(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare repository with the examples, as described in the module docstring."""
    base = tmp_path_factory.mktemp("examples-remotes")
    on_main = [n for n in checked_example_names() if n != SUBDIR_EXAMPLE]
    branch = example_manifest(SUBDIR_EXAMPLE)["git"]["branch"]
    assert branch != MAIN, "the subdirectory-branch example must use a branch other than the default one"
    return gitrepos.make_bare_repo(base / REMOTE, examples_tree(on_main), branch=MAIN,
                                   branches={branch: examples_tree([SUBDIR_EXAMPLE])})


@pytest.fixture(scope="module")
def shared_images(docker_client: docker.DockerClient) -> Iterator[DockerCleanup]:
    tracker = DockerCleanup(docker_client)
    yield tracker
    problems = tracker.remove_all()
    if problems:
        pytest.fail("could not remove the examples' images: " + "; ".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def build_example(
    examples_remote: Path,
    shared_images: DockerCleanup,
    base_image: str,
    public_index: str,
    private_index: PackageIndex,
    wheelhouse: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], BuiltExample]]:
    """``build(name) -> BuiltExample``: the example built once per module (later calls reuse it).

    Fails the calling test when the CLI does not exit 0.
    """
    built: dict[str, BuiltExample] = {}
    clients = tmp_path_factory.mktemp("example-clients")
    with gitrepos.GitDaemon(examples_remote.parent) as daemon:

        def build(name: str) -> BuiltExample:
            if name in built:
                return built[name]
            requirements = example_requirements(name, exclude=[PRIVATE_PACKAGE])
            if requirements:  # wheelhouse([]) would ask pip to download nothing, which pip refuses
                wheelhouse(requirements)
            source = example_manifest(name)
            branch = source["git"]["branch"]
            remote = daemon.url(REMOTE) if name == DAEMON_EXAMPLE else examples_remote.as_uri()
            secret_files, runtime_env, build_secrets = _secrets_for(name, source, private_index)
            manifest_path = client_manifest(clients / name, name, remote=remote,
                                            build_env={"PIP_INDEX_URL": public_index},
                                            secret_files=secret_files)
            tag = shared_images.image_tag(f"example-{name}")
            args: list[str | Path] = ["build", manifest_path, "--network", "host", "--tag", tag, "--json"]
            if name == SMOKE_TESTED_EXAMPLE:
                args.append("--smoke-test")
            result = run_cli(*args)
            assert result.returncode == 0, result.describe()
            commit = gitrepos.git("rev-parse", f"refs/heads/{branch}", cwd=examples_remote)
            built[name] = BuiltExample(name, tag, yaml.safe_load(manifest_path.read_text()), result, commit,
                                       runtime_env, build_secrets)
            return built[name]

        yield build


def _secrets_for(name: str, manifest: dict[str, Any],
                 private_index: PackageIndex) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(secret files, runtime secrets, build secrets) for the example: the files its manifest names,
    filled in for this suite's private index. Their templates (.dist) say which names to fill."""
    files: dict[str, str] = {}
    runtime: dict[str, str] = {}
    build: dict[str, str] = {}
    if manifest.get("secret_build_env_file"):
        build = private_index_secrets(private_index)
        files[manifest["secret_build_env_file"]] = env_file(build)
    if manifest.get("secret_runtime_env_file"):
        runtime = {"DEMO_API_KEY": secrets.token_hex(16)}
        files[manifest["secret_runtime_env_file"]] = env_file(runtime)
    for file_name in files:
        template = example_files(name).get(f"{file_name}.dist")
        assert template is not None, f"examples/{name} names {file_name} but commits no {file_name}.dist"
        names = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=", template.decode(), flags=re.MULTILINE))
        filled = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", files[file_name], flags=re.MULTILINE))
        assert names == filled, f"{file_name}.dist names {sorted(names)}, the test fills {sorted(filled)}"
    return files, runtime, build


# ---- checks every job image must pass ---------------------------------------------------------------


def _perform_count(job: JobServer, prefix: str) -> float:
    answer = job.get(prefix + "/metrics")
    assert answer.status_code == 200, answer.text
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if (sample.name == "fatman_requests_total" and sample.labels.get("endpoint") == "/api/v1/perform"
                    and sample.labels.get("status") == "200"):
                return sample.value
    return 0.0


def check_wrapper_endpoints(job: JobServer, example: BuiltExample, prefix: str) -> dict[str, Any]:
    """Probes, Swagger UI, OpenAPI with the job's examples, parameters and request metrics under
    ``prefix``; returns the OpenAPI document."""
    name, version = example.manifest["name"], example.manifest["version"]
    for probe in ("/health", "/live", "/ready"):
        answer = job.get(prefix + probe)
        assert answer.status_code == 200, (probe, answer.text)
    health = job.get(prefix + "/health").json()
    assert (health["status"], health["name"], health["version"]) == ("ready", name, version)

    root = job.get(prefix + "/")
    assert root.status_code == 302 and root.headers["Location"].endswith(f"{prefix}/docs")

    docs = job.get(prefix + "/docs")
    assert docs.status_code == 200 and docs.headers["Content-Type"].startswith("text/html")
    assert f"{prefix}/openapi.json" in docs.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+\.(?:js|css))["']""", docs.text)
    assert assets, f"the Swagger UI page links no scripts or styles:\n{docs.text[:2000]}"
    for asset in assets:
        path = urlsplit(urljoin(f"{job.url}{prefix}/docs", asset)).path
        assert path.startswith(f"{prefix}/docs/static/"), f"{asset} is not served by the image itself"
        answer = job.get(path)
        assert answer.status_code == 200 and len(answer.content) > 1000, (path, answer.status_code)

    document = job.get(prefix + "/openapi.json").json()
    assert document["info"]["title"] == name
    assert "/api/v1/perform" in document["paths"]
    examples = openapi_examples(document)
    assert "/api/v1/perform" in examples, "every example documents an input for /api/v1/perform"

    parameters = job.get(prefix + "/api/v1/parameters")
    assert parameters.status_code == 200, parameters.text
    documented = set(examples["/api/v1/perform"])
    assert documented <= {p["name"] for p in parameters.json()}, parameters.json()

    # Every documented example answers 2xx, and each perform call is counted once in /metrics.
    before = _perform_count(job, prefix)
    for path, body in examples.items():
        answer = job.post(prefix + path, json=body)
        assert 200 <= answer.status_code < 300, (path, body, answer.status_code, answer.text, job.logs())
    job.post(prefix + "/api/v1/perform", json=examples["/api/v1/perform"]).raise_for_status()
    assert _perform_count(job, prefix) == before + 2
    return document


# ---- what each example promises ---------------------------------------------------------------------


def _post(job: JobServer, path: str, body: dict[str, Any]) -> Any:
    answer = job.post(path, json=body)
    assert answer.status_code == 200, (path, body, answer.status_code, answer.text, job.logs())
    return answer.json()


def check_adder(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    assert _post(job, prefix + "/api/v1/perform", {"x": 40, "y": 2}) == 42
    assert _post(job, prefix + "/api/v1/perform", {"x": -1.5, "y": 0.25}) == -1.25
    # The spec's own example of a /parameters answer.
    assert job.get(prefix + "/api/v1/parameters").json() == [
        {"name": "x", "type": "float"}, {"name": "y", "type": "float"},
    ]
    missing = job.post(prefix + "/api/v1/perform", json={"x": 1})
    assert missing.status_code == 400 and "y" in missing.text, missing.text
    assert openapi_examples(document)["/api/v1/perform"] == {"x": 40, "y": 2}


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
    assert failing.status_code == 500 and "at least one number" in failing.text
    unknown = job.post(prefix + "/api/v1/nope", json={})
    assert unknown.status_code == 404


def check_static_endpoints(job: JobServer, example: BuiltExample, prefix: str,
                           document: dict[str, Any]) -> None:
    files = example_files(example.name)
    expected = [
        ("/api/v1/manifest", "fatman.yaml", "application/x-yaml"),  # explicit mimetype
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
    for path in ("/api/v1/assets/missing.css", "/api/v1/assets/..%2Ffatman.yaml", "/api/v1/model-card/x"):
        assert job.get(prefix + path).status_code == 404, path
    assert _post(job, prefix + "/api/v1/perform", {"score": 0.8}) == "positive"
    assert _post(job, prefix + "/api/v1/perform", {"score": 0.2}) == "negative"


def check_webview_flask(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    page = job.get(prefix + "/api/v1/webview/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), page.text
    # The job's own Flask (requirements.txt) renders the page, not the wrapper's.
    assert "Served by Flask 2.2.5" in page.text, page.text
    stylesheet = re.search(r'href="([^"]+/static/style\.css)"', page.text)
    assert stylesheet, page.text
    css = job.get(stylesheet.group(1))
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert css.content == example_files(example.name)["static/style.css"]
    greet = re.search(r"fetch\('([^']+)'", page.text)
    assert greet, page.text
    assert _post(job, greet.group(1), {"name": "Ada", "excited": True}) == {"greeting": "Hello, Ada!"}
    assert _post(job, prefix + "/api/v1/webview/greet", {"name": "Bo"}) == {"greeting": "Hello, Bo."}
    assert job.post(prefix + "/api/v1/webview/greet", json={}).status_code == 400
    greeting = _post(job, prefix + "/api/v1/perform", {"name": "Racetrack", "excited": True})
    assert greeting == "Hello, Racetrack!"


def check_metrics(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    assert _post(job, prefix + "/api/v1/perform", {"x": 3}) == 6.5
    text = job.get(prefix + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    coefficient = families["example_model_coefficient"]
    assert coefficient.documentation == "Coefficients of the linear model"
    assert coefficient.type == "gauge"
    assert {s.labels["coefficient"]: s.value for s in coefficient.samples} == {"slope": 2.0, "intercept": 0.5}
    age = families["example_model_age_seconds"]
    assert age.documentation == "Seconds since the model was loaded by this worker"
    assert len(age.samples) == 1 and 0 <= age.samples[0].value < 600
    assert "fatman_request_duration_seconds" in families


def check_secret_env(job: JobServer, example: BuiltExample, prefix: str, document: dict[str, Any]) -> None:
    key = example.runtime_env["DEMO_API_KEY"]
    answer = _post(job, prefix + "/api/v1/perform", {"name": "racetrack"})
    assert answer == {
        "greeting": "private hello, racetrack!",  # the private package, plus runtime_env's "!"
        "api_key_configured": True,
        "api_key_fingerprint": hashlib.sha256(key.encode()).hexdigest()[:8],
    }
    assert key not in job.get(prefix + "/health").text


def check_system_dependencies(job: JobServer, example: BuiltExample, prefix: str,
                              document: dict[str, Any]) -> None:
    body = {"document": {"items": [{"name": "tea", "price": 3}, {"name": "cake", "price": 4.5}]},
            "query": "[.items[].price] | add"}
    assert _post(job, prefix + "/api/v1/perform", body) == 7.5
    assert _post(job, prefix + "/api/v1/perform", {"document": [1, 2], "query": ".[]"}) == [1, 2]
    bad = job.post(prefix + "/api/v1/perform", json={"document": {}, "query": "]["})
    assert bad.status_code == 500 and "jq failed" in bad.text
    assert _post(job, prefix + "/api/v1/version", {}).startswith("jq-")
    assert example.result.json()["smoke_tested"] is True


def check_subdirectory_branch(job: JobServer, example: BuiltExample, prefix: str,
                              document: dict[str, Any]) -> None:
    text = "The cat sat on the mat; the cat slept. A dog sat too."
    assert _post(job, prefix + "/api/v1/perform", {"text": text, "top": 2}) == {"cat": 2, "sat": 2}
    # Only git.directory is in the image, and it is the working directory.
    code, listing = job.container.exec_run(["ls", "-A", "/src/fatman"])
    assert code == 0
    assert sorted(listing.decode().split()) == ["entrypoint.py", "stopwords.txt", "wordcount"]


CHECKS: dict[str, Callable[[JobServer, BuiltExample, str, dict[str, Any]], None]] = {
    "adder": check_adder,
    "auxiliary-endpoints": check_auxiliary_endpoints,
    "static-endpoints": check_static_endpoints,
    "webview-flask": check_webview_flask,
    "metrics": check_metrics,
    "secret-env": check_secret_env,
    "system-dependencies": check_system_dependencies,
    "subdirectory-branch": check_subdirectory_branch,
}


def test_every_example_has_a_check() -> None:
    assert sorted(CHECKS) == checked_example_names()
    # What is left out is really built elsewhere: each is an example, and none is checked twice.
    assert examples_built_elsewhere() <= set(example_names())
    assert not examples_built_elsewhere() & set(CHECKS)


@pytest.mark.parametrize("name", checked_example_names())
def test_example_builds_and_serves(name: str, build_example: Callable[[str], BuiltExample],
                                   docker_client: docker.DockerClient) -> None:
    example = build_example(name)
    summary = example.result.json()
    assert summary["image"] == example.tag
    assert summary["base_image"] == our_base_ref()
    assert summary["commit"] == example.commit
    assert summary["pushed"] is False
    image = docker_client.images.get(example.tag)
    assert image.id == summary["id"]
    labels = image.labels
    assert labels["org.opencontainers.image.revision"] == example.commit
    assert labels["org.racetrack.git.directory"] == example.manifest["git"]["directory"]
    assert labels["org.racetrack.git.branch"] == example.manifest["git"]["branch"]

    with serve(docker_client, example.tag, environment=example.runtime_env) as job:
        for prefix in ("", example.prefix):
            document = check_wrapper_endpoints(job, example, prefix)
            CHECKS[name](job, example, prefix, document)


def test_subdirectory_job_is_only_on_its_branch(examples_remote: Path) -> None:
    """The premise of the subdirectory-branch build: the default branch does not hold the job."""
    branch = example_manifest(SUBDIR_EXAMPLE)["git"]["branch"]
    on_main = gitrepos.git("ls-tree", "-r", "--name-only", MAIN, cwd=examples_remote).splitlines()
    on_branch = gitrepos.git("ls-tree", "-r", "--name-only", branch, cwd=examples_remote).splitlines()
    assert not [p for p in on_main if p.startswith(f"examples/{SUBDIR_EXAMPLE}/")]
    assert f"examples/{SUBDIR_EXAMPLE}/job/entrypoint.py" in on_branch


def test_smoke_test_command_calls_every_documented_example(
        build_example: Callable[[str], BuiltExample]) -> None:
    example = build_example("auxiliary-endpoints")
    result = run_cli("test", example.tag)
    assert result.returncode == 0, result.describe()
    for path in ("/api/v1/perform", "/api/v1/explain", "/api/v1/stats"):
        assert f"POST {path} -> 200" in result.stderr, result.describe()
    assert "smoke test passed (3 examples)" in result.stderr, result.describe()


def test_auth_token_guards_all_but_probes_and_public_endpoints(
        build_example: Callable[[str], BuiltExample], docker_client: docker.DockerClient) -> None:
    example = build_example("webview-flask")
    assert example.manifest["public_endpoints"] == ["/api/v1/webview"]
    token = secrets.token_urlsafe(16)
    body = {"name": "Ada"}
    with serve(docker_client, example.tag, environment={"FATMAN_AUTH_TOKEN": token}) as job:
        for prefix in ("", example.prefix):
            refused = job.post(prefix + "/api/v1/perform", json=body)
            assert refused.status_code == 401, refused.text
            assert refused.json()["type"] == "Unauthorized" or "token" in refused.text
            assert job.post(prefix + "/api/v1/perform", json=body,
                            headers={"X-Racetrack-Auth": "wrong"}).status_code == 401
            for headers in ({"X-Racetrack-Auth": token}, {"Authorization": f"Bearer {token}"}):
                allowed = job.post(prefix + "/api/v1/perform", json=body, headers=headers)
                assert allowed.status_code == 200 and allowed.json() == "Hello, Ada.", allowed.text
            for guarded in ("/metrics", "/openapi.json", "/api/v1/parameters"):
                assert job.get(prefix + guarded).status_code == 401, guarded
            # Probes and the public webview (with everything under it) need no token.
            for open_path in ("/health", "/live", "/ready", "/api/v1/webview/"):
                assert job.get(prefix + open_path).status_code == 200, open_path
            assert job.post(prefix + "/api/v1/webview/greet", json=body).json() == {"greeting": "Hello, Ada."}
