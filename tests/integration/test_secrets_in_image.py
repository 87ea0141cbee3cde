"""Secret values never reach the image, the build context or the CLI's output.

examples/secret-env is built with real credentials of the suite's private index (``.env.build``) and
a random runtime API key (``.env.runtime``). The image works: the private package is installed and,
in a container started by ``racetrack-build run``, the job sees the runtime key. Then every place a
secret could hide is searched for every secret value: ``docker history``, the image's
configuration, every file of every layer (``docker save``), the context written by ``render -o``
and everything the CLI printed, with and without ``-v``.

The one value not searched for is the private index's user name: the fixture fixes it to
``racetrack``, the product's own name, which appears in the image legitimately (labels, the wrapper).
The user *with* the password (``racetrack:PASSWORD``, as in the index URL) is searched for.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import secrets
import signal
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors
import pytest
import requests

from tests import gitrepos
from tests.integration.jobs import (
    CLI,
    REPO_ROOT,
    CliResult,
    DockerCleanup,
    cli_environment,
    client_manifest,
    env_file,
    examples_tree,
    private_index_secrets,
    run_cli,
    serve,
)

if TYPE_CHECKING:
    from tests.integration.package_index import PackageIndex

pytestmark = pytest.mark.docker

EXAMPLE = "secret-env"
RUN_STOP_TIMEOUT_S = 30
RUN_READY_TIMEOUT_S = 90


@dataclass(frozen=True)
class SecretBuild:
    manifest: Path
    image: str  # NAME:VERSION, what `racetrack-build run MANIFEST` starts
    build_secrets: dict[str, str]
    runtime_secrets: dict[str, str]
    build: CliResult  # the -v --no-cache build
    searched: dict[str, str]  # description -> value, every value that must appear nowhere

    def hits(self, data: bytes | str) -> list[str]:
        """The descriptions of the secret values found in ``data``."""
        raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
        return [what for what, value in self.searched.items() if value.encode() in raw]


@pytest.fixture(scope="module")
def secret_build(
    docker_client: docker.DockerClient,
    base_image: str,
    public_index: str,
    private_index: PackageIndex,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SecretBuild]:
    """examples/secret-env built once with ``-v --no-cache`` (so pip's whole output is printed)."""
    base = tmp_path_factory.mktemp("secret-env")
    remote = gitrepos.make_bare_repo(base / "remote.git", examples_tree([EXAMPLE]), branch="main")
    build_secrets = private_index_secrets(private_index)
    runtime_secrets = {"DEMO_API_KEY": secrets.token_hex(16)}
    run_id = secrets.token_hex(5)
    # `run`/`test` with a manifest start the image NAME:VERSION, so the job gets a unique name
    # (with the suite's prefix, for finding leftovers) instead of a unique --tag alone.
    name = f"racetrack-test-secret-env-{run_id}"
    manifest = client_manifest(
        base / "client", EXAMPLE, remote=remote.as_uri(), name=name,
        build_env={"PIP_INDEX_URL": public_index},
        secret_files={".env.build": env_file(build_secrets), ".env.runtime": env_file(runtime_secrets)},
    )
    image = f"{name}:0.1.0"
    tracker = DockerCleanup(docker_client)
    tracker.track(image)
    searched = {
        "PRIVATE_INDEX_PASSWORD": build_secrets["PRIVATE_INDEX_PASSWORD"],
        "PRIVATE_INDEX_HOST": build_secrets["PRIVATE_INDEX_HOST"],
        "PRIVATE_INDEX_USER:PRIVATE_INDEX_PASSWORD":
            f"{build_secrets['PRIVATE_INDEX_USER']}:{build_secrets['PRIVATE_INDEX_PASSWORD']}",
        "DEMO_API_KEY": runtime_secrets["DEMO_API_KEY"],
    }
    try:
        result = run_cli("build", manifest, "--network", "host", "--tag", image, "--no-cache", "-v", "--json")
        assert result.returncode == 0, result.describe()
        yield SecretBuild(manifest, image, build_secrets, runtime_secrets, result, searched)
    finally:
        problems = tracker.remove_all()
        if problems:
            pytest.fail("could not remove the image: " + "; ".join(problems), pytrace=False)


def test_image_has_the_private_package_and_works_without_runtime_secrets(
        secret_build: SecretBuild, docker_client: docker.DockerClient) -> None:
    # -v printed uv's output: the private package came from the index the build secrets open.
    # (Log lines are masked, and the secret user name "racetrack" is part of the package's name.)
    assert re.search(r"\+ \S*private-demo==1\.0\.0", secret_build.build.stderr), \
        secret_build.build.describe()
    with serve(docker_client, secret_build.image) as job:
        answer = job.post("/api/v1/perform", json={"name": "racetrack"})
        assert answer.status_code == 200, (answer.text, job.logs())
        # Started without the runtime secrets, the job has no key: none is baked into the image.
        assert answer.json() == {"greeting": "private hello, racetrack!", "api_key_configured": False,
                                 "api_key_fingerprint": None}


def test_run_hands_the_runtime_secrets_to_the_container(secret_build: SecretBuild) -> None:
    port = gitrepos.free_port()
    process = subprocess.Popen([*CLI, "run", str(secret_build.manifest), "--port", str(port)],
                               env=cli_environment(), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # stderr is read by a thread, so the test can wait for `run` to say the job is ready: Ctrl-C
    # before that aborts the start (exit 130) rather than ending a running job.
    lines: list[str] = []
    ready = threading.Event()

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if " is ready" in line:
                ready.set()

    reader = threading.Thread(target=read_stderr, name="run-stderr", daemon=True)
    reader.start()
    stdout = ""
    try:
        assert ready.wait(timeout=RUN_READY_TIMEOUT_S), \
            f"`run` never said the job is ready:\n{''.join(lines)}"
        answer = requests.post(f"http://127.0.0.1:{port}/api/v1/perform", json={"name": "Ada"}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        key = secret_build.runtime_secrets["DEMO_API_KEY"]
        assert body["api_key_configured"] is True
        assert body["api_key_fingerprint"] == hashlib.sha256(key.encode()).hexdigest()[:8]
        assert secret_build.hits(answer.text) == []
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C: how `run` is meant to end
        try:
            stdout, _ = process.communicate(timeout=RUN_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, _ = process.communicate(timeout=RUN_STOP_TIMEOUT_S)
        reader.join(timeout=RUN_STOP_TIMEOUT_S)
    stderr = "".join(lines)
    assert process.returncode == 0, f"run ended with {process.returncode}:\n{stderr}"
    assert secret_build.hits(stdout + stderr) == [], stderr
    # The container `run` started is gone with it.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/live", timeout=2)


def test_history_and_image_configuration_hold_no_secret(secret_build: SecretBuild,
                                                        docker_client: docker.DockerClient) -> None:
    history = subprocess.run(["docker", "history", "--no-trunc", secret_build.image], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    assert "racetrack_install.py" in history and "COPY" in history, history  # the real history
    assert secret_build.hits(history) == []
    inspected = docker_client.api.inspect_image(secret_build.image)
    config = inspected["Config"]
    for what in ("Env", "Labels", "Cmd", "Entrypoint"):
        assert secret_build.hits(json.dumps(config.get(what))) == [], what
    assert secret_build.hits(json.dumps(inspected)) == []
    assert secret_build.hits(json.dumps(docker_client.api.history(secret_build.image))) == []


def _scan_layers(secret_build: SecretBuild, docker_client: docker.DockerClient,
                 hits: Callable[[bytes], list[str]]) -> tuple[int, int, list[str]]:
    """(layers, files, findings) for every file of every layer of ``docker save``."""
    findings: list[str] = []
    layers = files = 0
    with tempfile.TemporaryFile() as saved:
        for chunk in docker_client.images.get(secret_build.image).save(named=True):
            saved.write(chunk)
        saved.seek(0)
        with tarfile.open(fileobj=saved) as archive:
            for member in archive:
                if not member.isfile():
                    continue
                blob = archive.extractfile(member)
                assert blob is not None
                data = blob.read()
                findings += [f"{member.name}: {h}" for h in hits(data)]  # configs, manifests, raw layers
                try:
                    layer = tarfile.open(fileobj=io.BytesIO(data))
                except tarfile.TarError:
                    continue  # JSON configuration or manifest, searched above
                layers += 1
                with layer:
                    for entry in layer:
                        named = hits(entry.name.encode())
                        findings += [f"{member.name}: name {entry.name}: {h}" for h in named]
                        if entry.isfile():
                            files += 1
                            content = layer.extractfile(entry)
                            assert content is not None
                            findings += [f"{member.name}: {entry.name}: {h}" for h in hits(content.read())]
    return layers, files, findings


def test_no_layer_file_holds_a_secret(secret_build: SecretBuild, docker_client: docker.DockerClient) -> None:
    # A canary proves the scan reads the files it must: the installed private package's metadata.
    canary = b"Name: racetrack-private-demo"

    def hits(data: bytes) -> list[str]:
        return secret_build.hits(data) + (["canary"] if canary in data else [])

    layers, files, findings = _scan_layers(secret_build, docker_client, hits)
    # The scan saw the whole image: the root file system, the wrapper's venv and the job.
    assert layers >= 3 and files > 1000, (layers, files)
    assert [f for f in findings if not f.endswith(": canary")] == []
    assert any("METADATA: canary" in f for f in findings), "the scan never read the job's packages"


def test_rendered_context_holds_no_secret(secret_build: SecretBuild, tmp_path: Path) -> None:
    out = tmp_path / "context"
    result = run_cli("render", secret_build.manifest, "-o", out, "-v")
    assert result.returncode == 0, result.describe()
    dockerfile = (out / "Dockerfile").read_text()
    # The install step takes the secret build env as a BuildKit secret; no name is a build argument.
    assert "--mount=type=secret,id=racetrack-build-env" in dockerfile, dockerfile
    for name in secret_build.build_secrets:
        assert name not in dockerfile, dockerfile
    scanned = 0
    for path in out.rglob("*"):
        if path.is_file():
            scanned += 1
            assert secret_build.hits(path.read_bytes()) == [], path
            assert not path.name.startswith(".env.") or path.name.endswith(".dist"), path
    assert scanned >= 5
    assert secret_build.hits(result.stdout + result.stderr) == []


def test_cli_output_holds_no_secret(secret_build: SecretBuild, tmp_path: Path) -> None:
    verbose = secret_build.build
    # -v with --no-cache printed every line of the install step, which saw the secrets.
    assert "installing requirements" in verbose.stderr and "Resolved" in verbose.stderr
    assert secret_build.hits(verbose.stdout + verbose.stderr) == [], verbose.describe()
    quiet = run_cli("build", secret_build.manifest, "--network", "host", "--tag", secret_build.image)
    assert quiet.returncode == 0, quiet.describe()
    assert secret_build.hits(quiet.stdout + quiet.stderr) == []
    validate = run_cli("validate", secret_build.manifest)
    assert validate.returncode == 0 and secret_build.hits(validate.stdout + validate.stderr) == []


def test_json_summary_survives_secret_values(secret_build: SecretBuild) -> None:
    """The summary is the tool's own, non-secret product: a secret value that happens to be part of
    an image name (the user "racetrack" in "racetrack-test-...") must not garble it."""
    summary = json.loads(secret_build.build.stdout)
    assert summary["image"] == secret_build.image
    # racetrack/python3:latest, or its wrapper sources' tag while another version of the tool on the
    # same engine holds "latest" (base_image.sources_ref).
    assert re.fullmatch(r"racetrack/python3:latest(-[0-9a-f]{12})?", summary["base_image"]), summary


# -- the whole engine ----------------------------------------------------------------------------------
def _engine_findings(
    docker_client: docker.DockerClient, hits: Callable[[bytes | str], list[str]]
) -> list[str]:
    """What the engine holds that names a secret: the history and configuration of every image,
    intermediate and dangling ones included, and the configuration of every container."""
    findings = []
    for image in docker_client.api.images(all=True):
        image_id = image["Id"]
        for what, data in (("inspect", docker_client.api.inspect_image(image_id)),
                           ("history", docker_client.api.history(image_id))):
            findings += [f"image {image_id[7:19]} {what}: {h}" for h in hits(json.dumps(data))]
    for container in docker_client.api.containers(all=True):
        inspected = docker_client.api.inspect_container(container["Id"])
        findings += [f"container {container['Id'][:12]}: {h}" for h in hits(json.dumps(inspected))]
    return findings


class _Hanging:
    """A server on 127.0.0.1 that accepts connections and never answers: an install that asks it
    for a package waits, so the build can be stopped while the install container runs."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/simple/"

    def close(self) -> None:
        self.sock.close()


def _variant(secret_build: SecretBuild, base: Path, requirements: str, name: str) -> Path:
    """examples/secret-env with other requirements, committed to a new remote, with the same
    secret files: a manifest whose build hands the install the same secrets."""
    tree = examples_tree([EXAMPLE])
    tree[f"examples/{EXAMPLE}/requirements.txt"] = requirements.encode()
    remote = gitrepos.make_bare_repo(base / "remote.git", tree, branch="main")
    secret_dir = secret_build.manifest.parent
    return client_manifest(
        base / "client", EXAMPLE, remote=remote.as_uri(), name=name,
        secret_files={n: (secret_dir / n).read_text() for n in (".env.build", ".env.runtime")},
    )


def test_nothing_in_the_engine_holds_a_secret_after_builds_that_pass_fail_or_are_stopped(
        secret_build: SecretBuild, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    # The packages image the passing build committed: every file of it (docker save).
    name = secret_build.image.split(":")[0]
    installed = [tag for image in docker_client.api.images(name="racetrack-build/installed")
                 for tag in image.get("RepoTags") or [] if f":{name}-" in tag]
    assert installed, "the build left no install image to scan"
    with tempfile.TemporaryFile() as saved:
        for chunk in docker_client.images.get(installed[0]).save(named=True):
            saved.write(chunk)
        saved.seek(0)
        assert secret_build.hits(saved.read()) == []

    # A build whose install fails once the secrets are in: a version the private index lacks.
    private = "--index-url http://${PRIVATE_INDEX_USER}:${PRIVATE_INDEX_PASSWORD}@${PRIVATE_INDEX_HOST}/simple/\n"
    failing = _variant(secret_build, tmp_path / "failing", private + "racetrack-private-demo==9.9.9\n",
                       f"{name}-failing")
    failed = run_cli("build", failing, "--network", "host", "--json")
    assert failed.returncode == 1, failed.describe()
    diagnosis = json.loads(failed.stdout)["diagnosis"]
    assert diagnosis["where"] == "requirements.txt:2" and diagnosis["kind"] == "no-version", diagnosis
    assert secret_build.hits(failed.stdout + failed.stderr) == []

    # A build stopped with Ctrl-C while the install container runs (its index never answers).
    hanging = _Hanging()
    try:
        stopped_manifest = _variant(
            secret_build, tmp_path / "stopped",
            f"--extra-index-url {hanging.url}\n" + private + "racetrack-private-demo==1.0.0\n",
            f"{name}-stopped",
        )
        process = subprocess.Popen([*CLI, "build", str(stopped_manifest), "--network", "host", "--no-cache"],
                                   env=cli_environment(), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "installing requirements" in line:
                break
        else:
            pytest.fail("the build never reached its install step:\n" + "".join(seen))
        threading.Event().wait(3)  # the container is up and uv waits on the index
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=RUN_STOP_TIMEOUT_S)
        assert process.returncode == 130, "".join(seen) + rest
    finally:
        hanging.close()
    leftover = [c["Id"][:12] for c in docker_client.api.containers(all=True)
                if "racetrack_install.py" in " ".join([c.get("Command") or ""])]
    assert leftover == [], "the stopped install left its container"

    findings = _engine_findings(docker_client, secret_build.hits)
    assert findings == [], findings


def test_nothing_pushed_holds_a_secret(secret_build: SecretBuild, registry: str, tmp_path: Path,
                                       docker_client: docker.DockerClient) -> None:
    """The image pushed to a registry on 127.0.0.1, with the layer cache (--cache-from with --push:
    the system stage, the install's commit, the job image under key tags): every blob of its
    storage (layers unpacked), and every path in it (the tags)."""
    import gzip

    name, version = secret_build.image.rsplit(":", 1)
    cache = f"{registry}/cache/secret-env"
    pushed = run_cli("build", secret_build.manifest, "--network", "host", "--registry", registry, "--push",
                     "--cache-from", cache, "--json")
    assert pushed.returncode == 0, pushed.describe()
    assert pushed.json()["digest"], pushed.describe()
    assert secret_build.hits(pushed.stdout + pushed.stderr) == []
    cache_tags = [ref.rpartition(":")[2] for ref in pushed.json()["cache"]["pushed"]]
    assert [("-system-" in t, "-install-" in t, t.endswith("-job")) for t in cache_tags] == [
        (True, False, False), (False, True, False), (False, False, True)], pushed.describe()
    storage = tmp_path / "storage"
    blobs = 0
    for path in storage.rglob("*"):
        assert secret_build.hits(str(path.relative_to(storage))) == [], path
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":  # a layer: gzip'd tar
            data = gzip.decompress(data)
            blobs += 1
        assert secret_build.hits(data) == [], path
    assert blobs >= 3, f"the scan read {blobs} layers: the push left no layers to read"
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(f"{registry}/{name}:{version}", force=True)


def _buildkit_cli() -> list[str] | None:
    """A docker CLI that builds with BuildKit: one with buildx, or Debian's 20.10 (built in)."""
    import shutil

    for candidate in dict.fromkeys([shutil.which("docker"), "/usr/bin/docker"]):
        if not candidate or not Path(candidate).exists():
            continue
        if subprocess.run([candidate, "buildx", "version"], capture_output=True).returncode == 0:
            return [candidate, "buildx", "build", "--load"]
        version = subprocess.run([candidate, "version", "--format", "{{.Client.Version}}"],
                                 capture_output=True, text=True).stdout.strip()
        if version.startswith("20.10"):
            return [candidate, "build"]
    return None


def test_a_buildkit_build_of_the_rendered_context_installs_and_records_no_secret(
        secret_build: SecretBuild, tmp_path: Path, docker_client: docker.DockerClient) -> None:
    """render -o, then the printed command (plus --network host, for the index on 127.0.0.1)."""
    import os
    import shlex

    builder = _buildkit_cli()
    if builder is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI=true and no docker CLI here builds with BuildKit (docker.io's 20.10 does)")
        pytest.skip("no docker CLI here builds with BuildKit")
    out = tmp_path / "context"
    rendered = run_cli("render", secret_build.manifest, "-o", out)
    assert rendered.returncode == 0, rendered.describe()
    printed = shlex.split(rendered.stderr.strip().splitlines()[-1])
    assert printed[:3] == ["DOCKER_BUILDKIT=1", "docker", "build"], printed
    # The output masks the suite's secret user name "racetrack", also inside the secret's id: the
    # argument is rebuilt here, and its file checked against what was printed.
    secret_file = secret_build.manifest.parent / ".env.build"
    assert printed[printed.index("--secret") + 1].endswith(f"-build-env,src={secret_file}"), printed
    secret_arg = f"id=racetrack-build-env,src={secret_file}"
    tag = f"racetrack-test-buildkit-{secrets.token_hex(4)}:1"
    try:
        built = subprocess.run([*builder, "--progress", "plain", "--network", "host", "--secret", secret_arg,
                                "-t", tag, str(out)], env={**os.environ, "DOCKER_BUILDKIT": "1"},
                               capture_output=True, text=True, timeout=900)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        assert secret_build.hits(built.stdout + built.stderr) == []
        assert secret_build.hits(json.dumps(docker_client.api.history(tag))) == []
        assert secret_build.hits(json.dumps(docker_client.api.inspect_image(tag))) == []
        check = docker_client.containers.run(tag, ["python", "-c", "import racetrack_private_demo"],
                                             remove=True, network_disabled=True)
        assert check == b""
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)


def test_a_changed_secret_runs_the_install_again_and_the_same_secrets_reuse_it(
        secret_build: SecretBuild, tmp_path: Path) -> None:
    """The install's cache key holds the secret values (through scrypt): the same job with one more
    secret value installs anew; built again as it was, it reuses the install."""
    again = run_cli("build", secret_build.manifest, "--network", "host", "--tag", secret_build.image, "-v")
    assert again.returncode == 0 and "reusing the packages installed" in again.stderr, again.describe()
    rotated = tmp_path / "client"
    rotated.mkdir()
    (rotated / "fatman.yaml").write_text(secret_build.manifest.read_text())
    source = secret_build.manifest.parent
    (rotated / ".env.build").write_text((source / ".env.build").read_text()
                                        + f"ROTATED_TOKEN={secrets.token_hex(16)}\n")
    (rotated / ".env.runtime").write_text((source / ".env.runtime").read_text())
    changed = run_cli("build", rotated / "fatman.yaml", "--network", "host", "--tag", secret_build.image,
                      "-v")
    assert changed.returncode == 0, changed.describe()
    assert "reusing the packages installed" not in changed.stderr
    assert "installing requirements" in changed.stderr, changed.describe()
