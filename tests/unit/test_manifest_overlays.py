"""``extends`` overlays and ``-e KEY=VALUE`` overrides: the merge order (base, overlay, command line) and
problems named after the file, or the override, the bad value came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_builder.errors import ManifestError, UsageError
from racetrack_builder.manifest import JobManifest, load_manifest, parse_override
from racetrack_builder.manifest.sources import SourcedProblem

BASE = """\
name: adder
owner_email: owner@example.com
jobtype: python3:2.15.1
git:
  remote: https://github.com/example/adder
  branch: main
jobtype_extra:
  entrypoint_path: adder.py
  max_concurrency: 2
runtime_env:
  LEVEL: info
  KEEP: 'yes'
public_endpoints: [/api/v1/perform, /api/v1/webview]
"""
FATMAN = """\
name: adder
owner_email: owner@example.com
lang: python3:latest
git:
  remote: https://github.com/example/adder
python:
  entrypoint_path: adder.py
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def problems(path: Path, *overrides: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path, overrides)
    return [p.format(caught.value.filename) for p in caught.value.problems]


# --- extends ------------------------------------------------------------------------------------------


def test_overlay_merges_mappings_and_replaces_everything_else(tmp_path: Path) -> None:
    write(tmp_path, "base/job.yaml", BASE)
    overlay = write(tmp_path, "prod/job.yaml", """\
extends: ../base/job.yaml
version: 2.0.0
git:
  branch: release
jobtype_extra:
  max_concurrency: 8
runtime_env:
  LEVEL: warning
public_endpoints: [/api/v1/perform]
""")
    manifest = load_manifest(overlay)
    assert isinstance(manifest, JobManifest)
    assert manifest.version == "2.0.0"
    assert manifest.git.remote == "https://github.com/example/adder"  # from the base
    assert manifest.git.branch == "release"
    assert manifest.python.entrypoint_path == "adder.py"
    assert manifest.settings.max_concurrency == 8
    assert manifest.runtime_env == {"LEVEL": "warning", "KEEP": "yes"}  # merged; 'yes' as written
    assert manifest.public_endpoints == ["/api/v1/perform"]  # a list is replaced, not merged


def test_an_overlay_may_have_any_name(tmp_path: Path) -> None:
    write(tmp_path, "job.yaml", BASE)
    overlay = write(tmp_path, "prod.yaml", "extends: job.yaml\nreplicas: 3\n")
    manifest = load_manifest(overlay)
    assert isinstance(manifest, JobManifest) and manifest.deployment.replicas == 3


def test_overlay_null_replaces_the_base_value(tmp_path: Path) -> None:
    write(tmp_path, "job.base.yaml", BASE)
    overlay = write(tmp_path, "job.yaml", "extends: job.base.yaml\nruntime_env: null\n")
    assert load_manifest(overlay).runtime_env == {}


def test_a_base_may_be_partial_only_the_result_is_validated(tmp_path: Path) -> None:
    write(tmp_path, "common.yaml", "owner_email: team@example.com\nlabels:\n  team: ml\n")
    overlay = write(tmp_path, "job.yaml", BASE.replace("owner_email: owner@example.com\n", "")
                    + "extends: common.yaml\n")
    manifest = load_manifest(overlay)
    assert manifest.owner_email == "team@example.com"
    assert manifest.labels == {"team": "ml"}


def test_a_bad_value_from_the_base_names_the_base_file_and_its_line(tmp_path: Path) -> None:
    base = write(tmp_path, "base/job.yaml", BASE.replace("branch: main", "branch: 'bad branch'"))
    overlay = write(tmp_path, "job.yaml", "extends: base/job.yaml\nreplicas: 99\n")
    assert problems(overlay) == [
        f"{base}:6:11: git.branch: 'bad branch' is not a valid git branch name: spaces are not allowed in "
        f"branch names (use a name such as 'main' or 'feature/my-change')",
        f"{overlay}:2:11: replicas: is 99 (Racetrack 2.x allows at most 50 replicas)",
    ]


