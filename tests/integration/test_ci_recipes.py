"""The CI recipes of docs/ci/ run for real: every racetrack-build command in them, in their order,
against this machine's engine and a registry on 127.0.0.1, on examples/adder.

The recipes are read from the YAML files (never copied here), and each script is run by a shell as
its CI would run it: a GitHub ``run:`` step by ``bash -eo pipefail`` with the workflow's, job's and
step's ``env:`` (``${{ vars.X }}``, ``${{ secrets.X }}``... given by the test), a GitLab job's
``before_script`` and ``script`` by ``sh -e`` with its ``variables:``. What stands in for the CI:

- ``uses:`` actions are not run, but ``actions/checkout`` is a clone of the job's repository;
- the lines that install racetrack-build and the tools (pip, apk) are skipped: the tests run
  this checkout's CLI, put first on PATH by a small wrapper that records each invocation (its
  arguments, exit code and stdout) and passes everything else through unchanged;
- the engine is this machine's, so GitLab's DOCKER_HOST (the dind service) is not used; and this
  machine intercepts TLS, so ``racetrack-build base`` gets ``--network host --ca-cert`` here, as
  the suite's base image was built (a real runner needs neither);
- every job runs, whatever its ``if:`` or ``rules:`` say (the base images are published first).

Each test then checks that the recorded commands are exactly the recipe's (expanded), with the exit
codes the recipe's handling expects, and what the recipe made of the ``--json`` output: the image
and digest it hands on, the annotations of a failure, that no secret was printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
import yaml

from tests import gitrepos
from tests.integration.jobs import (
    HOST_CA_BUNDLE,
    cli_environment,
    example_files,
    example_manifest,
    registry_tags,
)
from tests.unit.test_ci_recipes_syntax import (
    GITHUB_RECIPE,
    GITLAB_RECIPE,
    Script,
    cli_command,
    expand,
    github_jobs,
    gitlab_job_scripts,
    gitlab_jobs,
    load_recipe,
    logical_lines,
    recipe_scripts,
)

pytestmark = pytest.mark.docker

STEP_TIMEOUT_S = 600
JOB_NAME = "example-adder"  # examples/adder's manifest name
DOCKER_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS_CERTDIR",
                    "DOCKER_CONTEXT")
MANIFEST_ACCEPT = ("application/vnd.docker.distribution.manifest.v2+json, "
                   "application/vnd.oci.image.manifest.v1+json")

# The wrapper first on the recipes' PATH: this checkout's CLI, each run recorded as one JSON line.
WRAPPER = """#!{python}
import json, os, subprocess, sys
argv = sys.argv[1:]
extra = json.loads(os.environ.get("RECIPE_TEST_EXTRA_ARGS", "{{}}")).get(argv[0] if argv else "", [])
proc = subprocess.run([sys.executable, "-m", "racetrack_builder", *argv, *extra], stdout=subprocess.PIPE)
sys.stdout.buffer.write(proc.stdout)
sys.stdout.flush()
with open(os.environ["RECIPE_TEST_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps({{"argv": argv, "rc": proc.returncode,
                          "stdout": proc.stdout.decode("utf-8", "replace")}}) + "\\n")
