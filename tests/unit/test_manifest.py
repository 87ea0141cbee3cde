"""The fatman.yaml model: every rule with good and bad values, golden messages, file handling."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from racetrack_builder.errors import ManifestError, Problem, UsageError
from racetrack_builder.manifest import (
    MAX_PROBLEMS,
    RESERVED_RUNTIME_ENV,
    SUPPORTED_LANGS,
    Manifest,
    load_manifest,
    parse_manifest,
)

SAMPLES = Path(__file__).parent / "manifests"
VALID = sorted((SAMPLES / "valid").glob("*.yaml"))
INVALID = sorted((SAMPLES / "invalid").glob("*.yaml"))

BASE: dict[str, Any] = {
    "name": "adder",
    "owner_email": "owner@example.com",
    "lang": "python3",
    "git": {"remote": "https://example.com/adder.git"},
    "python": {"entrypoint_path": "entrypoint.py"},
}


def problems_of(text: str) -> list[Problem]:
    """The problems parse_manifest reports for ``text`` (failing the test if it is valid)."""
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, "fatman.yaml")
    return caught.value.problems


def lines_of(text: str) -> list[str]:
    return [p.format("fatman.yaml") for p in problems_of(text)]


def with_field(path: str, value: Any) -> str:
    """BASE with ``path`` (dotted) set to ``value``, as YAML text."""
    data = yaml.safe_load(yaml.safe_dump(BASE))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    # Non-ASCII is written as escapes: a raw NEL (U+0085) inside quotes would be folded by YAML.
    return yaml.safe_dump(data, sort_keys=False)


def accepts(path: str, value: Any) -> Manifest:
    return parse_manifest(with_field(path, value), "fatman.yaml")


def rejects(path: str, value: Any) -> Problem:
    """The one problem reported for ``path`` when set to ``value``; it must name the field."""
    problems = problems_of(with_field(path, value))
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.field.startswith(path.split(".")[0]), problem
    assert problem.line is not None and problem.column is not None
    # House style: what is wrong, then in parentheses how to fix it; never pydantic's wording.
    assert problem.message.endswith(")") and " (" in problem.message, problem.message
    assert "Input should" not in problem.message and "pydantic" not in problem.message
    return problem


# --- the sample manifests ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_samples_load(path: Path) -> None:
    manifest = load_manifest(path)
    assert isinstance(manifest, Manifest)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_samples_give_the_golden_messages(path: Path) -> None:
    """The exact lines users read: compared whole, like a golden file."""
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    assert lines_of(path.read_text(encoding="utf-8")) == expected


def test_every_invalid_sample_has_a_golden_file() -> None:
    assert INVALID, "no invalid samples found"
    for path in INVALID:
        assert path.with_suffix(".expected").is_file(), path


def test_spec_example_gives_the_documented_values() -> None:
    manifest = load_manifest(SAMPLES / "valid" / "spec_example.yaml")
    assert manifest.name == "supersmart"
    assert manifest.lang == "python3:latest"
    assert manifest.base_image_tag == "latest"
    assert manifest.git.remote == "https://github.com/racetrack/supersmart-model"
    assert manifest.python.requirements_path == "supersmart/requirements.txt"
    assert manifest.python.entrypoint_path == "fatman_entrypoint.py"
    assert manifest.python.entrypoint_class is None


def test_defaults() -> None:
    manifest = load_manifest(SAMPLES / "valid" / "minimal.yaml")
    assert manifest.version == "0.0.1"
    assert manifest.git.branch == "master"
    assert manifest.git.directory == "."
    assert manifest.base_image_tag == "latest"
    assert manifest.system_dependencies == []
    assert manifest.build_env == {} and manifest.runtime_env == {} and manifest.labels == {}
    assert manifest.public_endpoints == []
    assert manifest.secret_build_env_file is None and manifest.secret_runtime_env_file is None


def test_full_sample_keeps_what_the_user_wrote() -> None:
    manifest = load_manifest(SAMPLES / "valid" / "full.yaml")
    assert manifest.version == "1.2.3-rc.1+build.5"
    assert manifest.base_image_tag == "3.11-slim"
    # YAML numbers and booleans become the text as written, not Python's rendering of it.
    assert manifest.runtime_env["WORKERS"] == "4"
    assert manifest.runtime_env["RATIO"] == "1.10"
    assert manifest.runtime_env["VERBOSE"] == "yes"
    assert manifest.runtime_env["DJANGO_DEBUG"] == "true"
    assert manifest.runtime_env["EMPTY"] == ""
    assert manifest.runtime_env["GREETING"] == "say \"hi\" for $5 or 'less'"
    assert manifest.labels == {"team": "data-science", "com.example/tier": "1"}
    assert manifest.system_dependencies == ["libgomp1", "curl=7.88.1-10+deb12u5", "libc6:amd64", "g++"]
    assert manifest.public_endpoints == ["/api/v1/perform", "/api/v1/webview", "/docs/~user/%20space"]
    assert manifest.secret_runtime_env_file == "../secrets/runtime.env"


def test_merge_keys_work_and_explicit_keys_win() -> None:
    manifest = load_manifest(SAMPLES / "valid" / "merge_keys.yaml")
    assert manifest.build_env == {"LOG_LEVEL": "info", "REGION": "eu"}
    assert manifest.runtime_env == {"LOG_LEVEL": "info", "REGION": "us"}


def test_sections_with_every_entry_commented_out_are_empty() -> None:
    manifest = load_manifest(SAMPLES / "valid" / "empty_sections.yaml")
    assert manifest.system_dependencies == [] and manifest.public_endpoints == []
    assert manifest.build_env == {} and manifest.runtime_env == {} and manifest.labels == {}


def test_model_is_frozen() -> None:
    manifest = load_manifest(SAMPLES / "valid" / "minimal.yaml")
    with pytest.raises(ValueError):
        manifest.name = "other"  # type: ignore[misc]


# --- field rules: good and bad values ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["adder", "a", "my-job-2", "9lives", "x" * 63])
def test_name_accepts_dns_labels(value: str) -> None:
    assert accepts("name", value).name == value


@pytest.mark.parametrize("value, fragment", [
    ("My Job", "e.g. 'my-job'"),
    ("my_job", "e.g. 'my-job'"),
    ("-job", "lowercase letters, digits and dashes"),
    ("job-", "lowercase letters, digits and dashes"),
    ("x" * 64, "at most 63"),
    ("", "is empty"),
    ("job.v2", "e.g. 'job-v2'"),
    ("jöb", "lowercase letters"),
])
def test_name_rejects_what_is_not_a_dns_label(value: str, fragment: str) -> None:
    problem = rejects("name", value)
    assert problem.field == "name"
    assert fragment in problem.message


def test_name_message_is_the_documented_one() -> None:
    problem = rejects("name", "My Job")
    assert problem.message == ("'My Job' is not a valid job name (use lowercase letters, digits and dashes, "
                               "e.g. 'my-job')")


@pytest.mark.parametrize("value", ["a@example.com", "first.last+tag@sub.example.co.uk", "o'neil@example.org"])
def test_owner_email_accepts_addresses(value: str) -> None:
    assert accepts("owner_email", value).owner_email == value


@pytest.mark.parametrize("value", ["nobody", "a@b", "@example.com", "a@@example.com", "a b@example.com",
                                   "a..b@example.com", ".a@example.com", "a@-example.com", "a@example.c0m"])
def test_owner_email_rejects_malformed(value: str) -> None:
    assert "is not an email address" in rejects("owner_email", value).message


@pytest.mark.parametrize("value, tag", [("python3", "latest"), ("python3:latest", "latest"),
                                        ("python3:3.11-slim", "3.11-slim"), ("python3:v2_1", "v2_1")])
def test_lang_accepts_python3_with_optional_tag(value: str, tag: str) -> None:
    assert accepts("lang", value).base_image_tag == tag
    assert value.partition(":")[0] in SUPPORTED_LANGS


@pytest.mark.parametrize("value", ["python2", "golang", "python3:", "python3:-bad", "python3:a b",
                                   "python", "Python3", "python3:latest\nRUN id"])
def test_lang_rejects_other_job_types_naming_the_supported_ones(value: str) -> None:
    message = rejects("lang", value).message
    assert "python3" in message


def test_lang_suggests_near_misses() -> None:
    assert "did you mean 'python3'?" in rejects("lang", "pyhton3").message


@pytest.mark.parametrize("value", ["0.0.1", "1.0.0", "10.20.30", "1.0.0-alpha", "1.0.0-rc.1+build.5",
                                   "1.0.0+20240101"])
def test_version_accepts_semantic_versions(value: str) -> None:
    assert accepts("version", value).version == value


@pytest.mark.parametrize("value, fragment", [
    ("1.0", "e.g. '1.0.0'"),
    ("1", "e.g. '1.0.0'"),
    ("01.0.0", "MAJOR.MINOR.PATCH"),
    ("1.0.0-", "MAJOR.MINOR.PATCH"),
    ("v1.2.3", "drop the leading 'v'"),
    ("latest", "MAJOR.MINOR.PATCH"),
    ("1.0.0\nUSER root", "line break"),
])
def test_version_rejects_non_semver(value: str, fragment: str) -> None:
    assert fragment in rejects("version", value).message


@pytest.mark.parametrize("text, suggestion", [("1.0", "'1.0.0'"), ("2.5", "'2.5.0'"), ("3", "'3.0.0'"),
                                              ("1.10", "'1.10.0'"), ("1." + "0" * 5000, "'1.0.0'")])
def test_version_as_yaml_number_says_to_quote_it(text: str, suggestion: str) -> None:
    source = yaml.safe_dump(BASE) + f"version: {text}\n"
    (problem,) = problems_of(source)
    assert problem.field == "version"
    shown = text if len(text) <= 40 else text[:37] + "..."
    assert problem.message.startswith(f"{shown} is not a semantic version: YAML reads it as a number")
    assert f"in quotes, e.g. {suggestion}" in problem.message


@pytest.mark.parametrize("value", ["https://github.com/racetrack/x", "http://127.0.0.1:8080/x.git",
                                   "ssh://git@host:2222/x.git", "git@github.com:racetrack/x.git",
                                   "git://127.0.0.1/x.git", "file:///srv/git/x.git", "/srv/git/x",
                                   "../sibling-repo", "HTTPS://example.com/x"])
def test_git_remote_accepts_git_urls_and_paths(value: str) -> None:
    assert accepts("git.remote", value).git.remote == value


@pytest.mark.parametrize("value, fragment", [
    ("", "is empty"),
    ("ftp://example.com/x", "unsupported scheme ftp://"),
    ("ext::sh -c id", "whitespace"),
    ("ext::sh%20-c%20id", "remote helper"),
    ("fd::17", "remote helper"),
    ("-uhttps://evil", "read as an option"),
    ("https://", "no host"),
    ("https:///path", "no host"),
    ("file://", "no path"),
    ("https://example.com/x\nRUN id", "line break"),
    ("https://example.com/my repo", "whitespace"),
])
def test_git_remote_rejects_other_schemes_and_tricks(value: str, fragment: str) -> None:
    problem = rejects("git.remote", value)
    assert problem.field == "git.remote"
    assert fragment in problem.message


@pytest.mark.parametrize("value", ["master", "main", "feature/new-model", "release-1.2", "v1.0", "a@b",
                                   "fix_#12"])
def test_git_branch_accepts_ref_names(value: str) -> None:
    assert accepts("git.branch", value).git.branch == value


@pytest.mark.parametrize("value", ["", "my branch", "-x", "a..b", "a~1", "a^", "a:b", "a?", "a*", "a[1",
                                   "a\\b", "/a", "a/", "a//b", "a.", ".a", "a/.b", "a.lock", "a.lock/b",
                                   "@", "a@{1}", "a\tb", "a\x7fb"])
def test_git_branch_rejects_what_git_rejects(value: str) -> None:
    problem = rejects("git.branch", value)
    assert problem.field == "git.branch"


@pytest.mark.parametrize("path, value", [
    ("git.directory", "."), ("git.directory", "services/adder"), ("git.directory", "./x"),
    ("python.entrypoint_path", "fatman_entrypoint.py"), ("python.entrypoint_path", "src/pkg/main.py"),
    ("python.entrypoint_path", "./main.py"), ("python.entrypoint_path", "..hidden/x.py"),
    ("python.requirements_path", "requirements.txt"), ("python.requirements_path", "req/prod.in"),
])
def test_paths_accept_relative_paths_inside_the_repository(path: str, value: str) -> None:
    manifest = accepts(path, value)
    section, field = path.split(".")
    assert getattr(getattr(manifest, section), field) == value


@pytest.mark.parametrize("path", ["git.directory", "python.entrypoint_path", "python.requirements_path"])
@pytest.mark.parametrize("value, fragment", [
    ("../x.py", "leaves the repository"),
    ("a/../../x.py", "leaves the repository"),
    ("a/..", "leaves the repository"),
    ("/etc/x.py", "absolute path"),
    ("a\\x.py", "backslash"),
    ("a\x00.py", "NUL"),
    ("a\nRUN id.py", "line break"),
    ("", "is empty"),
])
def test_paths_reject_escapes_and_control_characters(path: str, value: str, fragment: str) -> None:
    problem = rejects(path, value)
    assert problem.field == path
    assert fragment in problem.message


@pytest.mark.parametrize("value", ["main", "main.txt", "dir/", ".py"])
def test_entrypoint_path_must_be_a_python_file(value: str) -> None:
    assert ".py file" in rejects("python.entrypoint_path", value).message


@pytest.mark.parametrize("value", ["FatmanEntrypoint", "_Private", "Model2"])
def test_entrypoint_class_accepts_identifiers(value: str) -> None:
    assert accepts("python.entrypoint_class", value).python.entrypoint_class == value


@pytest.mark.parametrize("value", ["", "2Model", "My Model", "Evil; import os", "class", "None", "a.b",
                                   "Modèle"])
def test_entrypoint_class_rejects_non_identifiers(value: str) -> None:
    assert "is not a Python class name" in rejects("python.entrypoint_class", value).message


@pytest.mark.parametrize("value", ["libgomp1", "g++", "libc6:amd64", "curl=7.88.1-10+deb12u5",
                                   "python3.11", "pkg=1:2.0~rc1"])
def test_system_dependencies_accept_debian_package_names(value: str) -> None:
    assert accepts("system_dependencies", [value]).system_dependencies == [value]


@pytest.mark.parametrize("value, fragment", [
    ("curl && rm -rf /", "one package per list item"),
    ("curl; id", "one package per list item"),
    ("curl libgomp1", "one package per list item"),
    ("-o", "Debian package name"),
    ("Curl", "Debian package name"),
    ("$(id)", "Debian package name"),
    ("a", "Debian package name"),
    ("curl\nRUN id", "line break"),
])
def test_system_dependencies_reject_anything_but_a_package(value: str, fragment: str) -> None:
    problem = rejects("system_dependencies", ["libgomp1", value])
    assert problem.field == "system_dependencies[1]"
    assert fragment in problem.message


@pytest.mark.parametrize("section", ["build_env", "runtime_env"])
@pytest.mark.parametrize("name", ["A", "_X", "my_var2", "FATMAN_WORKERS", "lower"])
def test_env_accepts_variable_names(section: str, name: str) -> None:
    manifest = accepts(section, {name: "value"})
    assert getattr(manifest, section) == {name: "value"}


@pytest.mark.parametrize("section", ["build_env", "runtime_env"])
@pytest.mark.parametrize("name", ["1X", "MY-VAR", "A B", "A=B", "A$", "", "Ä"])
def test_env_rejects_invalid_names_at_the_key(section: str, name: str) -> None:
    text = yaml.safe_dump(BASE) + f"{section}:\n  {json.dumps(name)}: value\n"
    (problem,) = problems_of(text)
    assert "is not a valid environment variable name" in problem.message
    # Located at the key itself, not at the value.
    assert (problem.line, problem.column) == (len(text.splitlines()), 3)


@pytest.mark.parametrize("name", sorted(RESERVED_RUNTIME_ENV))
def test_runtime_env_rejects_reserved_names(name: str) -> None:
    problem = rejects("runtime_env", {name: "x"})
    assert problem.field == f"runtime_env.{name}"
    assert "is set by the image" in problem.message and "PUB_URL" in problem.message


def test_build_env_may_use_names_reserved_at_run_time() -> None:
    assert accepts("build_env", {"PUB_URL": "x"}).build_env == {"PUB_URL": "x"}


@pytest.mark.parametrize("section", ["build_env", "runtime_env", "labels"])
@pytest.mark.parametrize("written, expected", [
    ("8080", "8080"), ("1.10", "1.10"), ("1e3", "1e3"), ("0x1F", "0x1F"), ("true", "true"),
    ("yes", "yes"), ("False", "False"), ("2024-01-31", "2024-01-31"), ("2020-13-45", "2020-13-45"),
    ("'007'", "007"), ('"say \\"hi\\""', 'say "hi"'), ("$HOME", "$HOME"), ("''", ""),
])
def test_env_and_label_values_are_the_text_written(section: str, written: str, expected: str) -> None:
    text = yaml.safe_dump(BASE) + f"{section}:\n  KEY: {written}\n"
    assert getattr(parse_manifest(text), section) == {"KEY": expected}


def test_values_from_code_are_coerced_too() -> None:
    data = dict(BASE, build_env={"A": 1, "B": 1.5, "C": True}, labels={"x": False})
    manifest = Manifest.model_validate(data)
    assert manifest.build_env == {"A": "1", "B": "1.5", "C": "true"}
    assert manifest.labels == {"x": "false"}


@pytest.mark.parametrize("section", ["build_env", "runtime_env", "labels"])
@pytest.mark.parametrize("value, fragment", [
    ("a\nRUN id", "line break"), ("a\rb", "carriage return"), ("a\x00b", "NUL"), ("a\tb", "tab"),
    ("a\x1bb", "U+001B"), ("a\x7fb", "U+007F"), ("a\x85b", "U+0085"),
])
def test_env_and_label_values_reject_control_characters(section: str, value: str, fragment: str) -> None:
    problem = rejects(section, {"KEY": value})
    assert problem.field == f"{section}.KEY"
    assert fragment in problem.message


def test_env_value_missing_says_how_to_write_an_empty_one() -> None:
    (problem,) = problems_of(yaml.safe_dump(BASE) + "build_env:\n  EMPTY:\n")
    assert problem.message == "has no value (write EMPTY: '' for an empty value)"


@pytest.mark.parametrize("value", ["/api/v1/perform", "/", "/api/v1/webview/", "/a-b_c.d~e", "/%20x",
                                   "/user@host:8080", "/a+b=c"])
def test_public_endpoints_accept_url_paths(value: str) -> None:
    assert accepts("public_endpoints", [value]).public_endpoints == [value]


@pytest.mark.parametrize("value, fragment", [
    ("api/v1/perform", "does not start with '/'"),
    ("/a,b", "commas"),
    ("/a/../b", "'..' segment"),
    ("/a/./b", "'.' or '..' segment"),
    ("/..", "segment"),
    ("/a?x=1", "query or fragment"),
    ("/a#x", "query or fragment"),
    ("/a b", "use letters"),
    ("/a\nb", "line break"),
    ("/%zz", "use letters"),
    ("/$(id)", "use letters"),
    ("/a'b", "use letters"),
    ("/pub/fatman/adder/1.0.0/api/v1/perform", "'/pub/fatman/...' prefix"),
])
def test_public_endpoints_reject_unsafe_paths(value: str, fragment: str) -> None:
    problem = rejects("public_endpoints", [value])
    assert problem.field == "public_endpoints[0]"
    assert fragment in problem.message


@pytest.mark.parametrize("key", ["team", "Team", "com.example/tier", "a_b-c", "x"])
def test_labels_accept_reasonable_keys(key: str) -> None:
    assert accepts("labels", {key: "v"}).labels == {key: "v"}


@pytest.mark.parametrize("key", ["bad key", "-a", "a.", "", "a\nb", "a=b", "a" * 129])
def test_labels_reject_other_keys(key: str) -> None:
    assert "is not a valid label key" in rejects("labels", {key: "v"}).message


@pytest.mark.parametrize("field", ["secret_build_env_file", "secret_runtime_env_file"])
@pytest.mark.parametrize("value", [".env.build", "/home/me/.secrets/job.env", "../shared/.env",
                                   "my secrets.env"])
def test_secret_files_accept_client_paths(field: str, value: str) -> None:
    assert getattr(accepts(field, value), field) == value


@pytest.mark.parametrize("field", ["secret_build_env_file", "secret_runtime_env_file"])
@pytest.mark.parametrize("value, fragment", [("", "is empty"), ("  ", "is empty"), ("a\x00b", "NUL"),
                                             ("a\nb", "line break")])
def test_secret_files_reject_empty_and_control(field: str, value: str, fragment: str) -> None:
    assert fragment in rejects(field, value).message


# --- wrong shapes and types -------------------------------------------------------------------------


@pytest.mark.parametrize("path, value, fragment", [
    ("git", "https://example.com/x.git", "must be a mapping, not the text"),
    ("git", ["remote"], "must be a mapping, not a list"),
    ("python", None, "is empty"),
    ("build_env", ["A=1"], "must be a mapping, not a list"),
    ("labels", "team", "must be a mapping, not the text 'team'"),
    ("system_dependencies", "libgomp1", "must be a list, not the text 'libgomp1'"),
    ("public_endpoints", {"a": 1}, "must be a list, not a mapping"),
    ("name", ["a"], "must be text, not a list"),
    ("owner_email", None, "is empty"),
    ("git.branch", None, "is empty"),
    ("runtime_env", {"A": ["x"]}, "must be text, not a list"),
])
def test_wrong_shapes_are_named(path: str, value: Any, fragment: str) -> None:
    assert fragment in rejects(path, value).message


@pytest.mark.parametrize("path, written", [("name", "42"), ("git.branch", "1.0"),
                                           ("python.entrypoint_class", "yes"), ("owner_email", "2024-01-01")])
def test_yaml_typed_scalars_in_text_fields_say_to_quote(path: str, written: str) -> None:
    text = with_field(path, "PLACEHOLDER").replace("PLACEHOLDER", written)
    (problem,) = problems_of(text)
    assert problem.field == path
    assert f"quote it: '{written}'" in problem.message


# --- unknown and missing fields ---------------------------------------------------------------------


@pytest.mark.parametrize("where, key, fragment", [
    ("", "nmae", "did you mean 'name'?"),
    ("", "owner", "did you mean 'owner_email'?"),
    ("", "system_dependency", "did you mean 'system_dependencies'?"),
    ("", "runtime_envs", "did you mean 'runtime_env'?"),
    ("", "public_endpoint", "did you mean 'public_endpoints'?"),
    ("git", "brnch", "did you mean 'branch'?"),
    ("python", "entrypoint", "did you mean 'entrypoint_path'?"),
    ("python", "requirements", "did you mean 'requirements_path'?"),
    ("", "branch", "it belongs under 'git:'"),
    ("", "entrypoint_path", "it belongs under 'python:'"),
    ("git", "name", "it belongs at the top level"),
    ("", "requirements", "did you mean python.requirements_path?"),
    ("", "colour", "remove it, or name it 'x-colour' to keep it as your own; fields allowed at the top"),
    ("git", "colour", "remove it; fields allowed under 'git:': remote, branch, directory"),
])
def test_unknown_keys_are_rejected_with_a_suggestion(where: str, key: str, fragment: str) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    (data[where] if where else data)[key] = "x"
    text = yaml.safe_dump(data, sort_keys=False)
    (problem,) = problems_of(text)
    assert problem.field == (f"{where}.{key}" if where else key)
    assert fragment in problem.message
    # Pointed at the key itself.
    line = text.splitlines()[problem.line - 1]
    assert line[problem.column - 1:].startswith(key)


def test_extension_fields_are_the_users_own_and_ignored() -> None:
    """As in docker-compose: x- keys hold anchors and other tools' settings."""
    text = yaml.safe_dump(BASE, sort_keys=False) + (
        "x-defaults: &env\n  LOG_LEVEL: debug\n"
        "runtime_env:\n  <<: *env\n  MODE: fast\n"
        "x-ci: {stage: build}\n"
    )
    manifest = parse_manifest(text)
    assert manifest.runtime_env == {"LOG_LEVEL": "debug", "MODE": "fast"}


