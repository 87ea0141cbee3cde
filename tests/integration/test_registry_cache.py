"""The registry cache and base images from a registry, on an engine that has never seen the job.

A fresh engine is the second engine of tests/integration/second_engine.py, emptied of every image
before each test, so each build there is a CI runner's first (it shares no layer with the first
engine). A registry on 127.0.0.1 (Debian's docker-registry) holds, for the session, the base
image and install tools `racetrack-build base --push --registry R` published from the first engine.

The CLI runs from a copy of this checkout's tool taken at the start of the session
(``tool_snapshot``): the base image's tag is a digest of base-images/, and a fresh engine has no
root image to build another base on, so a checkout edited during the session must not change it
between the publication and a build.

What each test proves, from the build's output and its --json summary (never from timing):
- a base image comes from ``--base-registry`` instead of being built;
- the first build with ``--cache-from C --cache-to C`` warns that the cache has nothing yet, runs
  cold (apt, install) and exits 0, then fills the cache; the next build on an emptied engine pulls
  the install's commit and runs neither apt nor the install, and its image has the packages;
- an unreachable registry and one that refuses the pull are one warning each, and a cold build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from racetrack_builder.base_image import BaseImageOptions, base_context_dir, context_digest, sources_ref
from racetrack_builder.build_tools import TOOLS_REPOSITORY
from tests import gitrepos
from tests.integration.jobs import (
    REPO_ROOT,
    CliResult,
    client_manifest,
    in_ci,
    our_base_ref,
    registry_tags,
    run_cli,
)
from tests.integration.second_engine import SecondEngine, free_port, missing_tools

pytestmark = pytest.mark.docker

ADDER = REPO_ROOT / "examples/adder/fatman.yaml"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DOCKER_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT")


@dataclass
class FreshEngine:
    engine: SecondEngine
    config: Path  # a DOCKER_CONFIG of its own: no credentials of this machine

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.engine.socket_url, "DOCKER_CONFIG": str(self.config)}

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in DOCKER_VARIABLES}
        return subprocess.run(["docker", *args], env={**env, **self.env}, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=300, check=False)

    def empty(self) -> None:
        """Remove every container and image: the engine is as new."""
        containers = self.docker("ps", "-aq").stdout.split()
        if containers:
            self.docker("rm", "-f", *containers)
        # A parent listed before its child is refused ("image has dependent child images"), and
        # images made in the same second list in any order: a few passes remove them all.
        said = ""
        for _ in range(5):
            images = self.docker("images", "-aq").stdout.split()
            if not images:
                return
            said = self.docker("rmi", "-f", *dict.fromkeys(images)).stderr
        assert self.docker("images", "-aq").stdout.split() == [], f"the fresh engine kept images: {said}"

    tool: dict[str, str]  # the environment that runs the session's copy of the tool

    def build(self, *args: str | os.PathLike[str], env: dict[str, str] | None = None) -> CliResult:
        # Run from the copy's folder: `python -m` puts the working directory first on sys.path.
        return run_cli("build", *args, "--json", env={**self.env, **self.tool, **(env or {})},
                       cwd=Path(self.tool["PYTHONPATH"]))


@pytest.fixture(scope="session")
def tool_snapshot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A copy of the tool (package, templates, base image sources) and the environment running it."""
    folder = tmp_path_factory.mktemp("tool")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", "tests", ".pytest_cache", "*.egg-info")
    for name in ("racetrack_builder", "templates", "base-images"):
        shutil.copytree(REPO_ROOT / name, folder / name, ignore=skip)
    return {"PYTHONPATH": str(folder)}


@pytest.fixture(scope="session")
def _fresh_engine_server(docker_client: object) -> Iterator[SecondEngine]:
    if os.geteuid() != 0 or missing_tools():
        reason = "a second Docker engine needs root and " + (", ".join(missing_tools()) or "nothing else")
        if in_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    # Short and outside pytest's basetemp: unix socket paths are limited to 108 bytes.
    engine = SecondEngine.start(Path(tempfile.mkdtemp(prefix="rt-fresh-", dir="/tmp")))
    try:
        yield engine
    finally:
        stop_engine(engine)


