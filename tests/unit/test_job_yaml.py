"""job.yaml (Racetrack 2.x): its fields and rules, deprecations, what it means for the build, the format
detection, the folder lookup and the JSON Schema. Fast: no Docker, no network."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from racetrack_builder.errors import ManifestError, UsageError
from racetrack_builder.manifest import (
    FATMAN,
    JOB,
    JobManifest,
    Manifest,
    find_manifest,
    format_of,
    load_manifest,
    parse_manifest,
)
from racetrack_builder.manifest.advice import manifest_advice
from racetrack_builder.render import RenderOptions, image_labels, render_dockerfile, write_context
from racetrack_builder.schema import manifest_schema
from racetrack_builder.source import JobSource

BASE = """\
name: adder
owner_email: owner@example.com
jobtype: python3:2.15.1
git:
  remote: https://github.com/example/adder
jobtype_extra:
  entrypoint_path: adder.py
"""


def problems_of(text: str, filename: str = "job.yaml") -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, filename)
    return [p.format(caught.value.filename) for p in caught.value.problems]


def job(text: str = BASE) -> JobManifest:
    manifest = parse_manifest(text, "job.yaml")
    assert isinstance(manifest, JobManifest)
    return manifest


# --- a valid job.yaml, and what it means for the build --------------------------------------------


def test_minimal_job_yaml_is_a_manifest_with_2x_defaults() -> None:
    manifest = job()
    assert isinstance(manifest, Manifest)
    assert manifest.jobtype == "python3:2.15.1"
    assert manifest.lang == "python3:latest"  # racetrack-build's own base image
    assert manifest.version == "0.0.1"
    assert manifest.git.branch is None  # the remote's default branch
    assert manifest.git.directory == "."
    assert manifest.python.entrypoint_path == "adder.py"
    assert manifest.python.python_version == "3.11"
    assert manifest.check_requirements is True
    assert manifest.deployment.replicas == 1
    assert manifest.notices == ()
    assert manifest.wrapper_env() == [("JOB_TYPE_VERSION", "2.15.1"), ("FATMAN_PUB_PREFIX", "/pub/job"),
                                      ("FATMAN_CONTRACT", "2"),
                                      ("VENV_PACKAGES_PATH", "/opt/fatman/job/site-packages"),
                                      ("FATMAN_HOME_PAGE", "/docs")]


def test_jobtype_extra_settings_reach_the_wrapper_env() -> None:
    manifest = job(BASE + """\
  entrypoint_class: JobEntrypoint
  requirements_path: requirements.txt
  python_version: '3.12'
  check_requirements: 'false'
  max_concurrency: 4
  max_concurrency_queue: '10'
  home_page: /api/v1/webview/
""")
    assert manifest.python.entrypoint_class == "JobEntrypoint"
    assert manifest.python.requirements_path == "requirements.txt"
    assert manifest.python.python_version == "3.12"
    assert manifest.check_requirements is False
    assert dict(manifest.wrapper_env()) == {
        "JOB_TYPE_VERSION": "2.15.1", "FATMAN_PUB_PREFIX": "/pub/job", "FATMAN_CONTRACT": "2",
        "VENV_PACKAGES_PATH": "/opt/fatman/job/site-packages", "FATMAN_MAX_CONCURRENCY": "4",
        "FATMAN_MAX_QUEUE": "10", "FATMAN_HOME_PAGE": "/api/v1/webview/",
    }


@pytest.mark.parametrize(("jobtype", "reported"), [
    ("python3:2.15.1", "2.15.1"), ("python3:latest", None), ("python3:2.15.*", None), ("python3:2.*.*", None),
])
def test_job_type_version_is_set_only_for_an_exact_version(jobtype: str, reported: str | None) -> None:
    # latest or a wildcard is resolved by Racetrack's plugin registry, not here: /health then
    # reports the version of the wrapper that serves the job.
    env = dict(job(BASE.replace("python3:2.15.1", jobtype)).wrapper_env())
    assert env.get("JOB_TYPE_VERSION") == reported


def test_fields_without_use_are_labels() -> None:
    manifest = job(BASE + """\
