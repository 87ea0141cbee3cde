"""A job on each Python CI has a root image for: its base image is built for that Python on demand,
the job's requirements install there, and the served job runs on it.

The default Python (3.11) is what every other integration test builds; this module builds the
oldest and the newest the wrapper supports that Debian ships (3.9, 3.13). On these machines their
root images are made by scripts/ensure-root-image.sh (debootstrap of bullseye and trixie); real
users get ``python:<version>-slim``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest

from tests import gitrepos
from tests.integration.jobs import client_manifest, our_base_ref, run_cli, serve

if TYPE_CHECKING:
    from tests.integration.jobs import DockerCleanup

pytestmark = pytest.mark.docker

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REQUIREMENT = "six==1.16.0"
ENTRYPOINT = '''\
import platform

import six


class Versions:
    def perform(self, word: str) -> dict:
        """Which Python answers, and proof the job's requirement is installed for it."""
        return {"python": platform.python_version(), "word": six.ensure_str(word)}

    def docs_input_example(self) -> dict:
        return {"word": "hello"}
'''


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_a_job_builds_and_answers_on_the_python_it_chose(
        version: str, tmp_path: Path, root_image_for: Callable[[str], str], public_index: str,
        wheelhouse: Callable[..., Path], docker_client: docker.DockerClient,
        docker_cleanup: DockerCleanup) -> None:
    root_image_for(version)
    wheelhouse([REQUIREMENT])
    remote = gitrepos.make_bare_repo(tmp_path / "remote.git", {
        "entrypoint.py": ENTRYPOINT,
        "requirements.txt": REQUIREMENT + "\n",
    })
    manifest = client_manifest(tmp_path / "client", {
        "name": f"py{version.replace('.', '')}-job",
        "owner_email": "nobody@example.com",
        "lang": "python3:latest",
        "git": {"remote": "(replaced)"},
        "python": {"entrypoint_path": "entrypoint.py", "requirements_path": "requirements.txt",
                   "python_version": version},
    }, remote=remote.as_uri(), build_env={"PIP_INDEX_URL": public_index})
    tag = docker_cleanup.image_tag(f"py{version}")
    ca = ("--ca-cert", str(HOST_CA_BUNDLE)) if HOST_CA_BUNDLE.is_file() else ()
    result = run_cli("build", manifest, "--tag", tag, "--network", "host", *ca, "--smoke-test", "--json",
                     timeout=1500)
    assert result.returncode == 0, result.describe()
    summary = result.json()
    assert summary["base_image"] == our_base_ref(version)
    labels = docker_client.images.get(tag).labels
    assert labels["org.racetrack.python.version"] == version
    assert labels["org.opencontainers.image.base.name"] == our_base_ref(version)

    with serve(docker_client, tag, name=docker_cleanup.container_name(f"py{version}")) as job:
        answer = job.post("/api/v1/perform", json={"word": "hi"})
        assert answer.status_code == 200, job.logs()
        body = answer.json()
    assert body["word"] == "hi"
    assert body["python"].rsplit(".", 1)[0] == version, body