def stop_engine(engine: SecondEngine) -> None:
    """Stop it, and unmount what a stopped dockerd can leave in its exec root (the network
    namespace file), which would keep its folder from being removed."""
    engine.stop()
    namespaces = engine.folder / "exec" / "netns"
    if namespaces.is_dir():
        for mounted in namespaces.iterdir():
            subprocess.run(["umount", "-l", str(mounted)], capture_output=True, check=False)
        shutil.rmtree(engine.folder, ignore_errors=True)


@pytest.fixture
def fresh_engine(_fresh_engine_server: SecondEngine, tmp_path: Path,
                 tool_snapshot: dict[str, str]) -> FreshEngine:
    """The second engine with no image at all: a CI runner that has never seen a job."""
    config = tmp_path / "docker-config"
    config.mkdir()
    fresh = FreshEngine(_fresh_engine_server, config, tool_snapshot)
    fresh.empty()
    return fresh


@dataclass(frozen=True)
class PublishedBase:
    registry: str
    base_ref: str  # where the base image of Python 3.11 is in the registry
    tools_ref: str
    result: CliResult


@pytest.fixture(scope="session")
def published_base(session_registry: str, base_image: str, python_root_image: str,
                   tool_snapshot: dict[str, str]) -> PublishedBase:
    """`racetrack-build base --push --registry R` from the first engine, once (from the session's
    copy of the tool)."""
    ca = ["--ca-cert", str(HOST_CA_BUNDLE)] if HOST_CA_BUNDLE.is_file() else []
    result = run_cli("base", "--push", "--registry", session_registry, "--network", "host", *ca,
                     "--python-image", python_root_image, env=tool_snapshot,
                     cwd=Path(tool_snapshot["PYTHONPATH"]))
    assert result.returncode == 0, result.describe()
    options = BaseImageOptions(sources=Path(tool_snapshot["PYTHONPATH"]) / "base-images" / "python3")
    digest = context_digest(base_context_dir(options))
    tools_digest = context_digest(Path(tool_snapshot["PYTHONPATH"]) / "base-images" / "build-tools")
    return PublishedBase(
        registry=session_registry,
        base_ref=f"{session_registry}/{sources_ref(options.tag, digest, options.python_version)}",
        tools_ref=f"{session_registry}/{TOOLS_REPOSITORY}:py{options.python_version}-{tools_digest[:12]}",
        result=result,
    )