def test_extension_fields_are_only_top_level() -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["git"]["x-note"] = "y"
    (problem,) = problems_of(yaml.safe_dump(data))
    assert problem.field == "git.x-note" and "is not a known field" in problem.message


@pytest.mark.parametrize("missing", ["name", "owner_email", "lang", "git", "python"])
def test_missing_required_top_level_fields(missing: str) -> None:
    data = {k: v for k, v in BASE.items() if k != missing}
    (problem,) = problems_of(yaml.safe_dump(data))
    assert problem.field == missing
    assert problem.message.startswith("is missing (add ")


def test_missing_nested_field_points_at_its_section() -> None:
    text = textwrap.dedent("""\
        name: adder
        owner_email: owner@example.com
        lang: python3
        git:
          branch: main
        python:
          entrypoint_path: main.py
    """)
    (problem,) = problems_of(text)
    assert problem.format("fatman.yaml") == (
        "fatman.yaml:5:3: git.remote: is missing (add remote: https://github.com/racetrack/supersmart-model "
        "under 'git:')")


def test_every_problem_comes_at_once_in_file_order() -> None:
    text = textwrap.dedent("""\
        name: Bad Name
        owner_email: nope
        lang: cobol
        git:
          remote: ftp://x
          branch: a..b
        python:
          entrypoint_path: ../x.py
        extra: 1
    """)
    problems = problems_of(text)
    assert [p.field for p in problems] == ["name", "owner_email", "lang", "git.remote", "git.branch",
                                           "python.entrypoint_path", "extra"]
    assert [p.line for p in problems] == [1, 2, 3, 5, 6, 8, 9]