sys.exit(proc.returncode)
"""


# ---- what the CI would give the recipes --------------------------------------------------------


@dataclass
class Ci:
    """Values a CI provides, and the places a run writes to."""

    registry: str  # 127.0.0.1:PORT
    namespace: str  # a fresh path under it: nothing of another test is there
    bare: Path  # the job's repository
    folder: Path
    secrets: dict[str, str]
    machine_env: dict[str, str] = field(default_factory=dict)  # e.g. a DOCKER_HOST that answers nothing
    outputs: list[str] = field(default_factory=list)  # every script's log, for the cleanup

    @property
    def log(self) -> Path:
        return self.folder / "racetrack-build.jsonl"

    @property
    def bin(self) -> Path:
        return self.folder / "bin"

    @property
    def prefix(self) -> str:
        return f"{self.registry}/{self.namespace}"

    def image_prefix(self, recipe: str) -> str:
        """Where the recipe pushes the job's image: GitHub's REGISTRY/REGISTRY_NAMESPACE, GitLab's
        CI_REGISTRY_IMAGE (a project's path under the namespace)."""
        return self.prefix if recipe == "github" else f"{self.prefix}/adder-project"

    def refs_made(self) -> set[str]:
        """The images the runs named under this namespace (pushed, cache, candidates)."""
        pattern = re.compile(re.escape(self.prefix) + r"/[\w./-]+:[\w.-]+")
        return {ref for text in self.outputs for ref in pattern.findall(text)}


@dataclass(frozen=True)
class StepResult:
    job: str
    name: str
    returncode: int
    output: str  # stdout and stderr, interleaved as a CI log shows them
    duration: float


@dataclass
class Run:
    """What a recipe did: its steps, the racetrack-build invocations, the commands it holds."""

    ci: Ci
    steps: list[StepResult] = field(default_factory=list)
    expected: list[list[str]] = field(default_factory=list)  # the recipe's commands, expanded, in order
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # GitHub: steps.<id>.outputs
    files: dict[str, str] = field(default_factory=dict)  # files the recipe wrote for later jobs

    @property
    def records(self) -> list[dict[str, Any]]:
        if not self.ci.log.exists():
            return []
        return [json.loads(line) for line in self.ci.log.read_text(encoding="utf-8").splitlines()]

    def record(self, subcommand: str) -> dict[str, Any]:
        found = [r for r in self.records if r["argv"][:1] == [subcommand]]
        assert len(found) == 1, self.describe()
        return found[0]

    def json(self, subcommand: str) -> Any:
        try:
            return json.loads(self.record(subcommand)["stdout"])
        except ValueError:
            raise AssertionError(f"racetrack-build {subcommand} printed no JSON\n{self.describe()}") from None

    def log_text(self) -> str:
        return "\n".join(step.output for step in self.steps)

    def failed(self) -> StepResult | None:
        """The step that failed; the racetrack-build commands run until then are the recipe's own."""
        step = next((s for s in self.steps if s.returncode != 0), None)
        ran = [r["argv"] for r in self.records]
        assert ran == self.expected[:len(ran)], self.describe()
        return step

    def describe(self) -> str:
        parts = [f"--- {s.job} / {s.name}: exit {s.returncode} after {s.duration:.1f}s\n{s.output[-5000:]}"
                 for s in self.steps]
        return "\n".join(parts) + "\n--- racetrack-build runs: " + json.dumps(
            [(r["argv"], r["rc"]) for r in self.records])


def install_line(line: str) -> bool:
    """Whether a script line installs racetrack-build or the CI's tools (the test has them)."""
    words = line.split()
    if not words:
        return False
    first = Path(words[0]).name
    return first in ("apk", "apt-get", "pip", "pip3") or (
        first.startswith("python") and words[1:3] in (["-m", "pip"], ["-m", "venv"]))


def runnable(text: str) -> str:
    """The script with its install lines replaced by no-ops, every other line as written."""
    lines = []
    for raw in text.splitlines():
        if raw.strip() and not raw.strip().startswith("#") and install_line(raw.strip()):
            assert not raw.rstrip().endswith("\\"), f"an install line the test cannot skip: {raw!r}"
            lines.append(": skipped by the test, which runs the racetrack-build of this checkout")
        else:
            lines.append(raw)
    return "\n".join(lines) + "\n"


def expected_commands(script: Script, env: Mapping[str, str]) -> list[list[str]]:
    """The racetrack-build commands of ``script`` with its variables expanded as the shell would."""
    commands = []
    for line in logical_lines(script.text):
        argv = cli_command(line)
        if argv is not None:
            commands.append([expand(word, env) for word in argv])
    return commands


def run_shell(ci: Ci, argv: list[str], script_text: str, env: Mapping[str, str],
              cwd: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    path = ci.folder / f"script-{uuid.uuid4().hex[:8]}.sh"
    path.write_text(runnable(script_text), encoding="utf-8")
    proc = subprocess.run([*argv, str(path)], env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=STEP_TIMEOUT_S, check=False)
    ci.outputs.append(proc.stdout)
    return proc.returncode, proc.stdout, time.monotonic() - started


def base_env(ci: Ci) -> dict[str, str]:
    """The environment every script starts from: this machine's (the root image setting of the
    session, hermetic git), its engine, an empty docker config, the recording CLI first on PATH."""
    env = {k: v for k, v in cli_environment().items() if k not in DOCKER_VARIABLES}
    extra: dict[str, list[str]] = {}
    if HOST_CA_BUNDLE.is_file():
        extra["base"] = ["--network", "host", "--ca-cert", str(HOST_CA_BUNDLE)]
    env.update({
        "PATH": f"{ci.bin}{os.pathsep}{env['PATH']}",
        "CI": "true",
        "DOCKER_CONFIG": str(ci.folder / "docker-config"),
        "TMPDIR": str(ci.folder / "tmp"),
        "RECIPE_TEST_LOG": str(ci.log),
        "RECIPE_TEST_EXTRA_ARGS": json.dumps(extra),
        **ci.machine_env,
    })
    return env


def prepare(ci: Ci) -> None:
    for name in ("bin", "docker-config", "tmp"):
        (ci.folder / name).mkdir(parents=True, exist_ok=True)
    wrapper = ci.bin / "racetrack-build"
    wrapper.write_text(WRAPPER.format(python=sys.executable), encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)


def checkout(ci: Ci, workspace: Path) -> None:
    gitrepos.git("clone", "--quiet", ci.bare.as_uri(), str(workspace), cwd=ci.folder)


# ---- GitHub Actions --------------------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")


def github_expressions(text: str, contexts: Mapping[str, Mapping[str, Any]]) -> str:
    """``${{ context.path }}`` replaced; anything else the recipe starts to use fails here, loudly."""

    def value(match: re.Match[str]) -> str:
        context, _, path = match.group(1).partition(".")
        current: Any = contexts.get(context)
        if current is None:
            raise AssertionError(f"the test gives no ${{{{ {match.group(1)} }}}}: teach it, or use env:")
        for part in path.split("."):
            current = current.get(part, "") if isinstance(current, Mapping) else ""
        return str(current)

    return EXPRESSION.sub(value, text)


def run_github(ci: Ci, jobs: list[str] | None = None) -> Run:
    data = load_recipe(GITHUB_RECIPE)
    prepare(ci)
    run = Run(ci)
    contexts: dict[str, Any] = {
        "vars": {"REGISTRY": ci.registry, "REGISTRY_NAMESPACE": ci.namespace,
                 "RACETRACK_BUILD_REQUIREMENT": "racetrack-build"},
        "secrets": ci.secrets,
        "github": {"ref": "refs/heads/main", "event_name": "workflow_dispatch", "sha": "0" * 40},
        "inputs": {"publish_base": "true"},
    }
    scripts = {(s.job, s.name): s for s in recipe_scripts("github")}
    workflow_env = dict(data.get("env") or {})
    for job_id, job in github_jobs(data).items():
        if jobs is not None and job_id not in jobs:
            continue
        workspace = ci.folder / f"workspace-{job_id}"
        workspace.mkdir()
        runner_temp = ci.folder / f"runner-temp-{job_id}"
        runner_temp.mkdir()
        summary = ci.folder / f"summary-{job_id}.md"
        run.outputs.clear()
        failed = False
        for index, step in enumerate(job["steps"]):
            if "uses" in step:
                if step["uses"].startswith("actions/checkout@") and not failed:
                    checkout(ci, workspace)
                continue
            if failed and "always()" not in str(step.get("if", "")):
                continue
            script = scripts[(job_id, step.get("name", f"step {index}"))]
            contexts["steps"] = {sid: {"outputs": o} for sid, o in run.outputs.items()}
            env = base_env(ci)
            for mapping in (workflow_env, job.get("env") or {}, step.get("env") or {}):
                env.update({k: github_expressions(str(v), contexts) for k, v in mapping.items()})
            output_file = ci.folder / f"output-{job_id}-{index}"
            output_file.touch()
            env.update({"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace),
                        "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(output_file),
                        "GITHUB_STEP_SUMMARY": str(summary)})
            run.expected += expected_commands(script, env)
            code, output, took = run_shell(ci, ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
                                           step["run"], env, workspace)
            run.steps.append(StepResult(job_id, script.name, code, output, took))
            if step.get("id"):
                lines = output_file.read_text(encoding="utf-8").splitlines()
                run.outputs[step["id"]] = dict(line.split("=", 1) for line in lines if "=" in line)
            failed = failed or code != 0
        if summary.exists():
            run.files[f"summary-{job_id}"] = summary.read_text(encoding="utf-8")
        run.files.update({f"{job_id}.{sid}.{k}": v for sid, o in run.outputs.items() for k, v in o.items()})
        if failed:
            break
    return run


# ---- GitLab CI -----------------------------------------------------------------------------------


def gitlab_variables(data: Mapping[Any, Any], job: Mapping[str, Any],
                     predefined: Mapping[str, str]) -> dict[str, str]:
    """The job's variables as GitLab expands them: the file's, then the job's, over the predefined
    ones; each value may name the variables before it."""
    variables = dict(predefined)
    for mapping in (data.get("variables") or {}, job.get("variables") or {}):
        for name, value in mapping.items():
            text = value["value"] if isinstance(value, Mapping) else str(value)
            variables[name] = expand(text, variables)
    return variables


def run_gitlab(ci: Ci, jobs: list[str] | None = None) -> Run:
    data = load_recipe(GITLAB_RECIPE)
    prepare(ci)
    run = Run(ci)
    secrets_file = ci.folder / "BUILD_SECRETS"  # a variable of type File: GitLab gives its path
    secrets_file.write_text(ci.secrets["BUILD_SECRETS"], encoding="utf-8")
    predefined = {
        "CI": "true", "GITLAB_CI": "true", "CI_REGISTRY": ci.registry,
        "CI_REGISTRY_IMAGE": ci.image_prefix("gitlab"), "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": ci.secrets["REGISTRY_PASSWORD"], "CI_PIPELINE_SOURCE": "web",
        "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main", "PUBLISH_BASE": "true",
        "RACETRACK_BUILD_REQUIREMENT": "racetrack-build", "BUILD_SECRETS": str(secrets_file),
    }
    scripts = {(s.job, s.name): s for s in recipe_scripts("gitlab")}
    for job_id, job in gitlab_jobs(data).items():
        if jobs is not None and job_id not in jobs:
            continue
        workspace = ci.folder / f"workspace-{job_id}"
        checkout(ci, workspace)
        env = base_env(ci)
        variables = gitlab_variables(data, job, predefined)
        # This machine's engine stands in for the dind service.
        env.update({k: v for k, v in variables.items() if k not in DOCKER_VARIABLES})
        main, after = gitlab_job_scripts(data, job_id)
        run.expected += expected_commands(scripts[(job_id, "script")], env)
        code, output, took = run_shell(ci, ["sh", "-e"], main, env, workspace)
        run.steps.append(StepResult(job_id, "script", code, output, took))
        if after:
            run.expected += expected_commands(scripts[(job_id, "after_script")], env)
            after_code, after_output, took = run_shell(ci, ["sh", "-e"], after, env, workspace)
            run.steps.append(StepResult(job_id, "after_script", after_code, after_output, took))
        dotenv = workspace / "build.env"
        if dotenv.exists():
            run.files[f"{job_id}.dotenv"] = dotenv.read_text(encoding="utf-8")
        if code != 0:
            break
    return run


RUNNERS = {"github": run_github, "gitlab": run_gitlab}


# ---- fixtures ---------------------------------------------------------------------------------------


def adder_repository(path: Path, *, broken: bool = False, invalid: bool = False) -> Path:
    """A bare repository holding examples/adder at its root, its manifest naming a build secret
    file (so a build fails unless the recipe wrote it)."""
    files: dict[str, bytes] = {k: v for k, v in example_files("adder").items() if "/" not in k}
    manifest = example_manifest("adder")
    manifest["git"] = {"remote": path.as_uri(), "branch": "main"}
    manifest["secret_build_env_file"] = ".env.build"
    if invalid:
        manifest["owner_email"] = "not-an-address"
    if broken:
        files["adder.py"] += b"\nraise RuntimeError('broken on purpose by test_ci_recipes')\n"
    files["fatman.yaml"] = yaml.safe_dump(manifest, sort_keys=False).encode()
    return gitrepos.make_bare_repo(path, files, branch="main")


@pytest.fixture
def make_ci(tmp_path: Path, session_registry: str, base_image: str,
            docker_client: docker.DockerClient) -> Iterator[Any]:
    """``make(**repository_options) -> Ci`` in a fresh namespace of the session's registry; the
    images tagged under it on the engine are removed afterwards."""
    made: list[Ci] = []

    def make(**options: Any) -> Ci:
        folder = tmp_path / f"ci-{len(made)}"
        folder.mkdir()
        ci = Ci(
            registry=session_registry,
            namespace=f"recipes-{uuid.uuid4().hex[:10]}",
            bare=adder_repository(folder / "adder.git", **options),
            folder=folder,
            secrets={
                "REGISTRY_USER": "ci",
                "REGISTRY_PASSWORD": "registry-password-" + uuid.uuid4().hex,
                "BUILD_SECRETS": "RECIPE_TEST_TOKEN=build-secret-" + uuid.uuid4().hex + "\n",
            },
        )
        made.append(ci)
        return ci

    yield make
    for ci in made:
        for ref in sorted(ci.refs_made()):
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.images.remove(ref, force=True)


def registry_digest(registry: str, image: str) -> str:
    repository, _, tag = image.removeprefix(registry + "/").rpartition(":")
    answer = requests.get(f"http://{registry}/v2/{repository}/manifests/{tag}", timeout=10,
                          headers={"Accept": MANIFEST_ACCEPT})
    assert answer.status_code == 200, answer.text
    return answer.headers["Docker-Content-Digest"]


def pushed_repository(run: Run) -> str:
    """The registry repository the recipe's build pushes the job to: its --registry, then the name."""
    argv = run.record("build")["argv"]
    prefix = argv[argv.index("--registry") + 1]
    return prefix.removeprefix(run.ci.registry + "/") + "/" + JOB_NAME


def assert_no_secret_printed(run: Run) -> None:
    text = run.log_text() + "".join(r["stdout"] for r in run.records) + "".join(run.files.values())
    for name, value in run.ci.secrets.items():
        secret = value.strip().partition("=")[2] or value.strip()
        if name != "REGISTRY_USER":
            assert secret not in text, f"the value of {name} was printed"


# ---- the tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", ["github", "gitlab"])
def test_the_recipe_publishes_the_base_validates_builds_smoke_tests_and_pushes(
        recipe: str, make_ci: Any) -> None:
    ci = make_ci()
    run = RUNNERS[recipe](ci)
    assert run.failed() is None, run.describe()

    # Every racetrack-build command of the recipe ran, in its order, as written, and succeeded.
    assert [r["argv"] for r in run.records] == run.expected, run.describe()
    assert [r["rc"] for r in run.records] == [0] * len(run.expected), run.describe()
    assert {argv[0] for argv in run.expected} >= {"--version", "base", "validate", "build"}

    # validate --json: the recipe printed the job it read from it; the secret file was there.
    assert f"{JOB_NAME} 0.1.0 is valid" in run.log_text(), run.describe()
    assert run.json("validate")["warnings"] == [], run.describe()

    # build --json: smoke-tested, pushed, and the digest the recipe hands on is the registry's.
    summary = run.json("build")
    image = summary["image"]
    assert image.startswith(ci.prefix + "/") and image.endswith(f"/{JOB_NAME}:0.1.0"), summary
    assert (summary["ok"], summary["pushed"], summary["smoke_tested"], summary["dirty"]) == (
        True, True, True, False), summary
    assert summary["digest"] == registry_digest(ci.registry, image), summary
    assert registry_tags(ci.registry, pushed_repository(run)) == ["0.1.0"]
    if recipe == "github":
        assert (run.files["build.build.image"], run.files["build.build.digest"]) == (image, summary["digest"])
        assert f"`{image.rpartition(':')[0]}@{summary['digest']}`" in run.files["summary-build"]
    else:
        assert run.files["build.dotenv"] == f"IMAGE={image}\nDIGEST={summary['digest']}\n"

    # The base images and the job's layer cache went to the registry, under the recipe's names.
    base_repository = image.removeprefix(ci.registry + "/").rpartition("/")[0] + "/racetrack-base"
    assert registry_tags(ci.registry, f"{base_repository}/racetrack/python3"), run.describe()
    assert registry_tags(ci.registry, f"{base_repository}/racetrack/build-tools"), run.describe()
    cache_repository = base_repository.removesuffix("racetrack-base") + "racetrack-cache"
    assert f"{JOB_NAME}-job" in registry_tags(ci.registry, cache_repository), run.describe()
    assert summary["cache"]["pushed"], summary

    # Secrets: never printed, and the file the recipe wrote is gone when the job ends.
    assert_no_secret_printed(run)
    assert not list(ci.folder.glob("workspace-*/.env.build")), "the secret file was left behind"


@pytest.mark.parametrize("recipe", ["github", "gitlab"])
def test_an_invalid_manifest_stops_at_validate_with_exit_2_and_names_the_problem(
        recipe: str, make_ci: Any) -> None:
    ci = make_ci(invalid=True)
    run = RUNNERS[recipe](ci, jobs=["build"])
    failed = run.failed()
    assert failed is not None and failed.returncode == 2, run.describe()
    assert [r["argv"][0] for r in run.records] == ["--version", "validate"], run.describe()
    assert run.records[-1]["rc"] == 2
    problem = run.json("validate")["problems"][0]
    assert problem["field"] == "owner_email", problem
    # The recipe turned the problem into a line that points at the manifest, and said what to fix.
    if recipe == "github":
        assert f"::error file=fatman.yaml,line={problem['line']},col={problem['column']}::owner_email: " \
               in failed.output, failed.output
        assert "::error title=Fix the manifest::" in failed.output
    else:
        assert f"fatman.yaml:{problem['line']}:{problem['column']}: owner_email: " in failed.output
        assert "ERROR: fix the manifest" in failed.output
    assert_no_secret_printed(run)
    assert not list(ci.folder.glob("workspace-*/.env.build")), "the secret file was left behind"


@pytest.mark.parametrize("recipe", ["github", "gitlab"])
def test_an_engine_that_does_not_answer_is_exit_3_the_runners_to_fix(
        recipe: str, make_ci: Any, tmp_path: Path) -> None:
    ci = make_ci()
    ci.machine_env["DOCKER_HOST"] = f"unix://{tmp_path}/no-engine.sock"
    run = RUNNERS[recipe](ci, jobs=["build"])
    failed = run.failed()
    assert failed is not None and failed.returncode == 3, run.describe()
    # validate needs no engine (nor does docker login); the build finds none, exits 3, and the recipe
    # says whose it is.
    assert [(r["argv"][0], r["rc"]) for r in run.records] == [("--version", 0), ("validate", 0),
                                                              ("build", 3)], run.describe()
    message = run.json("build")["message"]
    assert "no Docker engine answers" in message, message
    prefix = ("::error title=Fix the runner, not the job::" if recipe == "github"
              else "ERROR: fix the runner, not the job: ")
    assert prefix + message in failed.output, failed.output


@pytest.mark.parametrize("recipe", ["github", "gitlab"])
def test_a_job_that_fails_to_build_is_exit_1_and_nothing_is_pushed(recipe: str, make_ci: Any) -> None:
    ci = make_ci(broken=True)
    run = RUNNERS[recipe](ci, jobs=["build"])
    failed = run.failed()
    assert failed is not None and failed.returncode == 1, run.describe()
    assert [(r["argv"][0], r["rc"]) for r in run.records][-1] == ("build", 1), run.describe()
    report = run.json("build")
    assert report["ok"] is False and report["exit_code"] == 1, report
    assert "broken on purpose" in "\n".join(report.get("log_tail") or []) + run.log_text(), run.describe()
    prefix = ("::error title=The job failed to build::" if recipe == "github"
              else "ERROR: the job failed to build: ")
    assert prefix + report["message"] in failed.output, failed.output
    assert registry_tags(ci.registry, pushed_repository(run)) == [], "a job that failed to build was pushed"
    assert_no_secret_printed(run)