def test_sourced_problems_say_their_file_in_json(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", BASE.replace("owner@example.com", "nobody"))
    overlay = write(tmp_path, "job.yaml", "extends: base.yaml\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(overlay)
    (problem,) = caught.value.problems
    assert isinstance(problem, SourcedProblem)
    assert caught.value.filename == str(overlay)
    assert problem.to_dict() == {"field": "owner_email", "message": "'nobody' is not an email address (write "
                                 "it as name@example.com)", "line": 2, "column": 14, "source": str(base)}


@pytest.mark.parametrize("extends, message", [
    ("/etc/job.yaml", "'/etc/job.yaml' is an absolute path (give the base manifest's path relative to this "
                      "file's folder, e.g. '../base/job.yaml')"),
    ("missing.yaml", "'missing.yaml' is no such file ({folder}/missing.yaml; the base manifest's path is "
                     "relative to this file's folder)"),
    ("[a]", "must be text, not a list (e.g. extends: ../base/job.yaml)"),
])
def test_bad_extends(tmp_path: Path, extends: str, message: str) -> None:
    overlay = write(tmp_path, "job.yaml", BASE + f"extends: {extends}\n")
    assert problems(overlay) == [f"{overlay}:14:10: extends: " + message.format(folder=tmp_path)]


def test_a_base_may_not_extend_another(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", BASE + "extends: other.yaml\n")
    overlay = write(tmp_path, "job.yaml", "extends: base.yaml\n")
    assert problems(overlay) == [
        f"{base}:14:1: extends: a base manifest cannot extend another (merge the two bases into one)"]


def test_a_broken_base_file_is_named(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", "name: [adder\n")
    overlay = write(tmp_path, "job.yaml", "extends: base.yaml\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(overlay)
    assert caught.value.filename == str(base)
    (problem,) = caught.value.problems
    assert problem.format(str(base)).startswith(f"{base}:2:1: is not valid YAML")


# --- -e KEY=VALUE ----------------------------------------------------------------------------------


def test_overrides_win_over_overlay_and_base_and_values_are_yaml(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    overlay = write(tmp_path, "job.yaml", "extends: base.yaml\ngit:\n  branch: release\n")
    manifest = load_manifest(overlay, ["git.branch=hotfix", "jobtype_extra.max_concurrency=16",
                                       "runtime_env={A: '1'}", "jobtype_extra.home_page=/api/v1/webview/"])
    assert isinstance(manifest, JobManifest)
    assert manifest.git.branch == "hotfix"
    assert manifest.settings.max_concurrency == 16
    assert manifest.runtime_env == {"A": "1"}  # the leaf is replaced whole
    assert manifest.settings.home_page == "/api/v1/webview/"


def test_overrides_work_on_fatman_yaml_too(tmp_path: Path) -> None:
    path = write(tmp_path, "fatman.yaml", FATMAN)
    manifest = load_manifest(path, ["version=1.2.3", "python.requirements_path=requirements.txt",
                                    "labels={team: ml}"])
    assert (manifest.version, manifest.python.requirements_path, manifest.labels) == (
        "1.2.3", "requirements.txt", {"team": "ml"})


def test_an_override_of_extends_is_said_to_change_nothing(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "other.yaml", BASE.replace("LEVEL: info", "LEVEL: debug"))
    overlay = write(tmp_path, "job.yaml", "extends: base.yaml\n")
    manifest = load_manifest(overlay, ["extends=other.yaml"])
    assert manifest.runtime_env["LEVEL"] == "info"  # as in 2.x: overrides come after extends
    (warning,) = manifest.notices
    assert warning.startswith("-e extends=other.yaml: extends is read before -e values apply")
    assert "write extends in job.yaml" in warning


def test_a_bad_override_value_names_the_override(tmp_path: Path) -> None:
    path = write(tmp_path, "job.yaml", BASE)
    assert problems(path, "jobtype_extra.max_concurrency=lots", "version=1.0") == [
        "-e jobtype_extra.max_concurrency=lots: jobtype_extra.max_concurrency: must be a whole number, not "
        "the text 'lots' (write digits, e.g. 4; 0 turns the limit off)",
        "-e version=1.0: version: 1.0 is not a semantic version: YAML reads it as a number (use "
        "MAJOR.MINOR.PATCH in quotes, e.g. '1.0.0')",
    ]


def test_an_override_needs_existing_mappings_on_its_way(tmp_path: Path) -> None:
    path = write(tmp_path, "job.yaml", BASE)
    assert problems(path, "resources.memory_max=1Gi", "name.first=x") == [
        "-e name.first=x: name: is the text 'adder', not a mapping, so -e cannot set a key inside it (set it "
        "whole: -e name=VALUE)",
        "-e resources.memory_max=1Gi: resources: is not in the manifest, so -e cannot set a key inside it "
        "(add resources: to the manifest, or set it whole: -e resources='{...}')",
    ]


def test_an_override_with_unparsable_yaml_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, "job.yaml", BASE)
    (problem,) = problems(path, "labels={a: [1}")
    assert problem.startswith("-e labels={a: [1}: labels: is not valid YAML")


@pytest.mark.parametrize("text, message", [
    ("git.branch", "-e 'git.branch' has no '=' (write KEY=VALUE, e.g. -e git.branch=dev; a value holding '=' "
                   "goes in the manifest or an overlay)"),
    ("a=b=c", "-e 'a=b=c' has more than one '=' (Racetrack 2.x takes exactly one) (write KEY=VALUE, e.g. "
              "-e git.branch=dev; a value holding '=' goes in the manifest or an overlay)"),
    ("git..branch=x", "-e 'git..branch=x': 'git..branch' is not a field path (name the field with dots "
                      "between keys, e.g. -e jobtype_extra.max_concurrency=4)"),
    ("=x", "-e '=x': '' is not a field path (name the field with dots between keys, e.g. "
           "-e jobtype_extra.max_concurrency=4)"),
])
def test_malformed_overrides_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_override(text)
    assert str(caught.value) == message
    assert caught.value.exit_code == 2