replicas: 3
resources:
  memory_min: 256Mi
  memory_max: 1Gi
  cpu_min: 10m
infrastructure_target: kubernetes
""")
    labels = dict(manifest.racetrack_labels())
    assert labels == {
        "org.racetrack.jobtype": "python3:2.15.1",
        "org.racetrack.replicas": "3",
        "org.racetrack.resources.memory-min": "256Mi",
        "org.racetrack.resources.memory-max": "1Gi",
        "org.racetrack.resources.cpu-min": "10m",
        "org.racetrack.infrastructure-target": "kubernetes",
        "org.racetrack.image-type": "docker",
        "org.racetrack.jobtype-extra.debian-version": "slim-bullseye",
        "org.racetrack.jobtype-extra.debian-backports": "false",
        "org.racetrack.jobtype-extra.memray-profiler": "false",
    }
    image = dict(image_labels(manifest, None))
    assert image["org.racetrack.replicas"] == "3"
    assert "org.racetrack.git.branch" not in image  # no branch: the remote's default


@pytest.mark.parametrize("jobtype", ["python3:latest", "python3:2.15.*", "python3:2.*.*",
                                     "python3:1.3.*-3.9-bullseye", "python3:2.15.1"])
def test_jobtype_versions_2x_accepts(jobtype: str) -> None:
    assert job(BASE.replace("python3:2.15.1", jobtype)).jobtype == jobtype


def test_owner_email_and_replicas_follow_2x_rules() -> None:
    manifest = job(BASE.replace("owner@example.com", "a@b") + "replicas: 0\n")
    assert manifest.owner_email == "a@b"  # fatman.yaml's rule is stricter; 2.x checks .+@.+
    assert manifest.deployment.replicas == 0  # 2.x sets no minimum


# --- deprecated fields ----------------------------------------------------------------------------


def test_deprecated_lang_and_python_are_read_with_warnings_naming_the_new_field() -> None:
    text = BASE.replace("jobtype: python3:2.15.1", "lang: python3:latest")
    text = text.replace("jobtype_extra:", "python:")
    manifest = job(text)
    assert manifest.jobtype == "python3:latest"
    assert manifest.python.entrypoint_path == "adder.py"
    assert manifest_advice(manifest) == [
        "job.yaml:3:1: lang: is deprecated. Use jobtype: instead.",
        "job.yaml:6:1: python: is deprecated. Use jobtype_extra: instead.",
    ]


def test_runtime_settings_in_a_deprecated_block_are_ignored_as_2x_does() -> None:
    manifest = job(BASE.replace("jobtype_extra:", "wrapper_properties:") + "  max_concurrency: 3\n")
    assert manifest.settings.max_concurrency is None
    assert manifest.notices == (
        "job.yaml:6:1: wrapper_properties: is deprecated. Use jobtype_extra: instead.",
        "job.yaml:8:3: wrapper_properties.max_concurrency: is read at run time from jobtype_extra only, as "
        "Racetrack 2.x does, so it has no effect here (move it under jobtype_extra:)",
    )


def test_unused_2x_settings_and_kubernetes_limits_are_warned_of() -> None:
    manifest = job(BASE + "  debian_version: slim-bookworm\nresources:\n  memory_min: 100Mi\n"
                          "  memory_max: 16Gi\n")
    assert manifest.notices == (
        "job.yaml:8:3: jobtype_extra.debian_version: is not used by racetrack-build (its images start from "
        "the python image of python_version; see --python-image); it is kept as a label",
        "job.yaml:11:3: resources.memory_max: is more than the 8Gi Racetrack's Kubernetes infrastructure "
        "allows",
        "job.yaml:10:3: resources.memory_min: is less than a quarter of memory_max, which Racetrack's "
        "Kubernetes infrastructure refuses",
    )


# --- problems, each with its fix ------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    (BASE.replace("python3:2.15.1", "python3:2.15.x"),
     "job.yaml:3:10: jobtype: 'python3:2.15.x' uses 'x' as a wildcard (write '*': 'python3:2.15.*')"),
    (BASE.replace("python3:2.15.1", "golang:latest"),
     "job.yaml:3:10: jobtype: 'golang:latest' is not a job type racetrack-build builds (it builds python3 "
     "jobs: python3:<version>)"),
    (BASE.replace("python3:2.15.1", "python3"),
     "job.yaml:3:10: jobtype: 'python3' has no version, which Racetrack 2.x cannot look up (write "
     "python3:latest or python3:<version>, e.g. python3:2.15.1)"),
    (BASE.replace("python3:2.15.1", "python3:2:1"),
     "job.yaml:3:10: jobtype: 'python3:2:1' has more than one ':' (write name:version, e.g. "
     "'python3:latest')"),
    (BASE.replace("jobtype: python3:2.15.1\n", ""),
     "job.yaml:1:1: jobtype: is missing (add jobtype: python3:latest)"),
    (BASE.replace("jobtype: python3:2.15.1", "lang: python3:latest\njobtype: python3:latest"),
     "job.yaml:3:1: lang: cannot be given with jobtype (remove it: lang is jobtype's deprecated name)"),
    (BASE + "python:\n  entrypoint_path: a.py\n",
     "job.yaml:8:1: python: cannot be given with jobtype_extra (keep one, jobtype_extra: python is a "
     "deprecated name of it)"),
    (BASE.replace("jobtype_extra:\n  entrypoint_path: adder.py\n", ""),
     "job.yaml:1:1: jobtype_extra: is missing (add jobtype_extra: {entrypoint_path: job_entrypoint.py})"),
    # Its keys commented out: the block is null, not missing (it crashed with StopIteration).
    (BASE.replace("  entrypoint_path: adder.py\n", "  # entrypoint_path: adder.py\n"),
     "job.yaml:6:1: jobtype_extra: is empty (give it the entrypoint: jobtype_extra: {entrypoint_path: "
     "job_entrypoint.py})"),
    (BASE.replace("jobtype_extra:\n  entrypoint_path: adder.py\n", "python:\n"),
     "job.yaml:6:1: python: is empty (give it the entrypoint: python: {entrypoint_path: job_entrypoint.py})"),
    (BASE.replace("https://github.com/example/adder", "git@github.com:x/y.git"),
     "job.yaml:5:11: git.remote: 'git@github.com:x/y.git' is not an https:// URL (Racetrack 2.x clones only "
     "https:// remotes, e.g. 'https://github.com/you/your-job')"),
    (BASE.replace("owner@example.com", "nobody"),
     "job.yaml:2:14: owner_email: 'nobody' is not an email address (write it as name@example.com)"),
    (BASE + "replicas: 51\n", "job.yaml:8:11: replicas: is 51 (Racetrack 2.x allows at most 50 replicas)"),
    (BASE + "replicas: '2'\n",
     "job.yaml:8:11: replicas: must be a whole number, not the text '2' (e.g. replicas: 1)"),
    (BASE + "resources:\n  memory_max: 1GB\n",
     "job.yaml:9:15: resources.memory_max: '1GB' is not a Kubernetes quantity (a number and an optional "
     "suffix: Ei Pi Ti Gi Mi Ki E P T G M k m u n p, e.g. '512Mi' or '500m')"),
    (BASE + "resources:\n  cpu: 1\n",
     "job.yaml:9:3: resources.cpu: is not a known field (did you mean 'cpu_min'?)"),
    (BASE + "resources:\n  cpu_min: 1\n",
     "job.yaml:9:12: resources.cpu_min: YAML reads 1 as a number, not text (quote it: '1')"),
    (BASE + "image_type: oci\n", "job.yaml:8:13: image_type: 'oci' is not supported (the only image type is "
                                 "'docker')"),
    (BASE + "infrastructure_target: ''\n",
     "job.yaml:8:24: infrastructure_target: is empty (give a value, e.g. 'kubernetes')"),
    (BASE + "replica: 2\n", "job.yaml:8:1: replica: is not a known field (did you mean 'replicas'?)"),
    (BASE + "entrypoint_class: X\n",
     "job.yaml:8:1: entrypoint_class: is not a known field here (it belongs under 'jobtype_extra:')"),
    (BASE + "  max_concurency: 3\n",
     "job.yaml:8:3: jobtype_extra.max_concurency: is not a known field (did you mean 'max_concurrency'?)"),
    (BASE + "  max_concurrency: -1\n",
     "job.yaml:8:20: jobtype_extra.max_concurrency: is -1 (use a whole number of at least 0; 0 turns the "
     "limit off)"),
    (BASE + "  max_concurrency_queue: many\n",
     "job.yaml:8:26: jobtype_extra.max_concurrency_queue: must be a whole number, not the text 'many' "
     "(write digits, e.g. 4; 0 turns the limit off)"),
    (BASE + "  check_requirements: maybe\n",
     "job.yaml:8:23: jobtype_extra.check_requirements: must be true or false, not the text 'maybe' (write "
     "true or false)"),
    (BASE + "  python_version: 3.10\n",
     "job.yaml:8:19: jobtype_extra.python_version: YAML reads 3.10 as the number 3.1, not text (quote it: "
     "'3.10')"),
    (BASE + "  home_page: docs\n",
     "job.yaml:8:14: jobtype_extra.home_page: 'docs' does not start with '/' (give a path of the job, e.g. "
     "'/docs')"),
    (BASE + "  home_page: http://evil.example\n",
     "job.yaml:8:14: jobtype_extra.home_page: 'http://evil.example' is a URL, not a path of the job "
     "(the home page is under the job's own prefix: give a path, e.g. '/docs')"),
    (BASE + "  home_page: //evil.example\n",
     "job.yaml:8:14: jobtype_extra.home_page: '//evil.example' has an empty segment ('//'), which a browser "
     "may read as another site (give a path of the job, e.g. '/docs')"),
    (BASE + "  home_page: /\n",
     "job.yaml:8:14: jobtype_extra.home_page: '/' would redirect / to itself (give another path of the job, "
     "e.g. '/docs')"),
    (BASE + "  home_page: /a/../b\n",
     "job.yaml:8:14: jobtype_extra.home_page: '/a/../b' has a '.' or '..' segment (give the path itself, "
     "e.g. '/docs')"),
    (BASE + "runtime_env:\n  FATMAN_HOME_PAGE: /x\n",
     "job.yaml:9:3: runtime_env.FATMAN_HOME_PAGE: 'FATMAN_HOME_PAGE' is set by the image of a job.yaml (set "
     "jobtype_extra.home_page instead)"),
    (BASE + "runtime_env:\n  JOB_TYPE_VERSION: '1'\n",
     "job.yaml:9:3: runtime_env.JOB_TYPE_VERSION: 'JOB_TYPE_VERSION' is set by the image of a job.yaml "
     "(choose another name)"),
    (BASE + "runtime_env:\n  AUTH_TOKEN: x\n",
     "job.yaml:9:3: runtime_env.AUTH_TOKEN: 'AUTH_TOKEN' is Racetrack's own (its image or its deploy sets "
     "it), and it refuses a job whose runtime_env sets it too (choose another name)"),
])
def test_problem_messages(text: str, expected: str) -> None:
    assert problems_of(text) == [expected]


@pytest.mark.parametrize("name", ["JOB_MANIFEST_YAML", "JOB_DEPLOYMENT_TIMESTAMP", "AUTH_TOKEN",
                                  "REQUEST_TRACING_HEADER", "CALLER_NAME_HEADER", "GIT_VERSION",
                                  "DEPLOYED_BY_RACETRACK_VERSION"])
def test_names_racetrack_sets_at_deploy_are_refused_in_runtime_env(name: str) -> None:
    (problem,) = problems_of(BASE + f"runtime_env:\n  {name}: x\n")
    assert f"runtime_env.{name}: '{name}' is Racetrack's own" in problem


def test_x_keys_are_unknown_in_job_yaml_as_in_2x() -> None:
    (problem,) = problems_of(BASE + "x-defaults: 1\n")
    assert problem.startswith("job.yaml:8:1: x-defaults: is not a known field (remove it; fields allowed at "
                              "the top level: name, version,")
    assert "name it 'x-" not in problem


def test_job_names_are_reserved_in_runtime_env_of_both_formats() -> None:
    (problem,) = problems_of(BASE + "runtime_env:\n  JOB_NAME: other\n")
    assert problem.startswith("job.yaml:9:3: runtime_env.JOB_NAME: 'JOB_NAME' is set by the image and cannot "
                              "be overridden")


def test_empty_job_yaml_names_its_required_fields() -> None:
    assert problems_of("# nothing yet\n") == [
        "job.yaml:1:1: the manifest is empty (add the required fields name, owner_email, git.remote, jobtype "
        "and jobtype_extra.entrypoint_path)"]


# --- which format, which file ---------------------------------------------------------------------


def test_format_by_content_then_by_name() -> None:
    data = yaml.safe_load(BASE)
    assert format_of("anything.yaml", data) == JOB
    assert format_of("fatman.yaml", data) == JOB
    assert format_of("job.yaml", {"name": "x"}) == JOB
    assert format_of("prod.job.yaml", {"name": "x"}) == JOB
    assert format_of("fatman.yaml", {"name": "x"}) == FATMAN
    assert format_of("minimal.yaml", {"lang": "python3"}) == FATMAN


def test_a_fatman_yaml_holding_a_2x_manifest_is_read_as_one_and_told_to_rename(tmp_path: Path) -> None:
    path = tmp_path / "fatman.yaml"
    path.write_text(BASE)
    manifest = load_manifest(path)
    assert isinstance(manifest, JobManifest)
    assert manifest.notices == (f"{path}: holds a Racetrack 2.x manifest (jobtype:), read as job.yaml; "
                                f"rename it job.yaml",)


def test_missing_job_yaml_names_job_yaml(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "job.yaml")
    assert caught.value.problems[0].message.startswith("no such file (create job.yaml at the root")


def test_folder_lookup_finds_either_file_and_refuses_both(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(BASE)
    assert find_manifest(tmp_path) == tmp_path / "job.yaml"
    assert find_manifest(tmp_path / "job.yaml") == tmp_path / "job.yaml"
    (tmp_path / "fatman.yaml").write_text("name: x\n")
    with pytest.raises(UsageError) as caught:
        find_manifest(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path} holds both {tmp_path / 'job.yaml'} and {tmp_path / 'fatman.yaml'}: which one is the "
        f"manifest? (give the file's path instead of the folder, e.g. {tmp_path / 'job.yaml'})")
    assert caught.value.exit_code == 2
    (tmp_path / "job.yaml").unlink()
    assert find_manifest(tmp_path) == tmp_path / "fatman.yaml"
    (tmp_path / "fatman.yaml").unlink()
    with pytest.raises(UsageError, match="holds no job.yaml or fatman.yaml"):
        find_manifest(tmp_path)


# --- the JSON Schema of job.yaml --------------------------------------------------------------------


def test_job_schema_agrees_with_the_validator_on_examples() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft7Validator(manifest_schema("job"))
    assert manifest_schema("job")["title"] == "job.yaml"
    good = yaml.safe_load(BASE + "  max_concurrency: 4\n  home_page: /api/v1/webview/\nreplicas: 2\n"
                                 "resources:\n  memory_max: 1Gi\n")
    assert validator.is_valid(good)
    for bad in ({**good, "jobtype": "python3:2.x"}, {**good, "replicas": 51},
                {**good, "resources": {"memory_max": "1GB"}}, {**good, "unknown": 1},
                {**good, "jobtype_extra": {"entrypoint_path": "a.py", "home_page": "//x"}},
                {k: v for k, v in good.items() if k != "jobtype"},
                {**good, "lang": "python3:latest"}):
        assert not validator.is_valid(bad), bad
        with pytest.raises(ManifestError):
            parse_manifest(yaml.safe_dump(bad), "job.yaml")
    deprecated = manifest_schema("job")["properties"]["lang"]
    assert deprecated["deprecationMessage"] == "Deprecated. Use jobtype: instead."


@pytest.mark.parametrize(("value", "valid"),
                         [(4, True), ("4", True), (None, True), ("four", False), (-1, False)])
def test_the_schema_takes_a_count_as_the_validator_does(value: object, valid: bool) -> None:
    """2.x reads max_concurrency from digits as text too: an editor must not flag what builds."""
    jsonschema = pytest.importorskip("jsonschema")
    manifest = yaml.safe_load(BASE)
    manifest["jobtype_extra"]["max_concurrency"] = value
    assert jsonschema.Draft7Validator(manifest_schema("job")).is_valid(manifest) is valid
    if valid:
        parse_manifest(yaml.safe_dump(manifest), "job.yaml")
    else:
        with pytest.raises(ManifestError):
            parse_manifest(yaml.safe_dump(manifest), "job.yaml")


# --- a fatman.yaml and its job.yaml translation build the same image ----------------------------------

FATMAN_2022 = """\
name: adder
owner_email: owner@example.com
lang: python3:latest
version: 1.2.3
git:
  remote: https://github.com/example/adder
  branch: main
  directory: jobs/adder
