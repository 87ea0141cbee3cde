"""What a job's requirements need from the install step: the system packages it lists (a package
built from source links against them) and git, for requirements taken from a git repository with
credentials from the secret build env, as the job type's own example does. Neither git nor the
credentials reach the final image."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest

from tests import gitrepos
from tests.integration.jobs import (
    EXAMPLES_DIR,
    client_manifest,
    env_file,
    examples_tree,
    image_secret_hits,
    run_cli,
    serve,
)
from tests.integration.package_index import py39_wheels, pypiserver

if TYPE_CHECKING:
    from tests.integration.jobs import DockerCleanup
    from tests.integration.package_index import PackageIndex

pytestmark = pytest.mark.docker

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What pip's build isolation needs to build a setuptools project from source.
BUILD_BACKEND = ["setuptools>=61", "wheel"]
MANIFEST = {
    "name": "install-needs",
    "owner_email": "nobody@example.com",
    "lang": "python3:latest",
    "git": {"remote": "(replaced)"},
    "python": {"entrypoint_path": "entrypoint.py", "requirements_path": "requirements.txt"},
}
# examples/private-git-library installs examples/teamlib-library from a git server with basic auth.
GIT_EXAMPLE = "private-git-library"
GIT_LIBRARY = "teamlib-library"
GIT_LIBRARY_URL = "https://${GIT_USER}:${GIT_TOKEN}@git.example.com/data-team/teamlib.git"
ENTRY_PSYCOPG = '''\
import psycopg2


class Job:
    def perform(self) -> str:
        """The version of the driver compiled against libpq in the install step."""
        return psycopg2.__version__.split()[0]
'''


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[gitrepos.GitHttpServer]:
    """A git server behind basic auth on 127.0.0.1 with the team's private library."""
    base = tmp_path / "git-server"
    library = {rel: content for rel, content in _files_under(EXAMPLES_DIR / GIT_LIBRARY).items()
               if rel != "README.md"}
    bare = gitrepos.make_bare_repo(base / "teamlib.git", library)
    gitrepos.git("tag", "v1.0.0", "master", cwd=bare)
    user = f"ci-{secrets.token_hex(6)}"  # a secret too: unique, so a scan cannot mistake a word for it
    with gitrepos.GitHttpServer(base, username=user, password=secrets.token_urlsafe(16)) as server:
        yield server


def _ca() -> tuple[str, ...]:
    return ("--ca-cert", str(HOST_CA_BUNDLE)) if HOST_CA_BUNDLE.is_file() else ()


def _files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_private_git_library_example_installs_with_secret_credentials_and_leaves_no_git_behind(
        tmp_path: Path, base_image: str, git_server: gitrepos.GitHttpServer, public_index: str,
        wheelhouse: Callable[..., Path], docker_client: docker.DockerClient,
        docker_cleanup: DockerCleanup) -> None:
    """examples/private-git-library as it is, but for its git server's address in requirements.txt."""
    wheelhouse(BUILD_BACKEND)
    tree = examples_tree([GIT_EXAMPLE])
    requirements = f"examples/{GIT_EXAMPLE}/requirements.txt"
    text = tree[requirements].decode()
    assert GIT_LIBRARY_URL in text, "the example's requirement changed: update GIT_LIBRARY_URL"
    local = git_server.url("teamlib.git").replace("http://", "http://${GIT_USER}:${GIT_TOKEN}@")
    tree[requirements] = text.replace(GIT_LIBRARY_URL, local).encode()
    remote = gitrepos.make_bare_repo(tmp_path / "examples.git", tree, branch="main")
    manifest = client_manifest(
        tmp_path / "client", GIT_EXAMPLE, remote=remote.as_uri(), build_env={"PIP_INDEX_URL": public_index},
        secret_files={".env.build": env_file({"GIT_USER": str(git_server.username),
                                              "GIT_TOKEN": str(git_server.password)})},
    )
    tag = docker_cleanup.image_tag("git-requirement")
    result = run_cli("build", manifest, "--tag", tag, "--network", "host", *_ca(), "--json")
    assert result.returncode == 0, result.describe()
    secret_values = [str(git_server.username), str(git_server.password)]
    assert not any(value in result.stdout + result.stderr for value in secret_values)
    files, leaks = image_secret_hits(docker_client, tag, secret_values)
    assert files > 1000 and leaks == [], (files, leaks)  # configuration, history and every layer's files

    with serve(docker_client, tag, name=docker_cleanup.container_name("git-requirement")) as job:
        called = run_cli("call", job.url, "-i", "values=[1, 2, 3, 4, 100]")
        assert called.returncode == 0 and called.stdout.strip() == "3.0", called.describe() + job.logs()
    code, output = docker_cleanup.run(tag, ["sh", "-c", "command -v git || echo no-git"])
    assert output.strip() == "no-git", "git is for the install step only"


