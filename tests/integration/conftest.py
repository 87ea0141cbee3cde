"""Fixtures for the integration suite: a real Docker engine, the python3 base image, local package
indexes.

Docker
    ``docker_client`` connects to the engine once per session. Without an engine, tests marked
    ``docker`` are skipped with the fix in the message, except under ``CI=true``, where they fail:
    CI must never go green by skipping. ``python_root_image`` and ``base_image`` make sure the root
    image and ``racetrack/python3:latest`` exist, building them with the scripts in ``scripts/``
    (which reuse what is already there). ``docker_cleanup`` hands out unique image tags and
    container names and removes whatever a test created with them.

Package indexes
    Builds inside containers cannot verify TLS to the public index on these machines, and a real
    index makes tests slow and flaky anyway. So the suite serves wheels itself with pypiserver on
    127.0.0.1: ``wheelhouse(requirements)`` downloads wheels on the host once (cached across runs
    in ``$RACETRACK_CI_CACHE/wheels``, default ``/var/cache/racetrack-ci/wheels``) and adds them to
    the wheelhouse that ``public_index`` serves without authentication. ``private_index`` serves,
    behind basic auth, a tiny package built here that exists nowhere else
    (:data:`PRIVATE_PACKAGE`), to exercise secret build credentials. Containers reach both with
    host networking (``docker build --network host``).

Typical use::

    def test_job(base_image, public_index, private_index, wheelhouse, docker_cleanup):
        wheelhouse(["six==1.16.0"])
        requirements = (
            f"--index-url {public_index}\\n"
            f"--extra-index-url {private_index.url_with_credentials}\\n"
            f"six==1.16.0\\n{private_index.requirement}\\n"
        )
        # ... build, then run `python -c private_index.import_check` in the job image
        tag = docker_cleanup.image_tag("my-job")
"""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from racetrack_builder.base_image import ensure_base_image
from racetrack_builder.contract import DEFAULT_PYTHON_VERSION
from racetrack_builder.engine import DockerEngine
from racetrack_builder.images import DEFAULT_PYTHON_IMAGE, is_template, python_image
from tests import gitrepos
from tests.integration.jobs import DockerCleanup, base_image_options, image_exists, in_ci
from tests.integration.package_index import (
    PRIVATE_MODULE,
    PRIVATE_PACKAGE,
    PRIVATE_PACKAGE_VERSION,
    PackageIndex,
    cached_download,
    private_wheel,
    pypiserver,
)

# passlib imports the standard library's deprecated `crypt` module; the suite turns warnings into
# errors, and this one is passlib's to fix, not ours.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'crypt' is deprecated", DeprecationWarning)
    from passlib.apache import HtpasswdFile

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO_ROOT / "scripts"

BASE_IMAGE = "racetrack/python3:latest"
# The images CI builds with scripts/ensure-root-image.sh when no registry can provide python:3.11-slim.
CI_PYTHON_REPOSITORY = "racetrack-ci/python"
CI_PYTHON_IMAGE = CI_PYTHON_REPOSITORY + ":{version}"
PRODUCT_PYTHON_IMAGE = DEFAULT_PYTHON_IMAGE
PRODUCT_DEFAULT_ROOT = python_image(PRODUCT_PYTHON_IMAGE, DEFAULT_PYTHON_VERSION)
PYTHON_IMAGE_ENV = "RACETRACK_PYTHON_IMAGE"



def _run_script(name: str, env: dict[str, str] | None = None, args: Sequence[str] = ()) -> None:
    """Run one of scripts/*.sh, failing the fixture with its output when it fails."""
    result = subprocess.run(
        ["bash", str(SCRIPTS_DIR / name), *args],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"scripts/{name} failed (exit {result.returncode}); run it by hand to see why:\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}",
            pytrace=False,
        )


# ---- Docker ---------------------------------------------------------------------------------------


