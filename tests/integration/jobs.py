"""Helpers for integration tests that build jobs through the ``racetrack-build`` command line and
serve the images they produce.

The CLI runs in a subprocess, exactly as a user runs it, so exit codes, stdout and stderr are the
real ones. Jobs come from real git repositories (``tests/gitrepos.py``); the manifest handed to the
CLI is a copy of the job's own with ``git.remote`` (and, where a test needs it, ``git.branch`` /
``git.directory``) pointed at that repository and ``PIP_INDEX_URL`` in ``build_env`` pointed at the
suite's local package index, so no build reaches the internet.

Typical use::

    files = example_files("adder")                      # the example as committed in examples/
    bare = gitrepos.make_bare_repo(tmp_path / "r.git", {"examples/adder/" + k: v for k, v in files.items()},
                                   branch="main")
    manifest = client_manifest(tmp_path / "client", "adder", remote=bare.as_uri(),
                               build_env={"PIP_INDEX_URL": public_index})
    result = run_cli("build", manifest, "--network", "host", "--tag", tag, "--json")
    assert result.returncode == 0, result.describe()
    with serve(docker_client, tag, name=...) as job:
        assert job.post("/api/v1/perform", json={"x": 1, "y": 2}).json() == 3
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
import requests
import yaml
from docker.models.containers import Container

from racetrack_builder.base_image import BaseImageOptions
from tests import gitrepos

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples"
# Prefix of every image and container a test creates, so leftovers of a killed run are easy to find:
# docker ps -a --filter name=racetrack-test; docker images 'racetrack-test/*'
TEST_PREFIX = "racetrack-test"
# The CLI as users run it, from this checkout's venv.
CLI: tuple[str, ...] = (sys.executable, "-m", "racetrack_builder")
# A job build with pip and apt steps takes well under a minute here; this bounds a hung engine.
CLI_TIMEOUT_S = 900
READY_TIMEOUT_S = 90.0
HTTP_TIMEOUT_S = 30.0


# ---- the machine ------------------------------------------------------------------------------------


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where missing infrastructure is a failure."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def cache_root() -> Path:
    """The machine-wide cache shared with the scripts: ``$RACETRACK_CI_CACHE``, else
    ``/var/cache/racetrack-ci`` when writable, else ``~/.cache/racetrack-ci`` (non-root developers)."""
    explicit = os.environ.get("RACETRACK_CI_CACHE")
    if explicit:
        return Path(explicit)
    system = Path("/var/cache/racetrack-ci")
    if os.access(system if system.exists() else system.parent, os.W_OK):
        return system
    return Path.home() / ".cache" / "racetrack-ci"


# ---- the examples ----------------------------------------------------------------------------------


# The manifest file names of the two generations: the fatman era's and Racetrack 2.x's.
MANIFEST_FILES = ("fatman.yaml", "job.yaml")


def example_names() -> list[str]:
    """Every folder under examples/ holding a fatman.yaml, sorted."""
    return sorted(p.parent.name for p in EXAMPLES_DIR.glob("*/fatman.yaml"))


def v2_example_names() -> list[str]:
    """Every ``examples/v2-*`` folder (Racetrack 2.x jobs, described by a job.yaml), sorted."""
    return sorted(p.name for p in EXAMPLES_DIR.glob("v2-*") if p.is_dir())


def examples_built_elsewhere() -> frozenset[str]:
    """fatman.yaml examples that another module builds and checks, so test_examples.py leaves them
    out: the data-science examples of ``test_data_science_examples.EXAMPLES`` and the private git
    library of ``test_install_needs``, read from those modules so there is one list of them."""
    # Imported late: they import this module.
    from tests.integration import test_data_science_examples, test_install_needs

    return frozenset([*test_data_science_examples.EXAMPLES, test_install_needs.GIT_EXAMPLE])


def image_secret_hits(client: docker.DockerClient, ref: str, values: Sequence[str]) -> tuple[int, list[str]]:
    """(files read, findings) of a scan of image ``ref`` for each of ``values``: its configuration,
    its history and every file of every layer (``docker save``)."""
    import io
    import tarfile
    import tempfile

    wanted = [v.encode() for v in values if v]
    findings = [f"inspect: {v!r}" for v in values if v and v in json.dumps(client.api.inspect_image(ref))]
    findings += [f"history: {v!r}" for v in values if v and v in json.dumps(client.api.history(ref))]
    files = 0
    with tempfile.TemporaryFile() as saved:
        for chunk in client.images.get(ref).save(named=True):
            saved.write(chunk)
        saved.seek(0)
        with tarfile.open(fileobj=saved) as archive:
            for member in archive:
                blob = archive.extractfile(member) if member.isfile() else None
                if blob is None:
                    continue
                data = blob.read()
                findings += [f"{member.name}: {v!r}" for v in wanted if v in data]
                try:
                    layer = tarfile.open(fileobj=io.BytesIO(data))
                except tarfile.TarError:
                    continue  # a configuration or manifest, searched above
                with layer:
                    for entry in layer:
                        content = layer.extractfile(entry) if entry.isfile() else None
                        if content is not None:
                            files += 1
                            found = content.read()
                            findings += [f"{member.name}: {entry.name}: {v!r}" for v in wanted if v in found]
    return files, findings


def example_manifest_file(name: str) -> str:
    """The manifest file name of ``examples/<name>``: fatman.yaml or job.yaml (never both)."""
    found = [f for f in MANIFEST_FILES if (EXAMPLES_DIR / name / f).is_file()]
    if len(found) != 1:
        raise FileNotFoundError(f"examples/{name} holds {found or 'no manifest'}; "
                                f"want one of {MANIFEST_FILES}")
    return found[0]


def example_files(name: str) -> dict[str, bytes]:
    """The files of ``examples/<name>`` that git would commit (tracked, or untracked and not ignored),
    relative to that folder. A developer's filled-in ``.env.build`` is ignored, so it never leaks
    into a test repository."""
    folder = EXAMPLES_DIR / name
    listed = gitrepos.git("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".",
                          cwd=folder)
    files: dict[str, bytes] = {}
    for rel in sorted(filter(None, listed.split("\0"))):
        path = folder / rel
        if path.is_file():  # a tracked file deleted in the working tree is not part of the example
            files[rel] = path.read_bytes()
    manifest_file = example_manifest_file(name)
    if manifest_file not in files:
        raise FileNotFoundError(f"examples/{name} has no {manifest_file} that git would commit")
    return files


def example_manifest(name: str) -> dict[str, Any]:
    """The example's fatman.yaml (or job.yaml) as plain data."""
    manifest_file = example_manifest_file(name)
    data = yaml.safe_load((EXAMPLES_DIR / name / manifest_file).read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"examples/{name}/{manifest_file} is not a mapping"
    return data


def example_requirements(name: str, *, exclude: Sequence[str] = ()) -> list[str]:
    """The requirement lines of the example's requirements file (options and comments left out), for
    ``wheelhouse()``; ``exclude`` drops packages served elsewhere (the private index's)."""
    manifest = example_manifest(name)
    rel = (manifest.get("jobtype_extra") or manifest.get("python") or {}).get("requirements_path")
    if not rel:
        return []
    # git.directory is examples/<name>[/sub] in the project's repository; the job root is that folder.
    directory = (manifest.get("git") or {}).get("directory", f"examples/{name}")
    job_root = EXAMPLES_DIR / name / directory.removeprefix(f"examples/{name}").lstrip("/")
    lines = (job_root / rel).read_text(encoding="utf-8")
    skip = {e.lower() for e in exclude}
    requirements = []
    for line in lines.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        if line.split("=")[0].split("<")[0].split(">")[0].strip().lower() in skip:
            continue
        requirements.append(line)
    return requirements


def client_manifest(folder: Path, name_or_data: str | Mapping[str, Any], *, remote: str,
                    branch: str | None = None, directory: str | None = None,
                    build_env: Mapping[str, str] | None = None,
                    secret_files: Mapping[str, str] | None = None, file_name: str | None = None,
                    **fields: Any) -> Path:
    """Write the manifest the user would hand to the CLI into ``folder`` and return its path.

    It is the example's manifest (or ``name_or_data`` itself) with ``git.remote`` replaced, and
    ``git.branch`` / ``git.directory`` when given; ``build_env`` entries are added to the manifest's
    own; other keyword arguments replace top-level fields. ``secret_files`` (file name -> text) are
    written next to it, where ``secret_*_env_file`` paths are resolved. The file is called
    ``file_name``: by default the example's own (fatman.yaml or job.yaml), else fatman.yaml.
    """
    if file_name is None:
        file_name = example_manifest_file(name_or_data) if isinstance(name_or_data, str) else "fatman.yaml"
    if isinstance(name_or_data, str):
        data = example_manifest(name_or_data)
    else:
        data = json.loads(json.dumps(name_or_data))  # a deep copy: the caller's data stays as it was
    git = dict(data.get("git") or {})
    git["remote"] = remote
    if branch is not None:
        git["branch"] = branch
    if directory is not None:
        git["directory"] = directory
    data["git"] = git
    if build_env:
        data["build_env"] = {**(data.get("build_env") or {}), **build_env}
    data.update(fields)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    for file_name, text in (secret_files or {}).items():
        (folder / file_name).write_text(text, encoding="utf-8")
    return path


def env_file(values: Mapping[str, str]) -> str:
    """``.env`` text for ``values`` (single-quoted: the values the suite makes hold no quotes)."""
    for value in values.values():
        assert "'" not in value and "\n" not in value, "env_file() cannot quote this value"
    return "".join(f"{name}='{value}'\n" for name, value in values.items())


def private_index_secrets(index: Any) -> dict[str, str]:
    """The secret build variables of examples/secret-env for the suite's private index (a
    ``PackageIndex`` from the conftest): user, password and ``host:port``."""
    return {
        "PRIVATE_INDEX_USER": index.username,
        "PRIVATE_INDEX_PASSWORD": index.password,
        "PRIVATE_INDEX_HOST": urlsplit(index.url).netloc,
    }


def examples_tree(names: Sequence[str]) -> dict[str, bytes]:
    """``examples/<name>/...`` paths -> contents, for committing several examples into one repository
    laid out like this project."""
    tree: dict[str, bytes] = {}
    for name in names:
        tree.update({f"examples/{name}/{rel}": content for rel, content in example_files(name).items()})
    return tree


def our_base_ref(version: str = "3.11", tag: str = "latest", root: Path | None = None) -> str:
    """The base image a build of this checkout starts FROM: its wrapper sources' tag
    (``racetrack/python3:<tag>[-py<version>]-<digest>``, which no other version of the tool moves).
    ``root``: another copy of the tool."""
    from racetrack_builder.base_image import context_digest, sources_ref

    return sources_ref(tag, context_digest((root or REPO_ROOT) / "base-images" / "python3"), version)


# ---- the command line ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    """One finished run of the CLI."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    def json(self) -> Any:
        """stdout parsed as JSON (the ``--json`` summary)."""
        return json.loads(self.stdout)

    def describe(self) -> str:
        """The command and its output, for assertion messages."""
        return (f"racetrack-build {' '.join(self.args)} -> exit {self.returncode} "
                f"after {self.duration:.1f}s\n"
                f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-6000:]}")


