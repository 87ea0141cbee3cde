"""Many builds at once on one engine that has no base image for them (issue 12): six different jobs
started together build the base once, all succeed, and no image ends up with another job's tag or
another version's wrapper; a seventh build from another version of the tool (other wrapper sources)
started with them gets its own base, never the others'.

The jobs ask for a base tag no other test uses (``lang: python3:<tag>``), so the base is missing on
the suite's own engine (its root image and layer cache make the base builds quick). Which build made
the base, and which waited, is read from each build's output, never from timing.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from racetrack_builder.base_image import context_digest, sources_ref
from tests import gitrepos
from tests.integration.jobs import CLI, CLI_TIMEOUT_S, REPO_ROOT, cli_environment

pytestmark = pytest.mark.docker

JOBS = 6
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ENTRY = '''class FatmanEntrypoint:
    def perform(self) -> str:
        return "{name}"
'''


def _manifest(name: str, tag: str, directory: str) -> str:
    return (f"name: {name}\nowner_email: ci@example.com\nlang: python3:{tag}\n"
            f"git:\n  remote: https://github.com/example/jobs\n  branch: main\n  directory: {directory}\n"
            "python:\n  entrypoint_path: fatman_entrypoint.py\n")


def _other_version(tmp_path: Path) -> Path:
    """A copy of the tool whose wrapper sources differ (as another racetrack-build version's)."""
    copy = tmp_path / "other-tool"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", "tests", ".pytest_cache", "*.egg-info")
    for name in ("racetrack_builder", "templates", "base-images"):
        shutil.copytree(REPO_ROOT / name, copy / name, ignore=skip)
    init = copy / "base-images/python3/fatman_wrapper/__init__.py"
    init.write_text(init.read_text() + "\n# another version of the wrapper (test_concurrent_builds)\n")
    return copy


def _layers(docker_client: docker.DockerClient, ref: str) -> list[str]:
    return list(docker_client.api.inspect_image(ref)["RootFS"]["Layers"])


def test_builds_started_together_build_the_base_once_and_never_cross(
    docker_client: docker.DockerClient, base_image: str, tmp_path: Path
) -> None:
    tag = f"lock-{uuid.uuid4().hex[:8]}"
    names = [f"rt-lock-{tag}-{i}" for i in range(JOBS + 1)]
    files = {}
    for i, name in enumerate(names):
        files[f"jobs/{i}/fatman.yaml"] = _manifest(name, tag, f"jobs/{i}")
        files[f"jobs/{i}/fatman_entrypoint.py"] = ENTRY.format(name=name)
    repo = tmp_path / "jobs"
    gitrepos.init_repo(repo, branch="main")
    gitrepos.commit_files(repo, files)
    other = _other_version(tmp_path)
    ours_ref = sources_ref(tag, context_digest(REPO_ROOT / "base-images/python3"))
    theirs_ref = sources_ref(tag, context_digest(other / "base-images/python3"))
    assert ours_ref != theirs_ref
    images = [f"{name}:0.0.1" for name in names]
    env = cli_environment({"NO_COLOR": "1"})
    # The base image's build installs the wrapper's packages from the public index.
    ca = ["--ca-cert", str(HOST_CA_BUNDLE)] if HOST_CA_BUNDLE.is_file() else []
    processes = []
    try:
        for i, image in enumerate(images):
            tool = other if i == JOBS else REPO_ROOT  # the last one: the other version
            command = [*CLI, "build", str(repo / f"jobs/{i}/fatman.yaml"), "--local", "--network", "host",
                       *ca, "--tag", image, "--json"]
            # Files, not pipes: a build blocked on a full pipe while it holds the lock would stall
            # every build waiting for it.
            out, err = tmp_path / f"{i}.out", tmp_path / f"{i}.err"
            with out.open("w") as stdout, err.open("w") as stderr:
                processes.append(subprocess.Popen(command, cwd=tool, env=env, stdin=subprocess.DEVNULL,
                                                  stdout=stdout, stderr=stderr, text=True))
        codes = [p.wait(CLI_TIMEOUT_S) for p in processes]
        results = [(code, (tmp_path / f"{i}.out").read_text(), (tmp_path / f"{i}.err").read_text())
                   for i, code in enumerate(codes)]
        for (code, out, err), image in zip(results, images, strict=True):
            assert code == 0, f"{image}: exit {code}\n{err[-3000:]}"
            assert json.loads(out)["image"] == image
        ours = [err for _, _, err in results[:JOBS]]
        # One build of this version made the base; the others found it, waiting if it was underway.
        assert sum("building the base image" in err for err in ours) == 1, "\n-----\n".join(ours)
        # The other version built its own base under the shared name, never using this version's...
        theirs = results[JOBS][2]
        assert "building the base image" in theirs, theirs
        # ...and every image starts from its own version's base, with its own name.
        for i, image in enumerate(images):
            base = theirs_ref if i == JOBS else ours_ref
            base_layers = _layers(docker_client, base)
            assert _layers(docker_client, image)[: len(base_layers)] == base_layers, image
            config = docker_client.api.inspect_image(image)["Config"]
            assert f"FATMAN_NAME={names[i]}" in config["Env"], (image, config["Env"])
            assert config["Labels"]["org.opencontainers.image.base.name"] == base
        where = "$(python -c 'import fatman_wrapper; print(fatman_wrapper.__file__)')"
        marker = docker_client.containers.run(
            images[JOBS], ["sh", "-c", f"grep -c 'another version of the wrapper' {where}"],
            network_mode="none", remove=True)
        assert marker.strip() == b"1"
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for ref in (*images, f"racetrack/python3:{tag}", ours_ref, theirs_ref):
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                docker_client.images.remove(ref, force=True)