def _connect_to_engine() -> tuple[docker.DockerClient | None, str]:
    """A client whose engine answered a ping, or None and the reason."""
    try:
        client = docker.from_env()
        client.ping()
        return client, ""
    except docker.errors.DockerException as exc:
        reason = str(exc)
    # docker-py leaves the socket of a failed connection to the garbage collector; collect it here,
    # where its ResourceWarning is expected, instead of failing whichever test runs next.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    return None, reason


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A docker-py client for the local engine (API version negotiated with the engine)."""
    client, reason = _connect_to_engine()
    if client is None:
        message = (
            f"no Docker engine answers ({reason}); start one with `bash scripts/ensure-docker.sh` "
            "(as root) or point DOCKER_HOST at an engine"
        )
        if in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _docker_marker_needs_engine(request: pytest.FixtureRequest) -> None:
    """Every test marked ``docker`` gets the engine check, even one that never asks for the client."""
    if request.node.get_closest_marker("docker") is not None:
        request.getfixturevalue("docker_client")


@pytest.fixture(scope="session")
def python_image_setting(docker_client: docker.DockerClient) -> Iterator[str]:
    """The root image setting of the session: a name or a ``{version}`` template.

    ``$RACETRACK_PYTHON_IMAGE`` when set; else the product's ``python:{version}-slim`` when the
    engine has ``python:3.11-slim``; else the locally built CI images, ``racetrack-ci/python:{version}``
    (made by scripts/ensure-root-image.sh when missing). The choice is exported as
    ``RACETRACK_PYTHON_IMAGE`` for the session, so racetrack-build run by tests agrees.
    """
    setting = os.environ.get(PYTHON_IMAGE_ENV) or (
        PRODUCT_PYTHON_IMAGE if image_exists(docker_client, PRODUCT_DEFAULT_ROOT) else CI_PYTHON_IMAGE
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PYTHON_IMAGE_ENV, setting)
        yield setting


@pytest.fixture(scope="session")
def root_image_for(
    docker_client: docker.DockerClient, python_image_setting: str
) -> Callable[[str], str]:
    """``ensure(version) -> name``: the root image of that Python, present on the engine."""

    def ensure(version: str) -> str:
        if not is_template(python_image_setting) and version != DEFAULT_PYTHON_VERSION:
            message = (f"{PYTHON_IMAGE_ENV}={python_image_setting} is one image, not a template with "
                       f"{{version}}: no root image for Python {version} (e.g. set it to {CI_PYTHON_IMAGE})")
            if in_ci():
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        name = python_image(python_image_setting, version)
        if not image_exists(docker_client, name):
            if not python_image_setting.startswith(CI_PYTHON_REPOSITORY + ":"):
                pytest.fail(
                    f"{PYTHON_IMAGE_ENV}={python_image_setting} gives {name}, which is not on the engine; "
                    f"pull it (docker pull {name}) or unset {PYTHON_IMAGE_ENV} to build "
                    f"{CI_PYTHON_IMAGE} locally",
                    pytrace=False,
                )
            _run_script("ensure-root-image.sh", {PYTHON_IMAGE_ENV: python_image_setting}, [version])
        return name

    return ensure


@pytest.fixture(scope="session")
def python_root_image(root_image_for: Callable[[str], str]) -> str:
    """The root image of the default Python, present on the engine."""
    return root_image_for(DEFAULT_PYTHON_VERSION)


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient, python_root_image: str) -> str:
    """``racetrack/python3:latest``, built from this checkout's base-images/python3 when missing or
    stale: the product's own ensure_base_image decides, by the labels it puts on the image."""
    ensure_base_image(DockerEngine(), base_image_options(python_root_image))
    return BASE_IMAGE


@pytest.fixture
def docker_cleanup(docker_client: docker.DockerClient) -> Iterator[DockerCleanup]:
    """Hands out unique image tags and container names; removes them all when the test ends."""
    tracker = DockerCleanup(docker_client)
    yield tracker
    problems = tracker.remove_all()
    if problems:
        pytest.fail("could not clean up after the test: " + "; ".join(problems), pytrace=False)


# ---- package indexes ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _index_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("package-indexes")
    dirs = {name: base / name for name in ("public", "private", "logs")}
    for path in dirs.values():
        path.mkdir()
    return dirs


@pytest.fixture(scope="session")
def wheelhouse(_index_dirs: dict[str, Path]) -> Callable[[Sequence[str]], Path]:
    """``add(requirements) -> Path``: put wheels for ``requirements`` (and their dependencies) into
    the public wheelhouse and return its folder. Downloads happen on the host, once per machine."""
    public = _index_dirs["public"]

    def add(requirements: Sequence[str]) -> Path:
        if isinstance(requirements, str):
            raise TypeError("wheelhouse() takes a list of requirement strings, not one string")
        if not requirements:
            return public
        for path in cached_download(list(requirements)).iterdir():
            if path.is_file() and not path.name.startswith(".") and path.name != "requirements.txt":
                dest = public / path.name
                if not dest.exists():
                    shutil.copy2(path, dest)
        return public

    return add