def test_too_many_problems_are_capped_with_a_count() -> None:
    items = "".join(f"  - 'bad {i}'\n" for i in range(MAX_PROBLEMS + 50))
    problems = problems_of(yaml.safe_dump(BASE) + "system_dependencies:\n" + items)
    assert len(problems) == MAX_PROBLEMS
    assert problems[-1].message == "... and 51 more problems (fix the ones above first)"


# --- the document as a whole ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n", "# only a comment\n", "---\n", "---\n...\n", "~\n",
                                  "null\n"])
def test_empty_documents_say_so(text: str) -> None:
    (problem,) = problems_of(text)
    assert problem.field == "" and problem.line == 1
    assert problem.message.startswith("the manifest is empty (add the required fields name, owner_email")


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "a list"), ("just text\n", "the text 'just text'"),
                                        ("42\n", "the number 42"), ("true\n", "the boolean true")])
def test_non_mapping_documents_say_so(text: str, kind: str) -> None:
    (problem,) = problems_of(text)
    assert problem.message.startswith(f"the manifest must be a mapping of fields, not {kind}")
    assert problem.line == 1


def test_duplicate_keys_are_an_error_naming_both_lines() -> None:
    text = yaml.safe_dump(BASE, sort_keys=False) + "name: other\n"
    (problem,) = problems_of(text)
    assert problem.field == "name"
    assert problem.line == len(text.splitlines())
    assert problem.message == "is given twice (first on line 1; keep one)"


