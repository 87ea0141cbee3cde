"""The CI recipes users copy (docs/ci/github-actions.yml, docs/ci/gitlab-ci.yml), checked without an
engine: each is valid YAML of its CI's shape, every racetrack-build command in it parses with the
CLI's own click commands (so a misspelled or removed flag fails here), every ``--json`` field its
``jq`` programs read is one the CLI writes, and no line prints a secret.

The helpers that read the recipes (steps, shell lines, racetrack-build commands, jq programs) are
shared with tests/integration/test_ci_recipes.py, which runs the same commands for real.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from racetrack_builder.cli import cli

REPO_ROOT = Path(__file__).resolve().parents[2]
GITHUB_RECIPE = REPO_ROOT / "docs" / "ci" / "github-actions.yml"
GITLAB_RECIPE = REPO_ROOT / "docs" / "ci" / "gitlab-ci.yml"
RECIPES = {"github": GITHUB_RECIPE, "gitlab": GITLAB_RECIPE}
CLI_NAME = "racetrack-build"
# GitLab's keywords that are not jobs (https://docs.gitlab.com/ee/ci/yaml/).
GITLAB_GLOBAL_KEYS = {"stages", "variables", "default", "include", "workflow", "image", "services",
                      "before_script", "after_script", "cache"}
# The names of variables that hold secrets, whatever the CI: passwords, tokens, keys, and the
# recipes' BUILD_SECRETS (the secret env file's contents).
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRETS$|_KEY$|CREDENTIALS")
# A racetrack-build command where the shell would run it: first on its line, or after an operator.
CLI_AT_COMMAND_POSITION = re.compile(r"(?:^|[;&|]\s*|\$\(\s*|\b(?:then|do|else)\s+|!\s+)racetrack-build\b")
SHELL_OPERATORS = {">", ">>", "<", "|", "||", "&&", ";", ";;", "&", "2>", "2>&1"}
# A field a jq program reads: `.name`, not `env.MANIFEST` nor the dot inside a word.
JQ_FIELD = re.compile(r"(?<![\w)\]])\.([A-Za-z_]\w*)")


# ---- reading the recipes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """One shell script a CI runs: a GitHub ``run:`` step, or a GitLab job's script."""

    recipe: str  # "github" or "gitlab"
    job: str
    name: str  # the step's name (GitHub), "script" or "after_script" (GitLab)
    text: str
    env: Mapping[str, str] = field(default_factory=dict)  # the step's own env: (GitHub)
    step_id: str | None = None

    def lines(self) -> list[str]:
        return logical_lines(self.text)