def cli_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment (RACETRACK_PYTHON_IMAGE included, as the python_root_image fixture
    sets it), git made hermetic like the fixtures' own git, plus ``extra``."""
    env = dict(os.environ)
    for key, value in gitrepos.GIT_ENV.items():
        if key.startswith("GIT_CONFIG") or key == "GIT_TERMINAL_PROMPT":
            env[key] = value
    env.update(extra or {})
    return env


def run_cli(*args: str | os.PathLike[str], env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float = CLI_TIMEOUT_S) -> CliResult:
    """Run ``racetrack-build ARGS`` to completion and return what it did (never raises on failure)."""
    argv = tuple(os.fspath(a) for a in args)
    started = time.monotonic()
    proc = subprocess.run([*CLI, *argv], env=cli_environment(env), cwd=cwd or REPO_ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                          check=False)
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


# ---- images that outlive one test ------------------------------------------------------------------


@dataclass
class DockerCleanup:
    """Unique names for what tests create in the engine, and their removal afterwards.

    The ``docker_cleanup`` fixture hands one to each test; module-scoped fixtures that share an
    image between tests make their own and call :meth:`remove_all` at the end.
    """

    client: docker.DockerClient
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    images: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)

    def image_tag(self, name: str = "image") -> str:
        """A fresh ``racetrack-test/<name>:<id>`` tag, removed (with its image) after the test."""
        tag = f"{TEST_PREFIX}/{name}:{self.run_id}-{len(self.images)}"
        self.images.append(tag)
        return tag

    def track(self, ref: str) -> str:
        """Remove ``ref`` too at the end (an image tagged by other means, e.g. for a registry)."""
        self.images.append(ref)
        return ref

    def container_name(self, name: str = "container") -> str:
        """A fresh container name, whose container is removed (forcibly) after the test."""
        cname = f"{TEST_PREFIX}-{name}-{self.run_id}-{len(self.containers)}"
        self.containers.append(cname)
        return cname

    def start(self, image: str, command: Sequence[str] | str | None = None, **kwargs: Any) -> Container:
        """Start ``command`` in a new, tracked container and return it without waiting.

        No network unless ``network_mode`` is given (tests use ``host`` or none: traffic stays on
        this machine).
        """
        kwargs.setdefault("network_mode", "none")
        container: Container = self.client.containers.create(
            image, command, name=self.container_name("run"), **kwargs
        )
        container.start()
        return container

    def run(self, image: str, command: Sequence[str] | str | None = None, **kwargs: Any) -> tuple[int, str]:
        """Run ``command`` in a new container to completion; return (exit code, stdout+stderr)."""
        container = self.start(image, command, **kwargs)
        status = container.wait(timeout=300)
        output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        return int(status["StatusCode"]), output

    def remove_all(self) -> list[str]:
        """Remove every tracked container, then image; return what could not be removed.

        A name handed out but never used (say, a build that failed as the test expected) is fine.
        """
        problems = []
        for cname in reversed(self.containers):
            try:
                self.client.containers.get(cname).remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                problems.append(f"container {cname}: {exc}")
        for tag in reversed(self.images):
            try:
                self.client.images.remove(tag, force=True)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                problems.append(f"image {tag}: {exc}")
        return problems