@pytest.mark.parametrize("text, line, column, fragment", [
    ("name: a\n  bad: indent\n", 2, 6, "mapping values are not allowed"),
    ("name: a\ngit:\n\tremote: x\n", 3, 1, "indent with spaces, not tabs"),
    ("name: 'unclosed\nlang: python3\n", 1, 7, "close the quote"),
    ("name: [a, b\n", 2, 1, "did not find expected ',' or ']'"),
    ("name: *nowhere\n", 1, 7, "define the anchor"),
    ("a: 1\n---\nb: 2\n", 2, 1, "more than one YAML document"),
    ("name: @x\n", 1, 7, "found '@', which cannot start a value"),
    ("name: a\nlang: b\x07c\n", 2, 8, "unacceptable character #x0007"),
])
def test_yaml_syntax_errors_give_line_and_column(text: str, line: int, column: int, fragment: str) -> None:
    (problem,) = problems_of(text)
    assert (problem.line, problem.column) == (line, column)
    assert fragment in problem.message


@pytest.mark.parametrize("text, fragment", [
    ("name: !!python/object/apply:os.system ['id']\n", "unsupported YAML tag"),
    ("name: !!binary 'not base64!'\n", "cannot be read"),
    ("name: !custom x\n", "unsupported YAML tag '!custom'"),
    ("? [a, b]\n: c\n", "keys must be plain text"),
    ("a: &x [*x]\n", "refers to itself"),
    ("a: &x {b: *x}\n", "refers to itself"),
])
def test_dangerous_or_odd_yaml_is_a_problem_not_a_crash(text: str, fragment: str) -> None:
    problems = problems_of(yaml.safe_dump(BASE) + text)
    assert any(fragment in p.message for p in problems), problems