@pytest.mark.slow
def test_a_source_build_finds_the_system_packages_the_job_lists(
        tmp_path: Path, base_image: str, public_index: str, wheelhouse: Callable[..., Path],
        docker_client: docker.DockerClient, docker_cleanup: DockerCleanup) -> None:
    """psycopg2 has no Linux wheel: pip compiles it, which needs pg_config (libpq-dev) and gcc."""
    wheelhouse(["psycopg2==2.9.9", *BUILD_BACKEND])
    remote = gitrepos.make_bare_repo(tmp_path / "job.git", {
        "entrypoint.py": ENTRY_PSYCOPG,
        "requirements.txt": "psycopg2==2.9.9\n",
    })
    manifest = client_manifest(
        tmp_path / "client",
        {**MANIFEST, "name": "source-build", "system_dependencies": ["libpq-dev", "gcc"]},
        remote=remote.as_uri(), build_env={"PIP_INDEX_URL": public_index},
    )
    tag = docker_cleanup.image_tag("source-build")
    result = run_cli("build", manifest, "--tag", tag, "--network", "host", *_ca(), "--json", timeout=1500)
    assert result.returncode == 0, result.describe()
    with serve(docker_client, tag, name=docker_cleanup.container_name("source-build")) as job:
        answer = job.post("/api/v1/perform", json={})
        assert answer.status_code == 200 and answer.json() == "2.9.9", job.logs()


# -- failures explained -----------------------------------------------------------------------------
ENTRY_PLAIN = '''\
class Job:
    def perform(self) -> int:
        """Nothing to see."""
        return 1
'''


def _failing_build(tmp_path: Path, requirements: str, index: str, name: str,
                   docker_cleanup: DockerCleanup, *, exit_code: int = 1,
                   build_secrets: dict[str, str] | None = None) -> dict[str, object]:
    """Build a job whose install must fail; the ``diagnosis`` of its ``--json`` document."""
    remote = gitrepos.make_bare_repo(tmp_path / "job.git", {
        "entrypoint.py": ENTRY_PLAIN, "requirements.txt": requirements})
    fields: dict[str, object] = {**MANIFEST, "name": name}
    if build_secrets:
        fields["secret_build_env_file"] = ".env.build"
    manifest = client_manifest(tmp_path / "client", fields, remote=remote.as_uri(),
                               build_env={"PIP_INDEX_URL": index},
                               secret_files={".env.build": env_file(build_secrets)} if build_secrets
                               else None)
    result = run_cli("build", manifest, "--tag", docker_cleanup.image_tag(name), "--network", "host", *_ca(),
                     "--json", timeout=1500)
    assert result.returncode == exit_code, result.describe()
    for value in (build_secrets or {}).values():
        assert value not in result.stdout + result.stderr, "a secret value was printed"
    document = result.json()
    assert document["ok"] is False and "diagnosis" in document, result.describe()
    first = next(line for line in result.stderr.splitlines() if line.startswith("Error:"))
    assert "Traceback" not in result.stderr, result.describe()
    return {**document["diagnosis"], "first_line": first, "stderr": result.stderr}