python:
  entrypoint_path: entrypoint.py
  entrypoint_class: FatmanEntrypoint
  requirements_path: requirements.txt
system_dependencies: [libgomp1]
build_env:
  DEBIAN_FRONTEND: noninteractive
runtime_env:
  TORCH_MODEL_ZOO: zoo
public_endpoints: [/api/v1/perform]
labels:
  team: ml
"""
JOB_2X = """\
name: adder
owner_email: owner@example.com
jobtype: python3:2.15.1
version: 1.2.3
git:
  remote: https://github.com/example/adder
  branch: main
  directory: jobs/adder
jobtype_extra:
  entrypoint_path: entrypoint.py
  entrypoint_class: FatmanEntrypoint
  requirements_path: requirements.txt
system_dependencies: [libgomp1]
build_env:
  DEBIAN_FRONTEND: noninteractive
runtime_env:
  TORCH_MODEL_ZOO: zoo
public_endpoints: [/api/v1/perform]
labels:
  team: ml
replicas: 2
"""


def _source(root: Path) -> JobSource:
    files = {"entrypoint.py": "class FatmanEntrypoint:\n    def perform(self, x: float) -> float:\n"
                              "        return x\n",
             "requirements.txt": "idna\n"}
    for rel, text in files.items():
        (root / rel).write_text(text)
    return JobSource(repo_root=root, job_root=root, files=tuple(sorted(files)), commit="0" * 40,
                     remote="https://github.com/example/adder", branch="main", dirty=False)


def _without_labels_and_env(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, the LABEL and ENV ones and comments left out."""
    kept, skipping = [], False
    for line in dockerfile.splitlines():
        if line.startswith(("LABEL ", "ENV ")):
            skipping = True
        elif skipping and not line.startswith(" "):
            skipping = False
        if not skipping and not line.startswith("#"):
            kept.append(line)
    return kept