def _warnings(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Warning: cache ")]


# ---- base images from a registry ---------------------------------------------------------------------


def test_base_push_publishes_the_base_and_tools_under_their_sources_digest(
        published_base: PublishedBase) -> None:
    registry = published_base.registry
    base_tag = published_base.base_ref.rpartition(":")[2]
    assert base_tag in registry_tags(registry, "racetrack/python3"), published_base.result.describe()
    assert published_base.tools_ref.rpartition(":")[2] in registry_tags(registry, "racetrack/build-tools")
    assert f"pushed {published_base.base_ref} (sha256:" in published_base.result.stderr


def test_a_fresh_engine_pulls_the_base_from_the_base_registry_instead_of_building_it(
        fresh_engine: FreshEngine, published_base: PublishedBase) -> None:
    result = fresh_engine.build(ADDER, "--local", "--base-registry", published_base.registry)
    assert result.returncode == 0, result.describe()
    assert f"pulling the base image {published_base.base_ref}" in result.stderr, result.describe()
    assert "building the base image" not in result.stderr, result.describe()
    # Under the local names a build looks for, and nothing else of the registry's left behind.
    assert fresh_engine.docker("image", "inspect", "racetrack/python3:latest").returncode == 0
    assert fresh_engine.docker("image", "inspect", published_base.base_ref).returncode != 0
    assert result.json()["base_image"] == our_base_ref(root=Path(fresh_engine.tool["PYTHONPATH"]))


def test_the_environment_variable_names_the_base_registry_too(
        fresh_engine: FreshEngine, published_base: PublishedBase) -> None:
    result = fresh_engine.build(ADDER, "--local", env={"RACETRACK_BASE_REGISTRY": published_base.registry})
    assert result.returncode == 0, result.describe()
    assert f"pulling the base image {published_base.base_ref}" in result.stderr, result.describe()


# ---- the layer cache ----------------------------------------------------------------------------------


@pytest.fixture
def job_with_requirements(tmp_path: Path, public_index: str,
                          wheelhouse: Callable[[Sequence[str]], Path]) -> tuple[Path, str]:
    """A job with an apt package and a requirement from the suite's index: (manifest, name)."""
    wheelhouse(["six==1.16.0"])
    name = f"racetrack-test-cache-{uuid.uuid4().hex[:8]}"
    files = {
        "job/entry.py": b"import six\n\n\nclass Job:\n    def perform(self) -> str:\n"
                        b"        return six.__version__\n",
        "job/requirements.txt": b"six==1.16.0\n",
    }
    remote = gitrepos.make_bare_repo(tmp_path / "remote.git", files, branch="main")
    data = {
        "name": name, "owner_email": "nobody@example.com", "lang": "python3:latest", "version": "0.1.0",
        "git": {"remote": "", "branch": "main", "directory": "job"},
        "python": {"entrypoint_path": "entry.py", "requirements_path": "requirements.txt"},
        "system_dependencies": ["jq"],
    }
    manifest = client_manifest(tmp_path / "client", data, remote=remote.as_uri(),
                               build_env={"PIP_INDEX_URL": public_index})
    return manifest, name


def test_a_cache_hit_on_a_fresh_engine_runs_neither_apt_nor_the_install(
        fresh_engine: FreshEngine, published_base: PublishedBase,
        job_with_requirements: tuple[Path, str]) -> None:
    manifest, name = job_with_requirements
    cache = f"{published_base.registry}/cache/{name}"
    common = ("--network", "host", "--base-registry", published_base.registry, "--tag", f"{name}:1")

    # The first build ever: the cache has nothing, which is a warning, and the build runs cold.
    first = fresh_engine.build(manifest, *common, "--cache-from", cache, "--cache-to", cache)
    assert first.returncode == 0, first.describe()
    assert _warnings(first) == [
        f"Warning: cache {cache}: tag {name}-install-{_key(first, 'install')} does not exist yet "
        "(the first build with these inputs); building without it"], first.describe()
    report = first.json()["cache"]
    assert (report["system"], report["install"]) == ("built", "installed"), report
    assert "apt-get" in first.stderr and "installing requirements (requirements.txt)" in first.stderr
    pushed = registry_tags(published_base.registry, f"cache/{name}")
    assert sorted(tag[len(name) + 1:].split("-")[0] for tag in pushed) == ["install", "job", "system"], pushed

    # Another runner that has never seen the job: apt and the install come from the registry.
    fresh_engine.empty()
    second = fresh_engine.build(manifest, *common, "--cache-from", cache)
    assert second.returncode == 0, second.describe()
    assert _warnings(second) == [], second.describe()
    report = second.json()["cache"]
    assert (report["system"], report["install"]) == ("registry", "registry"), report
    assert report["job_cache"] == f"{cache}:{name}-job", report
    assert "apt-get" not in second.stderr, second.describe()
    assert "installing requirements (" not in second.stderr, second.describe()
    ran = fresh_engine.docker("run", "--rm", "--network", "none", f"{name}:1", "python", "-c",
                              "import six, shutil; print(six.__version__, bool(shutil.which('jq')))")
    assert ran.stdout.split() == ["1.16.0", "True"], ran.stderr


def _key(result: CliResult, stage: str) -> str:
    """The key in the cache tag the build's output names for ``stage``."""
    marker = f"-{stage}-"
    for word in result.stderr.split():
        if marker in word:
            return word.rpartition(marker)[2].rstrip(";:,)")[:32]
    return "(no such tag in the output)"


def test_an_unreachable_and_a_refusing_registry_are_one_warning_each_and_a_cold_build(
        fresh_engine: FreshEngine, published_base: PublishedBase, locked_registry: str) -> None:
    dead = f"127.0.0.1:{free_port()}/cache/adder"
    locked = f"{locked_registry}/cache/adder"
    result = fresh_engine.build(ADDER, "--local", "--base-registry", published_base.registry,
                                "--cache-from", dead, "--cache-from", locked)
    assert result.returncode == 0, result.describe()
    warnings = _warnings(result)
    assert len(warnings) == 2, result.describe()
    assert warnings[0].startswith(f"Warning: cache {dead}: the registry cannot be reached ("), warnings
    assert "connection refused" in warnings[0]
    assert warnings[1].startswith(f"Warning: cache {locked}: the registry refused the pull "
                                  "(log in with `docker login REGISTRY`)"), warnings
    assert all(w.endswith("; building without it") for w in warnings), warnings
    assert result.json()["cache"]["job_cache"] is None