def load_recipe(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def github_on(data: Mapping[Any, Any]) -> Any:
    """The ``on:`` key, which YAML 1.1 (PyYAML) reads as the boolean True."""
    return data.get("on", data.get(True))


def github_jobs(data: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    return dict(data["jobs"])


def gitlab_jobs(data: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in data.items()
            if name not in GITLAB_GLOBAL_KEYS and not str(name).startswith(".")}


def _script_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def gitlab_job_scripts(data: Mapping[Any, Any], job: str) -> tuple[str, str]:
    """(before_script + script, after_script) of ``job``, each as one shell text: GitLab runs the
    first two in one shell, after_script in another."""
    spec = gitlab_jobs(data)[job]
    default = data.get("default") or {}
    before = spec.get("before_script", default.get("before_script", data.get("before_script")))
    after = spec.get("after_script", default.get("after_script", data.get("after_script")))
    main = "\n".join(_script_list(before) + _script_list(spec.get("script")))
    return main, "\n".join(_script_list(after))


def recipe_scripts(recipe: str) -> list[Script]:
    """Every shell script of a recipe, in the order of the file."""
    data = load_recipe(RECIPES[recipe])
    scripts = []
    if recipe == "github":
        for job_id, job in github_jobs(data).items():
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    scripts.append(Script(recipe, job_id, step.get("name", f"step {index}"), step["run"],
                                          dict(step.get("env") or {}), step.get("id")))
    else:
        for job_id in gitlab_jobs(data):
            main, after = gitlab_job_scripts(data, job_id)
            scripts.append(Script(recipe, job_id, "script", main))
            if after:
                scripts.append(Script(recipe, job_id, "after_script", after))
    return scripts


def logical_lines(text: str) -> list[str]:
    """The script's lines with backslash continuations joined; blank and comment lines left out."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    if pending.strip():
        lines.append(pending.strip())
    return lines


def shell_words(line: str) -> list[str]:
    """``line`` split as the shell would (quotes removed, ``$VAR`` left as written), with the
    operators (``>``, ``||``, ``|``...) as words of their own."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def cli_command(line: str) -> list[str] | None:
    """The arguments of the racetrack-build command on ``line`` (up to the first shell operator), or
    None when the line runs none. A racetrack-build anywhere but first on its line is an error:
    the tests could not see it."""
    if not line.startswith(CLI_NAME + " ") and line != CLI_NAME:
        if CLI_AT_COMMAND_POSITION.search(line):
            raise AssertionError(f"put each racetrack-build command first on a line of its own: {line!r}")
        return None
    words = shell_words(line)[1:]
    for index, word in enumerate(words):
        if word in SHELL_OPERATORS:
            return words[:index]
    return words


def cli_commands(script: Script) -> list[list[str]]:
    return [argv for line in script.lines() if (argv := cli_command(line)) is not None]


def all_cli_commands(recipe: str) -> Iterator[tuple[Script, list[str]]]:
    for script in recipe_scripts(recipe):
        for argv in cli_commands(script):
            yield script, argv


@dataclass(frozen=True)
class JqRead:
    """A jq program in a recipe and the ``--json`` document it reads (validate.json, build.json)."""

    line: str
    program: str
    document: str
    fields: tuple[str, ...]


def jq_reads(recipe: str) -> list[JqRead]:
    reads = []
    for script in recipe_scripts(recipe):
        for line in script.lines():
            words = shell_words(line) if "jq " in line else []
            for start in (i for i, w in enumerate(words) if w == "jq"):
                rest = words[start + 1:]
                end = next((i for i, w in enumerate(rest) if w in SHELL_OPERATORS or w == ")"), len(rest))
                args = [w for w in rest[:end] if not w.startswith("-")]
                if len(args) >= 2:
                    document = Path(args[-1].rstrip(")")).name
                    reads.append(JqRead(line, args[0], document, tuple(JQ_FIELD.findall(args[0]))))
    return reads


def expand(text: str, variables: Mapping[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced from ``variables`` (a name it lacks is an error)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"{name} is not set (in {text!r})")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


# ---- the recipes' shape ---------------------------------------------------------------------------


def test_the_github_workflow_is_a_workflow_of_jobs_with_steps() -> None:
    data = load_recipe(GITHUB_RECIPE)
    assert data.get("name") and github_on(data), "a workflow needs name: and on:"
    jobs = github_jobs(data)
    assert {"base", "build"} <= set(jobs), jobs.keys()
    for job_id, job in jobs.items():
        assert job.get("runs-on"), f"job {job_id} has no runs-on"
        assert job.get("timeout-minutes"), f"job {job_id}: bound it, a hung engine must not hang CI"
        for step in job["steps"]:
            assert isinstance(step, dict) and len({"run", "uses"} & set(step)) == 1, (job_id, step)
            if "run" in step:
                # Expressions only in env: values, never pasted into a script (script injection).
                assert "${{" not in step["run"], (job_id, step.get("name"))
                assert step.get("name"), f"a run: step of {job_id} has no name"
    assert data["defaults"]["run"]["shell"] == "bash"  # -eo pipefail: a failing command fails the step
    build_steps = [s.get("uses", "").split("@")[0] for s in jobs["build"]["steps"]]
    assert build_steps[:2] == ["actions/checkout", "actions/setup-python"], build_steps


def test_the_gitlab_pipeline_has_stages_jobs_and_a_dind_engine() -> None:
    data = load_recipe(GITLAB_RECIPE)
    jobs = gitlab_jobs(data)
    assert {"publish-base", "build"} <= set(jobs), jobs.keys()
    for job_id, job in jobs.items():
        assert job.get("stage") in data["stages"], f"job {job_id}: stage {job.get('stage')!r}"
        assert all(isinstance(item, str) for item in _script_list(job.get("script"))), job_id
        assert job.get("script"), f"job {job_id} has no script"
    default = data["default"]
    assert any("dind" in (s["name"] if isinstance(s, dict) else s) for s in default["services"])
    assert data["variables"]["DOCKER_HOST"].startswith("tcp://docker:")
    assert jobs["build"]["artifacts"]["reports"]["dotenv"] == "build.env"


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_recipe_validates_builds_with_the_cache_smoke_tests_and_pushes(recipe: str) -> None:
    commands = [argv for _, argv in all_cli_commands(recipe)]
    subcommands = [argv[0] for argv in commands]
    assert subcommands.count("validate") == 1 and subcommands.count("build") == 1, subcommands
    assert "base" in subcommands and "--version" in subcommands, subcommands
    assert subcommands.index("validate") < subcommands.index("build")
    build = next(argv for argv in commands if argv[0] == "build")
    for flag in ("--json", "--local", "--push", "--registry", "--cache-from", "--base-registry",
                 "--smoke-test"):
        assert flag in build, f"{recipe}: the build has no {flag}: {build}"
    validate = next(argv for argv in commands if argv[0] == "validate")
    assert "--json" in validate
    base = next(argv for argv in commands if argv[0] == "base")
    assert {"--push", "--registry"} <= set(base), base


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_registry_names_and_secrets_are_variables(recipe: str) -> None:
    """The test that runs the recipes substitutes a registry on 127.0.0.1: nothing may be fixed."""
    for _, argv in all_cli_commands(recipe):
        for flag in ("--registry", "--base-registry", "--cache-from", "--tag"):
            if flag in argv:
                value = argv[argv.index(flag) + 1]
                assert value.startswith("$"), f"{recipe}: {flag} {value} is not a variable"
    text = RECIPES[recipe].read_text(encoding="utf-8")
    assert not re.search(r"\b(?:ghcr\.io|docker\.io|registry\.gitlab\.com|quay\.io)/", text), \
        "a registry host in a recipe must be a variable"


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_script_is_valid_shell(recipe: str, tmp_path: Path) -> None:
    """GitHub's steps run in bash; GitLab's docker image has only a POSIX sh (dash here is as strict)."""
    shell = "bash" if recipe == "github" else "sh"
    for index, script in enumerate(recipe_scripts(recipe)):
        path = tmp_path / f"{index}.sh"
        path.write_text(script.text + "\n", encoding="utf-8")
        checked = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, f"{recipe}, {script.job} / {script.name}: {checked.stderr}"


# ---- the commands against the CLI ----------------------------------------------------------------


def check_cli_arguments(argv: list[str]) -> None:
    """Parse ``argv`` with racetrack-build's own click commands, without running anything: an
    unknown flag, a missing value or a bad choice raises click's UsageError."""
    assert isinstance(cli, click.Group)
    if argv and argv[0] in cli.commands:
        command: click.Command = cli.commands[argv[0]]
        args = argv[1:]
    elif argv and argv[0].startswith("-"):
        known = {opt for param in cli.params for opt in [*param.opts, *param.secondary_opts]}
        unknown = [a for a in argv if a.startswith("-") and a not in known]
        if unknown:
            raise click.NoSuchOption(unknown[0])
        return
    else:  # `racetrack-build MANIFEST ...` is a build
        command, args = cli.commands["build"], argv
    with command.make_context(f"{CLI_NAME} {command.name}", list(args), resilient_parsing=False):
        pass


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_racetrack_build_command_parses_with_the_cli(recipe: str) -> None:
    commands = list(all_cli_commands(recipe))
    assert commands, f"no racetrack-build command found in {recipe}"
    for script, argv in commands:
        try:
            check_cli_arguments(argv)
        except click.UsageError as exc:
            pytest.fail(f"{RECIPES[recipe].name}, {script.job} / {script.name}: "
                        f"racetrack-build {' '.join(argv)}: {exc.format_message()}", pytrace=False)


def test_a_misspelled_flag_is_caught() -> None:
    """The check above can fail: the same command with one flag misspelled does not parse."""
    _, build = next((s, a) for s, a in all_cli_commands("github") if a[0] == "build")
    check_cli_arguments(build)
    broken = [("--cache-form" if word == "--cache-from" else word) for word in build]
    with pytest.raises(click.NoSuchOption):
        check_cli_arguments(broken)


def test_a_racetrack_build_command_the_tests_cannot_see_is_an_error() -> None:
    script = Script("github", "job", "step", 'rc=0; racetrack-build build "$M" --json\n')
    with pytest.raises(AssertionError, match="first on a line"):
        cli_commands(script)
    assert cli_commands(Script("github", "job", "step", 'echo "racetrack-build failed"\n')) == []


# ---- the --json fields the recipes read ------------------------------------------------------------


def _dict_keys(source: Path, functions: set[str]) -> set[str]:
    """The string keys of every dict literal in those functions (or methods) of ``source``."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in functions:
            for inner in ast.walk(node):
                if isinstance(inner, ast.Dict):
                    keys.update(k.value for k in inner.keys
                                if isinstance(k, ast.Constant) and isinstance(k.value, str))
                if (isinstance(inner, ast.Assign) and isinstance(inner.targets[0], ast.Subscript)
                        and isinstance(inner.targets[0].slice, ast.Constant)):
                    keys.add(str(inner.targets[0].slice.value))
    return keys


def _all_keys(document: Any) -> set[str]:
    if isinstance(document, dict):
        return set(document) | {k for v in document.values() for k in _all_keys(v)}
    if isinstance(document, list):
        return {k for v in document for k in _all_keys(v)}
    return set()


def build_json_fields() -> set[str]:
    """What ``build --json`` can write: its success summary, a failure's document, the cache report."""
    package = REPO_ROOT / "racetrack_builder"
    return (_dict_keys(package / "cli.py", {"build", "_json_error"})
            | _dict_keys(package / "registry_cache.py", {"to_dict"}))


def validate_json_fields(tmp_path: Path) -> set[str]:
    """What ``validate --json`` wrote, run for real on a valid and an invalid manifest, an overlay
    whose base is invalid (its problems name their ``source``), and a misspelled option."""
    bad = tmp_path / "fatman.yaml"
    bad.write_text("name: x\nowner_email: nobody\nlang: python3:latest\n", encoding="utf-8")
    base = tmp_path / "base" / "job.yaml"
    base.parent.mkdir()
    base.write_text("name: x\nowner_email: nobody\njobtype: python3:latest\n"
                    "git:\n  remote: https://git.example.com/x.git\n"
                    "jobtype_extra:\n  entrypoint_path: a.py\n", encoding="utf-8")
    overlay = tmp_path / "prod" / "job.yaml"
    overlay.parent.mkdir()
    overlay.write_text("extends: ../base/job.yaml\n", encoding="utf-8")
    fields: set[str] = set()
    runs: list[tuple[list[str], int]] = [
        ([str(REPO_ROOT / "examples" / "adder" / "fatman.yaml")], 0), ([str(bad)], 2), ([str(overlay)], 2),
        ([str(bad), "--jsn"], 2),
    ]
    for args, code in runs:
        result = subprocess.run([sys.executable, "-m", "racetrack_builder", "validate", *args, "--json"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == code, result.stderr
        fields |= _all_keys(json.loads(result.stdout))
    return fields


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_json_field_a_recipe_reads_is_one_the_cli_writes(recipe: str, tmp_path: Path) -> None:
    known = {"validate.json": validate_json_fields(tmp_path), "build.json": build_json_fields()}
    reads = jq_reads(recipe)
    assert {r.document for r in reads} == set(known), [r.line for r in reads]
    for read in reads:
        unknown = set(read.fields) - known[read.document]
        assert not unknown, (f"{recipe}: {read.line!r} reads {sorted(unknown)}, which "
                             f"{read.document} never has")
    read_from_build = {f for r in reads if r.document == "build.json" for f in r.fields}
    assert {"image", "digest", "message", "hint"} <= read_from_build, read_from_build


def test_a_misspelled_json_field_is_caught() -> None:
    fields = build_json_fields()
    assert {"image", "digest", "ok", "exit_code", "message", "warnings"} <= fields
    assert "imag" not in fields and "digests" not in fields


# ---- secrets ---------------------------------------------------------------------------------------


def secret_variables(script: Script) -> set[str]:
    """Variables of ``script`` that hold secrets: set from ``secrets.`` (GitHub), or named so."""
    names = {name for name, value in script.env.items() if "secrets." in str(value)}
    names |= {m for m in re.findall(r"\$\{?(\w+)", script.text) if SECRET_NAME.search(m)}
    return names


def secret_leaks(script: Script) -> list[str]:
    """Lines that could print a secret: tracing, dumping the environment, a secret variable used
    other than written to a file or piped to a ``--password-stdin``."""
    leaks = []
    secrets = secret_variables(script)
    for line in script.lines():
        words = shell_words(line)
        if re.search(r"\bset\s+-\w*x|\bset\s+-o\s+xtrace|^(?:env|printenv|export\s+-p|declare\s+-p)\b", line):
            leaks.append(line)
            continue
        used = [name for name in secrets if re.search(rf"\$\{{?{name}\b", line)]
        if not used:
            continue
        to_file = ">" in words and words[0] in ("printf", "cat")
        to_stdin = "|" in words and "--password-stdin" in words and words[0] == "printf"
        tested = re.fullmatch(r'if \[ -[nz] "\$\{?\w+(:-)?\}?" \]; then', line) is not None
        copied = words[0] in ("cp", "install") or (words[0] == "(" and ("cp" in words or "install" in words))
        if not (to_file or to_stdin or copied or tested) or "-p" in words or "--password" in words:
            leaks.append(line)
    return leaks


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_no_recipe_prints_a_secret(recipe: str) -> None:
    scripts = recipe_scripts(recipe)
    assert any(secret_variables(s) for s in scripts), f"{recipe} handles no secret at all?"
    for script in scripts:
        assert secret_leaks(script) == [], f"{recipe}, {script.job} / {script.name}"


@pytest.mark.parametrize("line", [
    'echo "$BUILD_SECRETS"',
    'printf "%s" "$REGISTRY_PASSWORD"',
    'docker login -u me -p "$CI_REGISTRY_PASSWORD" registry',
    'cat "$BUILD_SECRETS"',
    "set -x",
    "env",
    'if [ -n "$BUILD_SECRETS" ]; then echo "$BUILD_SECRETS"; fi',
])
def test_a_line_that_prints_a_secret_is_caught(line: str) -> None:
    script = Script("github", "job", "step", line, {"BUILD_SECRETS": "${{ secrets.BUILD_SECRETS }}"})
    assert secret_leaks(script) == [line]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_the_secret_file_is_written_where_the_manifest_names_it(recipe: str) -> None:
    writes = [line for s in recipe_scripts(recipe) for line in s.lines() if "BUILD_SECRETS" in line
              and "$SECRET_BUILD_ENV_FILE" in line]
    assert len(writes) == 1, writes
    assert '"$(dirname "$MANIFEST")/$SECRET_BUILD_ENV_FILE"' in writes[0]
    removed = [line for s in recipe_scripts(recipe) for line in s.lines() if line.startswith("rm -f ")
               and "$SECRET_BUILD_ENV_FILE" in line]
    assert removed, f"{recipe} never removes the secret file"