def _env_names(dockerfile: str) -> set[str]:
    """The names the ENV instructions set (each a line of its own)."""
    names, inside = set(), False
    for line in dockerfile.splitlines():
        if line.startswith("ENV "):
            inside, line = True, line[4:]
        if inside:
            names.add(line.strip().split("=", 1)[0])
            inside = line.endswith("\\")
    return names


def test_fatman_yaml_and_its_job_yaml_translation_render_the_same_dockerfile(tmp_path: Path) -> None:
    fatman, job_manifest = parse_manifest(FATMAN_2022, "fatman.yaml"), parse_manifest(JOB_2X, "job.yaml")
    source = _source(tmp_path)
    # With a secret build env file, for the install step's BuildKit secret.
    options = RenderOptions(manifest_file="manifest", secret_file=True)
    old, new = render_dockerfile(fatman, source, options), render_dockerfile(job_manifest, source, options)
    # One more difference: the BuildKit secret of the install step has 2.x's name, build_secrets.
    assert "id=build_secrets," in new and "build_secrets" not in old
    new = new.replace("build_secrets", "racetrack-build-env")
    assert _without_labels_and_env(old) == _without_labels_and_env(new)
    assert _env_names(new) - _env_names(old) == {"JOB_TYPE_VERSION", "FATMAN_PUB_PREFIX", "FATMAN_CONTRACT",
                                                 "VENV_PACKAGES_PATH", "FATMAN_HOME_PAGE"} | set(
        dict(job_manifest.build_env_at_runtime()))
    assert {"JOB_NAME", "JOB_VERSION", "FATMAN_NAME", "FATMAN_VERSION"} <= _env_names(old)
    assert 'JOB_NAME="adder"' in old and 'JOB_VERSION="1.2.3"' in new
    new_labels = dict(image_labels(job_manifest, source))
    assert {k: v for k, v in image_labels(fatman, source)} == {
        k: v for k, v in new_labels.items() if k not in dict(job_manifest.racetrack_labels())}


