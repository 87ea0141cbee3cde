"""Builds that must fail do so with exit 1, a message that names what went wrong, no image under the
requested tag, no temporary folders left behind and no traceback of the tool itself.

Each scenario is a tiny job committed to a bare repository and built through the CLI from
``file://``, with pip pointed at the suite's local index (``--network host``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import pytest

from tests import gitrepos
from tests.integration.jobs import CliResult, client_manifest, image_exists, run_cli

if TYPE_CHECKING:
    from tests.integration.jobs import DockerCleanup

pytestmark = pytest.mark.docker

ADDER = '''\
class Adder:
    def perform(self, x: float, y: float) -> float:
        """Add two numbers."""
        return x + y
'''

BASE_MANIFEST: dict[str, Any] = {
    "name": "failing-job",
    "owner_email": "nobody@example.com",
    "lang": "python3:latest",
    "version": "0.1.0",
    "git": {"remote": "(replaced)", "branch": "master"},
    "python": {"entrypoint_path": "entrypoint.py"},
}


@dataclass(frozen=True)
class Scenario:
    """A job that cannot be built, and what the failure must say."""

    id: str
    files: dict[str, str]
    manifest: dict[str, Any] = field(default_factory=dict)  # merged over BASE_MANIFEST
    wheels: tuple[str, ...] = ()  # put into the local index first
    args: tuple[str, ...] = ()  # extra CLI arguments
    expected: tuple[str, ...] = ()  # regular expressions stderr must match (case-insensitive)
    known_bug: str | None = None  # a bug outside the tests that makes this scenario fail today


SCENARIOS = [
    Scenario(
        "apt-package-missing",
        {"entrypoint.py": ADDER},
        {"system_dependencies": ["racetrack-no-such-package"]},
        expected=(r"system dependenc|apt", r"racetrack-no-such-package"),
    ),
    Scenario(
        "pip-cannot-resolve",
        {"entrypoint.py": ADDER, "requirements.txt": "racetrack-no-such-distribution==1.0.0\n"},
        {"python": {"entrypoint_path": "entrypoint.py", "requirements_path": "requirements.txt"}},
        expected=(
            r"racetrack-no-such-distribution==1\.0\.0 \(requirements\.txt:1\): .*not on the package index",
            r"check the name on the index",
        ),
    ),
    Scenario(
        # The wrapper's pyproject requires werkzeug>=2.0; its Flask needs a newer one still.
        "conflicts-with-the-wrapper",
        {"entrypoint.py": ADDER, "requirements.txt": "werkzeug<2\n"},
        {"python": {"entrypoint_path": "entrypoint.py", "requirements_path": "requirements.txt"}},
        wheels=("Werkzeug==1.0.1",),
        expected=(r"werkzeug<2 \(requirements\.txt:1\): flask \S+ \(the wrapper's own\) needs werkzeug",
                  r"pin werkzeug to a version flask accepts"),
    ),
    Scenario(
        # Flask 2.0 imports werkzeug.urls.url_quote, which the Werkzeug the wrapper brings (3.x) no
        # longer has: pip is content (Flask 2.0.2 asks only Werkzeug>=2.0), the import is not.
        "flask-2.0-with-newer-werkzeug",
        {"entrypoint.py": ADDER, "requirements.txt": "Flask==2.0.2\n"},
        {"python": {"entrypoint_path": "entrypoint.py", "requirements_path": "requirements.txt"}},
        wheels=("Flask==2.0.2",),
        expected=(r"cannot be imported|import", r"ImportError: cannot import name 'url_quote'"),
    ),
    Scenario(
        # Not refused on the host: the image's Python may accept syntax the CLI's does not.
        "entrypoint-syntax-error",
        {"entrypoint.py": "class Adder:\n    def perform(self, x: float:\n        return x\n"},
        expected=(r"cannot be imported inside the image: importing the entrypoint 'entrypoint.py' failed: "
                  r"SyntaxError", r"To fix: fix the syntax error at entrypoint.py:2"),
    ),
    Scenario(
        "entrypoint-import-error",
        {"entrypoint.py": "import racetrack_missing_module  # not installed anywhere\n\n" + ADDER},
        expected=(r"cannot be imported|import", r"No module named 'racetrack_missing_module'",
                  r"To fix: add the package that provides the module 'racetrack_missing_module'"),
    ),
    Scenario(
        "failing-docs-example-with-smoke-test",
        {"entrypoint.py": ADDER + '''
    def docs_input_example(self) -> dict:
        # Not a number: perform raises TypeError, so the example gives an erroneous result.
        return {'x': 'forty', 'y': 2}
'''},
        args=("--smoke-test",),
        expected=(r"smoke|example", r"POST /api/v1/perform -> [45]\d\d"),
    ),
]


def _our_traceback(stderr: str) -> list[str]:
    """Frames of racetrack_builder (or any Python traceback outside the job's own output)."""
    frames = re.findall(r'^\s*File "[^"]*racetrack_builder/[^"]*".*$', stderr, flags=re.MULTILINE)
    job_output = stderr.split("Last lines of the failing step:", 1)[0]
    if "Traceback (most recent call last)" in job_output:
        frames.append("a traceback before the failing step's own output")
    return frames


def _params() -> list[Any]:
    return [pytest.param(s, id=s.id, marks=[pytest.mark.xfail(strict=True, reason=s.known_bug)]
                         if s.known_bug else []) for s in SCENARIOS]


@pytest.mark.parametrize("scenario", _params())
def test_failing_build(scenario: Scenario, tmp_path: Path, base_image: str, public_index: str,
                       wheelhouse: Callable[..., Path], docker_client: docker.DockerClient,
                       docker_cleanup: DockerCleanup) -> None:
    if scenario.wheels:
        wheelhouse(list(scenario.wheels))
    remote = gitrepos.make_bare_repo(tmp_path / "remote.git", scenario.files)
    manifest = client_manifest(tmp_path / "client", {**BASE_MANIFEST, **scenario.manifest},
                               remote=remote.as_uri(), build_env={"PIP_INDEX_URL": public_index})
    tag = docker_cleanup.image_tag(scenario.id)
    # A private TMPDIR: what the CLI leaves there is its own, whatever else runs on the machine.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    args = ("--network", "host", "--tag", tag, "--json", *scenario.args)
    result: CliResult = run_cli("build", manifest, *args, env={"TMPDIR": str(scratch)})

    assert result.returncode == 1, result.describe()
    report = json.loads(result.stdout)  # --json: a document for the pipeline, failure or not
    assert report["ok"] is False and report["exit_code"] == 1, report
    assert re.search(scenario.expected[0], report["message"], flags=re.IGNORECASE), report
    first_line = next(line for line in result.stderr.splitlines() if line.startswith("Error:"))
    assert re.search(scenario.expected[0], first_line, flags=re.IGNORECASE), result.describe()
    for expected in scenario.expected[1:]:
        assert re.search(expected, result.stderr, flags=re.IGNORECASE), (expected, result.describe())
    assert _our_traceback(result.stderr) == [], result.describe()
    assert not image_exists(docker_client, tag), f"{tag} exists after the failed build"
    assert sorted(p.name for p in scratch.iterdir() if p.name.startswith("racetrack-")) == []


def test_runtime_secrets_are_needed_only_to_start_the_job(
    tmp_path: Path, base_image: str, docker_client: docker.DockerClient, docker_cleanup: DockerCleanup
) -> None:
    """Runtime secrets never enter the image, so a CI builder without the production file builds;
    --smoke-test starts the job with them, so it stops at once (exit 2, before any build step)."""
    remote = gitrepos.make_bare_repo(tmp_path / "remote.git", {"entrypoint.py": ADDER})
    fields = {**BASE_MANIFEST, "secret_runtime_env_file": ".env.runtime"}
    manifest = client_manifest(tmp_path / "client", fields, remote=remote.as_uri())
    tag = docker_cleanup.image_tag("runtime-secrets-absent")

    built = run_cli("build", manifest, "--tag", tag)
    assert built.returncode == 0, built.describe()
    assert image_exists(docker_client, tag)

    smoke_tag = docker_cleanup.image_tag("runtime-secrets-smoke")
    smoke = run_cli("build", manifest, "--tag", smoke_tag, "--smoke-test")
    assert smoke.returncode == 2, smoke.describe()
    assert re.search(r"secret_runtime_env_file: '\.env\.runtime' not found", smoke.stderr), smoke.describe()
    assert not re.search(r"step \d+/\d+", smoke.stderr, flags=re.IGNORECASE), smoke.describe()


def test_a_slow_init_is_waited_for_as_long_as_asked(
    tmp_path: Path, base_image: str, docker_cleanup: DockerCleanup
) -> None:
    """A model loading in __init__ may take minutes: --ready-timeout sets the wait, and running out
    of it says the job was still starting and how to wait longer."""
    slow = "import time\n\n" + ADDER.replace(
        "class Adder:\n", "class Adder:\n    def __init__(self) -> None:\n        time.sleep(4)\n\n"
    )
    remote = gitrepos.make_bare_repo(tmp_path / "remote.git", {"entrypoint.py": slow})
    manifest = client_manifest(tmp_path / "client", BASE_MANIFEST, remote=remote.as_uri())
    tag = docker_cleanup.image_tag("slow-init")
    built = run_cli("build", manifest, "--tag", tag)
    assert built.returncode == 0, built.describe()

    impatient = run_cli("test", tag, "--ready-timeout", "1")
    assert impatient.returncode == 1, impatient.describe()
    assert "still running: give it longer with --ready-timeout" in impatient.stderr, impatient.describe()
    # The manifest (for its runtime secrets) with the image `build --tag` made:
    patient = run_cli("test", manifest, "--tag", tag, "--ready-timeout", "60")
    assert patient.returncode == 0, patient.describe()


def test_a_requirements_variable_nothing_defines_stops_before_the_build(tmp_path: Path) -> None:
    """pip would use '${PRIVATE_HOST}' as written and fail on the URL, far from the cause."""
    remote = gitrepos.make_bare_repo(tmp_path / "remote.git", {
        "entrypoint.py": ADDER,
        "requirements.txt": "--index-url http://${PRIVATE_USER}:${PRIVATE_TOKEN}@${PRIVATE_HOST}/simple/\nsix\n",
    })
    folder = tmp_path / "client"
    python = {"entrypoint_path": "entrypoint.py", "requirements_path": "requirements.txt"}
    fields = {**BASE_MANIFEST, "python": python, "secret_build_env_file": ".env.build"}
    manifest = client_manifest(folder, fields, remote=remote.as_uri())
    (folder / ".env.build").write_text("PRIVATE_USER=u\nPRIVATE_TOKEN=t0ken-value\n")
    result = run_cli("build", manifest)
    assert result.returncode == 2, result.describe()
    assert "requirements.txt uses ${PRIVATE_HOST}, which neither build_env nor secret_build_env_file" \
        in result.stderr, result.describe()
    assert not re.search(r"step \d+/\d+", result.stderr, flags=re.IGNORECASE), result.describe()
