"""Rebuilds reuse the engine's cache the way the Dockerfile's layer order promises, and the final
image carries nothing of the build: no pip cache, no apt lists, no .git, no CA bundle, no second
copy of the wrapper's packages.

One job with an apt package (jq), a pip requirement (six) and code is built three times from a real
git repository: as it is, again unchanged, and after a commit that changes only its code. The build
log of ``-v`` says per step whether the engine used its cache. Both ways of installing are run: the
engine's BuildKit with the install as a ``RUN`` step (a job without secrets), and the install
container the classic builder's engines get (``DOCKER_BUILDKIT=0``, as with secrets).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import pytest

from tests import gitrepos
from tests.integration.jobs import CliResult, client_manifest, run_cli

if TYPE_CHECKING:
    from tests.integration.jobs import DockerCleanup

pytestmark = pytest.mark.docker

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REQUIREMENT = "six==1.16.0"
ENTRYPOINT = '''\
import subprocess

import six


class Shout:
    def perform(self, text: str) -> str:
        """Upper-case a text{suffix}."""
        return six.ensure_str(text).upper() + {suffix!r}

    def jq_version(self) -> str:
        return subprocess.run(["jq", "--version"], capture_output=True, text=True, check=True).stdout.strip()
'''
MANIFEST: dict[str, Any] = {
    "name": "rebuild-job",
    "owner_email": "nobody@example.com",
    "lang": "python3:latest",
    "version": "0.1.0",
    "git": {"remote": "(replaced)", "branch": "master"},
    "python": {"entrypoint_path": "entrypoint.py", "requirements_path": "requirements.txt"},
    "system_dependencies": ["jq"],
}
_STEP = re.compile(r"step (\d+)/(\d+) (.*)$")


def build_steps(stderr: str) -> list[tuple[str, list[str]]]:
    """(instruction as shown, log lines) per Dockerfile step, from the ``-v`` output of a build: the
    system stage's steps, then the job stage's (the install between them is a step of its own with
    BuildKit, none with the install container)."""
    steps: list[tuple[str, list[str]]] = []
    for line in stderr.splitlines():
        match = _STEP.search(line)
        if match:
            steps.append((" ".join(match.group(3).split()), []))
        elif steps:
            steps[-1][1].append(line)
    return steps


REUSED_INSTALL = "reusing the packages installed"
# How the build log shows the BuildKit install step.
INSTALL_STEP = "RUN install the job's requirements (racetrack_install.py"


def reused(lines: list[str]) -> bool:
    """Whether a step's log says the engine reused its cache: the classic builder's words (the
    system stage), or BuildKit's (the job's own steps)."""
    return any("Using cache" in line or line.strip() == "CACHED" for line in lines)


def cached(steps: list[tuple[str, list[str]]], pattern: str) -> list[bool]:
    """Whether the engine used its cache, for each step whose instruction matches ``pattern``."""
    found = [reused(lines) for instruction, lines in steps if re.search(pattern, instruction)]
    assert found, f"no step matches {pattern!r}: {[i for i, _ in steps]}"
    return found


def install_reused(stderr: str, steps: list[tuple[str, list[str]]]) -> bool:
    """Whether the install did not run again: the install container's words, or BuildKit's cache
    hit on the install step."""
    if REUSED_INSTALL in stderr:
        return True
    found = [reused(lines) for instruction, lines in steps if instruction.startswith(INSTALL_STEP)]
    return bool(found) and all(found)


@pytest.mark.parametrize("builder", ["buildkit", "classic"])
def test_rebuilds_use_the_cache_and_the_image_keeps_nothing_of_the_build(
        builder: str, tmp_path: Path, base_image: str, public_index: str, wheelhouse: Callable[..., Path],
        docker_client: docker.DockerClient, docker_cleanup: DockerCleanup) -> None:
    wheelhouse([REQUIREMENT])
    remote = gitrepos.make_bare_repo(tmp_path / "remote.git", {
        "entrypoint.py": ENTRYPOINT.format(suffix="!"),
        "requirements.txt": REQUIREMENT + "\n",
    })
    manifest = client_manifest(tmp_path / "client", MANIFEST, remote=remote.as_uri(),
                               build_env={"PIP_INDEX_URL": public_index})
    # --ca-cert: the bundle must help apt and pip during the build and stay in no layer.
    common = ("--network", "host", "--ca-cert", str(HOST_CA_BUNDLE), "-v", "--json")

    env = {"DOCKER_BUILDKIT": "0"} if builder == "classic" else {}

    def build(name: str) -> tuple[CliResult, list[tuple[str, list[str]]]]:
        result = run_cli("build", manifest, "--tag", docker_cleanup.image_tag(f"{name}-{builder}"), *common,
                         env=env)
        assert result.returncode == 0, result.describe()
        return result, build_steps(result.stderr)

    first, steps = build("first")
    assert not install_reused(first.stderr, steps), first.stderr
    # BuildKit installs in a RUN step of the build; the classic builder's engines in a container.
    install_step = any(instruction.startswith(INSTALL_STEP) for instruction, _ in steps)
    assert install_step == (builder == "buildkit"), first.stderr
    assert ("installing requirements (" in first.stderr) == (builder == "classic"), first.stderr
    again, steps = build("unchanged")
    assert again.json()["id"] == first.json()["id"], "an unchanged job must give the same image"
    not_cached = [instruction for instruction, lines in steps if not instruction.startswith(("FROM ", "ARG "))
                  and not reused(lines)]
    assert not_cached == [], again.stderr
    assert install_reused(again.stderr, steps), again.stderr

    gitrepos.push_files(remote, {"entrypoint.py": ENTRYPOINT.format(suffix="?")},
                        message="change the code")
    changed, steps = build("code-changed")
    assert changed.json()["id"] != first.json()["id"]
    assert changed.json()["commit"] != first.json()["commit"]
    assert all(cached(steps, r"^RUN apt-get install .* \(system_dependencies\)$")), changed.stderr  # apt
    assert install_reused(changed.stderr, steps), changed.stderr  # the install step did not run again
    assert cached(steps, r"^COPY .*job/ /src/fatman/") == [False], changed.stderr

    image = changed.json()["id"]
    shout = "print(__import__('entrypoint').Shout().perform('a'))"
    code, out = docker_cleanup.run(image, ["python", "-c", shout])
    assert (code, out.strip()) == (0, "A?"), out

    # Everything below looks at the image's own files, as root so nothing is hidden from find.
    checks = {
        "pip caches": "find / -xdev -type d -path '*/.cache/pip' -print",
        "apt lists": "find /var/lib/apt/lists -type f ! -name lock -print",
        "apt archives": "find /var/cache/apt/archives -name '*.deb' -print",
        ".git folders": "find / -xdev -name .git -print",
        "CA bundles of the build": (
            "find / -xdev \\( -name ca-bundle.pem -o -name racetrack-ca.pem \\) -print; "
            "ls -d /build 2>/dev/null; true"),
        "job packages the wrapper's venv has": (
            "cd /opt/fatman/job/site-packages && for entry in *; do "
            "[ \"$entry\" = __pycache__ ] && continue; "
            "[ -e \"/opt/fatman/venv/lib/python3.11/site-packages/$entry\" ] && echo \"$entry\"; done; true"),
    }
    for what, command in checks.items():
        code, out = docker_cleanup.run(image, ["sh", "-c", command], user="root")
        assert code == 0 and out.strip() == "", f"{what}:\n{out}"
    code, out = docker_cleanup.run(image, ["sh", "-c", "ls /opt/fatman/job/site-packages; jq --version"])
    assert code == 0, out
    listed = out.split()
    assert "six.py" in listed and any(e.startswith("six-1.16.0") for e in listed), listed
    wrapper_packages = ("flask", "werkzeug", "gunicorn", "jinja2", "prometheus")
    assert not [e for e in listed if e.lower().startswith(wrapper_packages)], listed
    assert listed[-1].startswith("jq-"), listed