def test_a_job_yaml_context_reads_its_secrets_from_2x_build_secrets(tmp_path: Path) -> None:
    # A 2.x pipeline passes `--secret id=build_secrets,...`; a fatman.yaml's context keeps ours.
    (tmp_path / "src").mkdir()
    source = _source(tmp_path / "src")
    options = RenderOptions(secret_build_names=("INDEX_TOKEN",))
    cases = [(parse_manifest(JOB_2X, "job.yaml"), "job", "build_secrets"),
             (parse_manifest(FATMAN_2022, "fatman.yaml"), "fatman", "racetrack-build-env")]
    for manifest, name, secret_id in cases:
        context = write_context(manifest, source, tmp_path / name, options)
        assert f"--mount=type=secret,id={secret_id},required=false" in context.dockerfile
        assert f"--secrets /run/secrets/{secret_id}" in context.dockerfile
        assert f"--secret id={secret_id},src=.env.build " in context.docker_build_command("t:1", ".env.build")


@pytest.mark.parametrize(("text", "field"), [
    (BASE, "jobtype_extra"),
    (BASE.replace("jobtype_extra:", "python:"), "python"),  # the deprecated block: its own name
])
def test_problems_found_at_build_time_use_the_manifests_own_field_names(
    tmp_path: Path, text: str, field: str
) -> None:
    import dataclasses

    from racetrack_builder.errors import SourceError
    from racetrack_builder.job_files import check_job_files

    manifest = parse_manifest(text + "  entrypoint_class: Adder\n  requirements_path: reqs.txt\n", "job.yaml")
    source = _source(tmp_path)  # entrypoint.py and requirements.txt, not the files named
    with pytest.raises(SourceError, match=rf"^{field}\.entrypoint_path: 'adder.py' not found"):
        check_job_files(manifest, source)
    (tmp_path / "adder.py").write_text("class Other:\n    pass\n")
    source = dataclasses.replace(source, files=(*source.files, "adder.py"))
    with pytest.raises(SourceError, match=rf"^{field}\.entrypoint_class: 'Adder' is not defined"):
        check_job_files(manifest, source)
    (tmp_path / "adder.py").write_text("class Adder:\n    pass\n")
    with pytest.raises(SourceError, match=rf"^{field}\.requirements_path: 'reqs.txt' not found"):
        check_job_files(manifest, source)


