"""The python3 base image keeps the image contract of docs/architecture.md and leaks nothing from
its build: no pip cache, no apt lists, no build sources, and the CA bundle given to the build in no
layer at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import docker
import docker.errors
import pytest

from racetrack_builder.base_image import context_digest, ensure_base_image, sources_ref
from racetrack_builder.engine import DockerEngine
from racetrack_builder.reporting import reporting_to
from tests.integration.jobs import DockerCleanup, base_image_options
from tests.reporter import Recorded

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.docker

EXPECTED_ENV = {
    "VIRTUAL_ENV": "/opt/fatman/venv",
    "PYTHONPATH": "/opt/fatman/job/site-packages",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "HOME": "/home/fatman",
    "FATMAN_PORT": "7000",
}


def _env(image: docker.models.images.Image) -> dict[str, str]:
    return dict(item.split("=", 1) for item in image.attrs["Config"]["Env"])


def test_runs_as_the_fatman_user(base_image: str, docker_cleanup: DockerCleanup) -> None:
    code, out = docker_cleanup.run(base_image, ["sh", "-c", "id -u; id -g; id -un; echo ~; pwd"])
    assert code == 0, out
    assert out.split() == ["10001", "10001", "fatman", "/home/fatman", "/src/fatman"]


def test_job_root_is_owned_by_the_job_user(base_image: str, docker_cleanup: DockerCleanup) -> None:
    code, out = docker_cleanup.run(
        base_image,
        [
            "sh",
            "-c",
            "stat -c '%u:%g %n' /src/fatman /home/fatman /opt/fatman/job/site-packages "
            "/opt/fatman/job/bin /opt/fatman/venv; touch /src/fatman/x && echo writable; "
            "readlink /src/job",
        ],
    )
    assert code == 0, out
    lines = out.splitlines()
    assert lines[6] == "/src/fatman"  # Racetrack 2.x's job root, for jobs that name their files by it
    assert lines[:5] == [
        "10001:10001 /src/fatman",
        "10001:10001 /home/fatman",
        # The wrapper and job packages are root's: the job cannot change its own code at run time.
        "0:0 /opt/fatman/job/site-packages",
        "0:0 /opt/fatman/job/bin",
        "0:0 /opt/fatman/venv",
    ]
    assert lines[5] == "writable"


def test_wrapper_is_importable_from_the_venv(base_image: str, docker_cleanup: DockerCleanup) -> None:
    code, out = docker_cleanup.run(
        base_image,
        ["python", "-c", "import sys, fatman_wrapper; print(sys.prefix); print(fatman_wrapper.__file__)"],
    )
    assert code == 0, out
    prefix, module_file = out.split()
    assert prefix == "/opt/fatman/venv"
    assert module_file.startswith("/opt/fatman/venv/lib/")


def test_wrapper_help_works_and_is_the_default_command(
    base_image: str, docker_cleanup: DockerCleanup
) -> None:
    code, explicit = docker_cleanup.run(base_image, ["python", "-m", "fatman_wrapper", "--help"])
    assert code == 0, explicit
    assert "usage" in explicit.lower()
    code, default = docker_cleanup.run(base_image)
    assert code == 0, default
    assert default == explicit


def test_environment_follows_the_image_contract(
    docker_client: docker.DockerClient, base_image: str, python_root_image: str
) -> None:
    image = docker_client.images.get(base_image)
    config = image.attrs["Config"]
    env = _env(image)
    for key, value in EXPECTED_ENV.items():
        assert env.get(key) == value, key
    path = env["PATH"].split(":")
    assert path[:2] == ["/opt/fatman/job/bin", "/opt/fatman/venv/bin"]
    assert "/usr/bin" in path
    assert config["User"] == "fatman"
    assert config["WorkingDir"] == "/src/fatman"
    assert set(config["ExposedPorts"]) == {"7000/tcp"}
    assert config["Cmd"] == ["/opt/fatman/venv/bin/fatman-wrapper", "--help"]
    test = config["Healthcheck"]["Test"]
    # /ready (a job whose load failed is unhealthy), isolated from the job's files (-I).
    assert test[:4] == ["CMD", "python", "-I", "-c"], test
    assert "/ready" in test[-1] and "FATMAN_PORT" in test[-1]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "racetrack/python3"
    assert labels["org.opencontainers.image.base.name"] == python_root_image
    assert labels["org.opencontainers.image.description"]


def test_python_resolves_to_the_wrapper_venv_and_job_packages_come_first(
    base_image: str, docker_cleanup: DockerCleanup
) -> None:
    code, out = docker_cleanup.run(
        base_image, ["python", "-c", "import sys, shutil; print(shutil.which('python')); print(sys.path[1])"]
    )
    assert code == 0, out
    which, first_path = out.split()
    assert which == "/opt/fatman/venv/bin/python"
    assert first_path == "/opt/fatman/job/site-packages"


def _healthcheck_command(docker_client: docker.DockerClient, image: str) -> list[str]:
    test = docker_client.images.get(image).attrs["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD", test
    return list(test[1:])


def test_healthcheck_passes_while_the_wrapper_serves_and_fails_otherwise(
    docker_client: docker.DockerClient, base_image: str, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    check = _healthcheck_command(docker_client, base_image)
    job = tmp_path / "job"
    job.mkdir(mode=0o755)
    (job / "entrypoint.py").write_text(
        "class Echo:\n    def perform(self, x: int) -> int:\n        return x\n"
    )
    (job / "entrypoint.py").chmod(0o644)
    # The container's own loopback is enough for the probe: no network is attached.
    serving = docker_cleanup.start(
        base_image,
        ["python", "-m", "fatman_wrapper", "run", "entrypoint.py"],
        volumes={str(job): {"bind": "/src/fatman", "mode": "ro"}},
    )
    deadline = time.monotonic() + 60
    while True:
        result = serving.exec_run(check)
        if result.exit_code == 0:
            break
        serving.reload()
        assert serving.status == "running", serving.logs().decode("utf-8", "replace")
        assert time.monotonic() < deadline, f"healthcheck still failing after 60 s: {result.output!r}"
        time.sleep(1)

    idle = docker_cleanup.start(base_image, ["sleep", "60"])
    assert idle.exec_run(check).exit_code != 0


def test_a_job_serves_with_a_read_only_root_filesystem(
    base_image: str, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    """Kubernetes' readOnlyRootFilesystem without any writable volume: the workers' metrics go to
    /dev/shm, gunicorn's control socket (which wants $HOME) is off, and perform answers."""
    job = tmp_path / "job"
    job.mkdir(mode=0o755)
    echo = "class Echo:\n    def perform(self, x: int) -> int:\n        return x\n"
    (job / "entrypoint.py").write_text(echo)
    (job / "entrypoint.py").chmod(0o644)
    code = (
        "import json, time, urllib.request\n"
        "for _ in range(120):\n"
        "    try:\n"
        "        urllib.request.urlopen('http://127.0.0.1:7000/ready', timeout=2); break\n"
        "    except Exception: time.sleep(0.5)\n"
        "r = urllib.request.Request('http://127.0.0.1:7000/api/v1/perform', data=b'{\"x\": 7}',"
        " headers={'Content-Type': 'application/json'})\n"
        "print('ANSWER', json.load(urllib.request.urlopen(r, timeout=5)))\n"
    )
    container = docker_cleanup.start(
        base_image,
        ["/opt/fatman/venv/bin/fatman-wrapper", "run", "entrypoint.py"],
        volumes={str(job): {"bind": "/src/fatman", "mode": "ro"}},
        read_only=True,
    )
    probe = container.exec_run(["python", "-I", "-c", code])
    logs = container.logs().decode("utf-8", "replace")
    assert probe.exit_code == 0, (probe.output, logs)
    assert b"ANSWER 7" in probe.output, (probe.output, logs)
    assert "Traceback" not in logs and "Control server error" not in logs, logs
    assert "/dev/shm/fatman-metrics-" in logs, logs