def registry_tags(registry: str, repository: str) -> list[str]:
    """The tags of ``repository`` in the registry at ``registry`` (``127.0.0.1:PORT``), from its own
    API; empty when it has none."""
    answer = requests.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10)
    return list(answer.json().get("tags") or []) if answer.status_code == 200 else []


def image_exists(client: docker.DockerClient, ref: str) -> bool:
    """Whether the engine has an image called ``ref``."""
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


# ---- serving an image ------------------------------------------------------------------------------


@dataclass
class JobServer:
    """A running job container and its base URL (``http://127.0.0.1:PORT``)."""

    container: Container
    url: str
    session: requests.Session = field(default_factory=requests.Session)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        kwargs.setdefault("allow_redirects", False)
        return self.session.get(self.url + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.session.post(self.url + path, **kwargs)

    def logs(self) -> str:
        """The container's output so far (for assertion messages)."""
        with contextlib.suppress(docker.errors.APIError):
            return self.container.logs().decode("utf-8", "replace")[-5000:]
        return "(no logs)"


def wait_ready(url: str, container: Container, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll ``url/ready`` until 200; raise AssertionError with the container's log otherwise."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            raise AssertionError(f"the container stopped before it was ready:\n"
                                 f"{container.logs().decode('utf-8', 'replace')[-5000:]}")
        try:
            answer = requests.get(url + "/ready", timeout=5)
        except requests.ConnectionError as exc:
            last = str(exc)
        else:
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text[:500]}"
        time.sleep(0.25)
    raise AssertionError(f"not ready after {timeout:.0f}s (last: {last}):\n"
                         f"{container.logs().decode('utf-8', 'replace')[-5000:]}")