def test_a_job_yaml_image_keeps_build_env_and_blanks_the_secret_build_variables(tmp_path: Path) -> None:
    # 2.x: build_env is the image's ENV; a secret build variable is "" at run time; runtime_env wins.
    manifest = job(BASE + "build_env:\n  MODE: build\n  SHARED: from-build\n  PATH: /nope\n"
                   "runtime_env:\n  SHARED: from-runtime\n")
    assert manifest.build_env_at_runtime(["INDEX_TOKEN"]) == [("MODE", "build"), ("SHARED", "from-build"),
                                                              ("INDEX_TOKEN", "")]  # PATH: the image's
    (tmp_path / "src").mkdir()
    options = RenderOptions(secret_build_names=("INDEX_TOKEN",))
    text = render_dockerfile(manifest, _source(tmp_path / "src"), options)
    env = text.split("\nENV ", 1)[1].split("\nCMD", 1)[0]
    assert 'MODE="build"' in env and 'SHARED="from-runtime"' in env and 'INDEX_TOKEN=""' in env
    assert "from-build" not in env and "/nope" not in env
    fatman = parse_manifest(FATMAN_2022, "fatman.yaml")  # build_env: DEBIAN_FRONTEND
    assert fatman.build_env_at_runtime(["INDEX_TOKEN"]) == []  # the fatman era: build steps only