@pytest.mark.slow
def test_a_source_build_without_its_system_packages_names_them(
        tmp_path: Path, base_image: str, public_index: str, wheelhouse: Callable[..., Path],
        docker_cleanup: DockerCleanup) -> None:
    wheelhouse(["psycopg2==2.9.9", *BUILD_BACKEND])
    found = _failing_build(tmp_path, "# the database driver\npsycopg2==2.9.9\n", public_index,
                           "no-libpq", docker_cleanup)
    assert (found["requirement"], found["where"], found["kind"]) == (
        "psycopg2==2.9.9", "requirements.txt:2", "source-build"), found
    assert found["fix"] == "add libpq-dev, gcc to system_dependencies", found
    assert "psycopg2==2.9.9 (requirements.txt:2)" in str(found["first_line"]), found["first_line"]


@pytest.mark.slow
def test_no_wheel_for_the_jobs_python_names_the_pythons_the_index_has(
        tmp_path: Path, base_image: str, docker_cleanup: DockerCleanup) -> None:
    """An index with numpy 1.19.5 for Python 3.9 only (no sdist): a 3.11 job is told to choose 3.9."""
    folder = tmp_path / "index"
    folder.mkdir()
    for wheel in py39_wheels(["numpy==1.19.5"]).glob("numpy-*.whl"):
        (folder / wheel.name).write_bytes(wheel.read_bytes())
    (tmp_path / "logs").mkdir()
    with pypiserver(folder, tmp_path / "logs") as index:
        found = _failing_build(tmp_path, "numpy==1.19.5\n", index, "no-wheel", docker_cleanup)
    assert (found["requirement"], found["where"], found["kind"]) == (
        "numpy==1.19.5", "requirements.txt:1", "no-distribution"), found
    assert found["wheel_pythons"] == ["3.9"], found
    assert "set python.python_version to '3.9'" in str(found["fix"]), found


@pytest.mark.slow
def test_an_index_refusing_the_credentials_names_the_secret_variables(
        tmp_path: Path, base_image: str, private_index: PackageIndex, docker_cleanup: DockerCleanup) -> None:
    host = private_index.url.split("://", 1)[1].split("/", 1)[0]
    requirements = (f"--index-url http://${{INDEX_USER}}:${{INDEX_TOKEN}}@{host}/simple/\n"
                    f"{private_index.requirement}\n")
    wrong = {"INDEX_USER": private_index.username or "", "INDEX_TOKEN": "wrong-" + secrets.token_hex(12)}
    found = _failing_build(tmp_path, requirements, private_index.url, "refused", docker_cleanup,
                           exit_code=3, build_secrets=wrong)
    assert found["kind"] == "auth", found
    assert "INDEX_TOKEN, INDEX_USER" in str(found["fix"]), found
    # The requirement the refused page was for, where it was asked, and the fix on a line of its own.
    # (INDEX_USER's value, "racetrack", is a secret and masked wherever it shows, the name included.)
    masked = private_index.requirement.replace(private_index.username or "", "***")
    assert (found["requirement"], found["where"]) == (masked, "requirements.txt:2"), found
    assert "))" not in str(found["cause"]) and "wrong-" not in str(found["stderr"]), found
    assert "To fix: check the values of INDEX_TOKEN, INDEX_USER" in str(found["stderr"]), found["stderr"]


@pytest.mark.slow
def test_an_index_that_cannot_be_reached_is_exit_3_with_the_url_masked(
        tmp_path: Path, base_image: str, docker_cleanup: DockerCleanup) -> None:
    closed = f"http://ci:hidden-{secrets.token_hex(6)}@127.0.0.1:{gitrepos.free_port()}/simple/"
    found = _failing_build(tmp_path, "six==1.16.0\n", closed, "unreachable", docker_cleanup, exit_code=3)
    assert found["kind"] == "network", found
    assert "hidden-" not in str(found["cause"]) + str(found["stderr"]), found