@contextlib.contextmanager
def serve(client: docker.DockerClient, image: str, *, environment: Mapping[str, str] | None = None,
          name: str | None = None, network: str | None = None) -> Iterator[JobServer]:
    """Start ``image``, wait until ready, yield it; the container is removed on every exit path.

    By default its port is published on 127.0.0.1 only. With ``network="host"`` the container shares
    the host's network instead, listening on 127.0.0.1 only (``FATMAN_HOST``) on a free port of its
    own (``FATMAN_PORT``), so jobs started this way reach each other over loopback, never through a
    bridge address.
    """
    env = dict(environment or {})
    options: dict[str, Any]
    if network == "host":
        port = gitrepos.free_port()
        env.update(FATMAN_HOST="127.0.0.1", FATMAN_PORT=str(port))
        options = {"network_mode": "host"}
    elif network is None:
        options = {"ports": {"7000/tcp": ("127.0.0.1", None)}}
    else:
        raise ValueError(f"serve() runs containers on the host network or with a published port, "
                         f"not {network!r}")
    container = client.containers.run(
        image, detach=True, environment=env, init=True,
        name=name or f"{TEST_PREFIX}-serve-{uuid.uuid4().hex[:10]}", **options,
    )
    try:
        container.reload()
        if network != "host":
            port = int(container.attrs["NetworkSettings"]["Ports"]["7000/tcp"][0]["HostPort"])
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, container)
        yield JobServer(container, url)
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def openapi_examples(document: Mapping[str, Any]) -> dict[str, Any]:
    """``{path: example body}`` of every POST operation documenting one in an OpenAPI document."""
    found: dict[str, Any] = {}
    for path, operations in (document.get("paths") or {}).items():
        post = (operations or {}).get("post") or {}
        content = ((post.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
        if "example" in content:
            found[path] = content["example"]
    return found


# Trusted by pip while building base images: this machine's TLS to the package index is
# intercepted by a CA only the host knows (docs/ci.md); elsewhere it is just the system bundle.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def base_image_options(python_root_image: str, **changes: Any) -> BaseImageOptions:
    """How the suite builds base images: on the session's root image, host network, host CA."""
    return BaseImageOptions(python_image=python_root_image, network="host",
                            ca_cert=HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None, **changes)