def test_no_build_leftovers_in_the_file_system(base_image: str, docker_cleanup: DockerCleanup) -> None:
    # Run as root so nothing is hidden by permissions; -xdev keeps to the image's own file system.
    script = (
        "find / -xdev \\( -name ca-bundle.pem -o -path /build -o -path '*/.cache/pip' "
        "-o -path '*/wrapper/pyproject.toml' \\) -print; "
        "find /var/lib/apt/lists -type f ! -name lock -print; "
        "find /opt/fatman/job/site-packages /opt/fatman/job/bin /tmp -mindepth 1 -print"
    )
    code, out = docker_cleanup.run(base_image, ["sh", "-c", script], user="0")
    assert code == 0, out
    assert out.strip() == "", f"build leftovers in {base_image}:\n{out}"


# ---- the CA bundle given to a build is in no layer -----------------------------------------------

# Text outside BEGIN/END blocks is ignored by OpenSSL's PEM reader, so this marker rides along in a
# working bundle and lets the scan below find any copy of it, whatever its file name.
CA_MARKER = b"racetrack-test-ca-marker-5f0c1b7e"


@pytest.fixture(scope="module")
def image_built_with_marked_ca(
    docker_client: docker.DockerClient, python_root_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A base image built by `racetrack-build base --ca-cert` with a CA bundle carrying CA_MARKER."""
    host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    bundle = tmp_path_factory.mktemp("ca") / "bundle.pem"
    bundle.write_bytes(
        b"# " + CA_MARKER + b"\n" + (host_bundle.read_bytes() if host_bundle.exists() else b"")
    )
    tag = f"test-ca-{os.getpid()}"
    result = subprocess.run(
        [sys.executable, "-m", "racetrack_builder", "base", "--tag", tag, "--python-image", python_root_image,
         "--ca-cert", str(bundle), "--network", "host"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800, check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    try:
        yield f"racetrack/python3:{tag}"
    finally:
        # The image is also tagged for its sources (see sources_ref): both tags go.
        sources = context_digest(REPO_ROOT / "base-images" / "python3")
        for ref in (f"racetrack/python3:{tag}", sources_ref(tag, sources)):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(ref, force=True)


def _layer_members(saved: Path) -> Iterator[tuple[str, str, bytes]]:
    """(layer, path, content) for every regular file in every layer of a `docker save` archive."""
    with tarfile.open(saved) as outer:
        for layer in outer.getmembers():
            if not layer.name.endswith("layer.tar"):
                continue
            fileobj = outer.extractfile(layer)
            assert fileobj is not None
            with tarfile.open(fileobj=fileobj, mode="r|") as inner:
                for member in inner:
                    content = b""
                    if member.isfile():
                        extracted = inner.extractfile(member)
                        content = extracted.read() if extracted is not None else b""
                    yield layer.name, member.name, content


@pytest.mark.slow
def test_ca_bundle_is_in_no_layer(
    docker_client: docker.DockerClient, image_built_with_marked_ca: str, tmp_path: Path
) -> None:
    saved = tmp_path / "image.tar"
    with saved.open("wb") as out:
        for chunk in docker_client.images.get(image_built_with_marked_ca).save(named=True):
            out.write(chunk)
    layers, leaks = set(), []
    for layer, path, content in _layer_members(saved):
        layers.add(layer)
        if Path(path).name == "ca-bundle.pem" or path.startswith("build/") or CA_MARKER in content:
            leaks.append(f"{layer}: {path}")
    assert layers, "docker save gave no layers: the scan would prove nothing"
    assert not leaks, "the build's CA bundle leaked into the image:\n" + "\n".join(leaks)


def test_ca_marker_scan_finds_a_planted_copy(
    docker_client: docker.DockerClient, base_image: str, docker_cleanup: DockerCleanup, tmp_path: Path
) -> None:
    """The layer scan above must be able to fail: plant the marker in one layer and find it."""
    (tmp_path / "planted.txt").write_bytes(b"x " + CA_MARKER)
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image}\nCOPY planted.txt /tmp/planted.txt\n")
    tag = docker_cleanup.image_tag("planted")
    docker_client.images.build(path=str(tmp_path), tag=tag, network_mode="none", rm=True)
    saved = tmp_path / "image.tar"
    with saved.open("wb") as out:
        for chunk in docker_client.images.get(tag).save(named=True):
            out.write(chunk)
    found = [path for _, path, content in _layer_members(saved) if CA_MARKER in content]
    assert found == ["tmp/planted.txt"]


# ---- ensure_base_image rebuilds exactly when the image's content would change --------------------


@pytest.mark.slow
def test_base_image_is_rebuilt_only_when_its_sources_change(
    docker_client: docker.DockerClient, python_root_image: str, tmp_path: Path
) -> None:
    # A copy of the base image sources, so the test may edit the wrapper.
    wrapper = tmp_path / "python3"
    shutil.copytree(
        REPO_ROOT / "base-images" / "python3", wrapper,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"),
    )
    options = base_image_options(python_root_image, tag=f"test-rebuild-{os.getpid()}", sources=wrapper)
    ref = f"racetrack/python3:{options.tag}"
    engine = DockerEngine()

    used: list[str] = []

    def ensure() -> list[str]:
        with reporting_to(Recorded()) as said:
            assert isinstance(said, Recorded)
            used.append(ensure_base_image(engine, options))
        return said.messages

    first_sources = sources_ref(options.tag, context_digest(wrapper))
    keyed = [first_sources]
    try:
        assert ensure() == [f"building the base image: {ref} is not on the engine"]
        first = docker_client.images.get(ref).id
        assert docker_client.images.get(first_sources).id == first  # also under its sources' tag
        assert ensure() == []
        # Builds start FROM the sources' tag, which no other version of the tool moves.
        assert docker_client.images.get(ref).id == first and used == [first_sources, first_sources]

        # Tests are not part of the image (.dockerignore): changing them must not rebuild.
        (wrapper / "tests" / "test_not_in_image.py").write_text("def test_nothing() -> None: ...\n")
        assert ensure() == []

        init = wrapper / "fatman_wrapper" / "__init__.py"
        original = init.read_text()
        init.write_text(original + "\n# changed by test_base_image_is_rebuilt_only_when_its_sources_change\n")
        keyed.append(sources_ref(options.tag, context_digest(wrapper)))
        assert ensure() == [f"building the base image: {ref} was built from other wrapper sources"]
        assert docker_client.images.get(ref).id != first
        code = docker_client.containers.run(
            ref,
            ["sh", "-c", "grep -c 'changed by test_base_image_is_rebuilt' "
             "$(python -c 'import fatman_wrapper; print(fatman_wrapper.__file__)')"],
            network_mode="none", remove=True,
        )
        assert code.strip() == b"1"

        # The first sources again (another racetrack-build version sharing the engine): their
        # image is found under its sources' tag, not built again over the other version's.
        init.write_text(original)
        assert ensure() == [f"using {first_sources} ({ref} was built from other wrapper sources)"]
        assert used[-1] == first_sources and docker_client.images.get(first_sources).id == first
    finally:
        for tag in (ref, *keyed):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(tag, force=True)


@pytest.mark.slow
def test_base_image_builds_from_a_package_index_given_as_build_argument(
    docker_client: docker.DockerClient,
    python_root_image: str,
    public_index: str,
    wheelhouse: Callable[[Sequence[str]], Path],
    docker_cleanup: DockerCleanup,
    tmp_path: Path,
) -> None:
    """PIP_INDEX_URL reaches pip in the builder stage: with only the local index and no CA bundle,
    the build succeeds, so it never touched the public index."""
    src = REPO_ROOT / "base-images" / "python3"
    project = tomllib.loads((src / "pyproject.toml").read_text())
    wheelhouse([*project["build-system"]["requires"], *project["project"]["dependencies"]])
    context = tmp_path / "context"
    shutil.copytree(
        src, context, ignore=shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "ca-bundle.pem")
    )
    tag = docker_cleanup.image_tag("base-from-local-index")
    docker_client.images.build(
        path=str(context),
        tag=tag,
        buildargs={"PYTHON_IMAGE": python_root_image, "PIP_INDEX_URL": public_index},
        network_mode="host",
        rm=True,
        forcerm=True,
    )
    code, out = docker_cleanup.run(tag, ["python", "-m", "fatman_wrapper", "--help"])
    assert code == 0, out
    # The index URL was a build argument of the builder stage only.
    env = _env(docker_client.images.get(tag))
    assert "PIP_INDEX_URL" not in env
    assert public_index not in json.dumps(docker_client.images.get(tag).history())