@pytest.fixture(scope="session")
def public_index(_index_dirs: dict[str, Path]) -> Iterator[str]:
    """URL (``http://127.0.0.1:PORT/simple/``) of an index without authentication serving the
    wheelhouse; fill it with ``wheelhouse([...])``."""
    with pypiserver(_index_dirs["public"], _index_dirs["logs"]) as url:
        yield url


@pytest.fixture(scope="session")
def private_index(_index_dirs: dict[str, Path]) -> Iterator[PackageIndex]:
    """An index behind basic auth (listing and downloads) serving only :data:`PRIVATE_PACKAGE`.

    Checked on start: refuses anonymous requests, lists the package with the credentials.
    """
    root = _index_dirs["private"]
    shutil.copy2(private_wheel(), root)
    username, password = "racetrack", secrets.token_urlsafe(12)
    htpasswd_file = _index_dirs["logs"] / "htpasswd"
    htpasswd = HtpasswdFile(str(htpasswd_file), new=True)
    htpasswd.set_password(username, password)
    htpasswd.save()
    with pypiserver(root, _index_dirs["logs"], htpasswd_file) as url:
        page = f"{url}{PRIVATE_PACKAGE}/"
        anonymous = requests.get(page, timeout=5)
        authed = requests.get(page, auth=(username, password), timeout=5)
        if anonymous.status_code != 401 or authed.status_code != 200 or PRIVATE_MODULE not in authed.text:
            pytest.fail(
                f"private index misconfigured: anonymous {anonymous.status_code} (want 401), "
                f"with credentials {authed.status_code} (want 200 listing {PRIVATE_MODULE})",
                pytrace=False,
            )
        yield PackageIndex(
            url=url,
            root=root,
            username=username,
            password=password,
            requirement=f"{PRIVATE_PACKAGE}=={PRIVATE_PACKAGE_VERSION}",
            import_check=f"from {PRIVATE_MODULE} import secret_greeting; print(secret_greeting('racetrack'))",
        )


# -- a registry on 127.0.0.1 (the push tests, and the secrets scan of what is pushed) ---------------
REGISTRY_BINARY = "docker-registry"
START_TIMEOUT_S = 30.0
REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


@contextlib.contextmanager
def _serve_registry(folder: Path, htpasswd: Path | None = None) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a registry serving from ``folder / "storage"`` (with ``htpasswd``: only to
    those users, by basic auth) until the block ends."""
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        message = (f"{REGISTRY_BINARY} is not installed; install Debian's package: "
                   "apt-get install -y docker-registry")
        # As the conftest's in_ci(): CI must never go green by skipping.
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    port = gitrepos.free_port()
    config = folder / "registry.yml"
    text = REGISTRY_CONFIG.format(storage=folder / "storage", port=port)
    if htpasswd is not None:
        text += f"auth:\n  htpasswd:\n    realm: racetrack-test\n    path: {htpasswd}\n"
    config.write_text(text)
    log_path = folder / "registry.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"{REGISTRY_BINARY} exited ({process.returncode}):\n"
                            f"{log_path.read_text()[-2000:]}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code in (200, 401):
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{REGISTRY_BINARY} did not answer within {START_TIMEOUT_S:.0f}s; see {log_path}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        gitrepos.stop_process(process)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a registry serving from a temporary folder, for this test only."""
    with _serve_registry(tmp_path) as address:
        yield address


@pytest.fixture(scope="session")
def session_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a registry for the whole session (the registry cache's tests share the
    base images published there once)."""
    with _serve_registry(tmp_path_factory.mktemp("session-registry")) as address:
        yield address


@pytest.fixture(scope="session")
def locked_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a registry that refuses every request without credentials."""
    folder = tmp_path_factory.mktemp("locked-registry")
    htpasswd = HtpasswdFile(str(folder / "htpasswd"), new=True, default_scheme="bcrypt")
    htpasswd.set_password("racetrack", secrets.token_urlsafe(12))
    htpasswd.save()
    with _serve_registry(folder, folder / "htpasswd") as address:
        yield address