def test_billion_laughs_is_cheap() -> None:
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(levels) + "\nsystem_dependencies: *i\nlabels: {x: *i}\n"
    start = time.perf_counter()
    problems = problems_of(text)
    assert time.perf_counter() - start < 2
    assert any(p.field == "system_dependencies[0]" for p in problems)


# --- reading the file -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "fatman.yaml")
    (problem,) = caught.value.problems
    assert problem.message.startswith("no such file (create fatman.yaml")
    assert caught.value.filename == str(tmp_path / "fatman.yaml")
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "ci.yaml")  # a name that tells neither format: both are named
    assert caught.value.problems[0].message.startswith("no such file (create job.yaml or fatman.yaml at")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert "is a directory" in caught.value.problems[0].message


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "fatman.yaml"
    path.write_bytes(b"name: adder\nowner_email: caf\xe9@example.com\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (2, 17)
    assert "is not valid UTF-8" in problem.message and "0xe9" in problem.message


def test_utf8_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "fatman.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(BASE).replace("\n", "\r\n").encode())
    assert load_manifest(path).name == "adder"


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "fatman.yaml"
    path.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert "larger than a manifest can be" in caught.value.problems[0].message


def test_endless_device_is_not_read_forever() -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest("/dev/zero")
    assert "larger than a manifest can be" in caught.value.problems[0].message


def test_load_manifest_accepts_str_paths() -> None:
    assert load_manifest(str(SAMPLES / "valid" / "minimal.yaml")).name == "adder"


def test_error_text_lists_every_problem() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest("name: X\n", "jobs/x/fatman.yaml")
    text = str(caught.value)
    assert text.startswith("jobs/x/fatman.yaml: 5 problems\n")
    assert "jobs/x/fatman.yaml:1:7: name: 'X' is not a valid job name" in text
