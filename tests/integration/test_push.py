"""``--registry R --push`` puts the image into a real registry, from where it can be pulled back.

The registry is Debian's ``docker-registry`` (the CNCF distribution registry), started by the test on
127.0.0.1 with its storage in a temporary folder. The engine treats registries on 127.0.0.0/8 as
insecure (plain HTTP) without configuration.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
import requests

from tests import gitrepos
from tests.integration.jobs import (
    DockerCleanup,
    client_manifest,
    examples_tree,
    image_exists,
    run_cli,
    serve,
)

pytestmark = pytest.mark.docker

def test_push_to_a_registry_and_pull_back(
    registry: str,
    tmp_path: Path,
    base_image: str,
    docker_client: docker.DockerClient,
    docker_cleanup: DockerCleanup,
) -> None:
    remote = gitrepos.make_bare_repo(tmp_path / "remote.git", examples_tree(["adder"]), branch="main")
    manifest = client_manifest(tmp_path / "client", "adder", remote=remote.as_uri())
    tag = docker_cleanup.image_tag("push-adder")  # racetrack-test/push-adder:ID
    repository, _, version = tag.partition(":")
    ref = docker_cleanup.track(f"{registry}/{tag}")

    result = run_cli("build", manifest, "--tag", tag, "--registry", registry, "--push", "--json")
    assert result.returncode == 0, result.describe()
    summary = result.json()
    assert (summary["image"], summary["pushed"]) == (ref, True)
    assert f"pushed {ref}" in result.stderr

    # The registry's own API lists the tag and serves its manifest.
    listed = requests.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"name": repository, "tags": [version]}
    pushed_manifest = requests.get(
        f"http://{registry}/v2/{repository}/manifests/{version}", timeout=10,
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                           "application/vnd.oci.image.manifest.v1+json"})
    assert pushed_manifest.status_code == 200, pushed_manifest.text
    assert pushed_manifest.json()["config"]["digest"] == summary["id"]
    # The digest the summary reports is the one the registry serves the manifest under.
    assert summary["digest"] == pushed_manifest.headers["Docker-Content-Digest"], summary

    # Gone from the engine, back from the registry: the same image, and it serves.
    docker_client.images.remove(ref, force=True)
    assert not image_exists(docker_client, ref)
    pulled = docker_client.images.pull(f"{registry}/{repository}", tag=version)
    assert pulled.id == summary["id"]
    with serve(docker_client, ref) as job:
        answer = job.post("/api/v1/perform", json={"x": 40, "y": 2})
        assert (answer.status_code, answer.json()) == (200, 42), answer.text
