"""The JSON Schema of fatman.yaml: well-formed, documented, and in agreement with the validators."""

from __future__ import annotations

import json
import keyword
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from racetrack_builder.errors import ManifestError
from racetrack_builder.manifest import RESERVED_RUNTIME_ENV, Manifest, parse_manifest
from racetrack_builder.schema import SCHEMA_DIALECT, manifest_schema, manifest_schema_json

jsonschema = pytest.importorskip("jsonschema")

SAMPLES = Path(__file__).parent / "manifests"
BASE: dict[str, Any] = {
    "name": "adder",
    "owner_email": "owner@example.com",
    "lang": "python3",
    "git": {"remote": "https://example.com/adder.git"},
    "python": {"entrypoint_path": "entrypoint.py"},
}
SCHEMA = manifest_schema()
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def with_field(path: str, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(BASE))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


def model_accepts(data: dict[str, Any]) -> bool:
    try:
        parse_manifest(yaml.safe_dump(data), "fatman.yaml")
    except ManifestError:
        return False
    return True


def schema_accepts(data: dict[str, Any]) -> bool:
    return VALIDATOR.is_valid(data)


def field_schema(path: str) -> dict[str, Any]:
    """The schema of one field, with its $ref resolved."""
    section, _, field = path.rpartition(".")
    properties = SCHEMA["properties"]
    if section:
        ref = SCHEMA["properties"][section]["allOf"][0]["$ref"].rsplit("/", 1)[-1]
        properties = SCHEMA["definitions"][ref]["properties"]
    return properties[field]


def test_schema_is_valid_draft_07_with_a_title() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == SCHEMA_DIALECT
    assert SCHEMA["title"] == "fatman.yaml"
    assert SCHEMA["required"] == ["name", "owner_email", "lang", "git", "python"]
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["definitions"]["GitConfig"]["required"] == ["remote"]
    assert SCHEMA["definitions"]["PythonConfig"]["required"] == ["entrypoint_path"]


def test_schema_json_round_trips() -> None:
    text = manifest_schema_json()
    assert text.endswith("\n")
    assert json.loads(text) == SCHEMA


def test_every_field_has_a_description_and_examples() -> None:
    paths = [name for name in Manifest.model_fields] + [
        f"git.{name}" for name in SCHEMA["definitions"]["GitConfig"]["properties"]] + [
        f"python.{name}" for name in SCHEMA["definitions"]["PythonConfig"]["properties"]]
    assert len(paths) == 20  # 13 top-level fields, 3 under git, 4 under python
    for path in paths:
        schema = field_schema(path)
        assert schema.get("description"), path
        if path not in ("git", "python"):
            assert schema.get("examples"), path


def test_every_example_in_the_schema_is_accepted_by_both() -> None:
    for path in [p for p in Manifest.model_fields if p not in ("git", "python")] + [
            "git.remote", "git.branch", "git.directory",
            "python.entrypoint_path", "python.entrypoint_class", "python.requirements_path"]:
        for example in field_schema(path)["examples"]:
            data = with_field(path, example)
            assert model_accepts(data), (path, example)
            assert schema_accepts(data), (path, example)


@pytest.mark.parametrize("path", sorted((SAMPLES / "valid").glob("*.yaml")), ids=lambda p: p.stem)
def test_valid_samples_pass_the_schema(path: Path) -> None:
    assert schema_accepts(yaml.safe_load(path.read_text(encoding="utf-8")))


def test_reserved_runtime_names_are_in_the_schema() -> None:
    names = field_schema("runtime_env")["propertyNames"]["not"]["enum"]
    assert set(names) == RESERVED_RUNTIME_ENV
    assert all(name in field_schema("runtime_env")["description"] for name in RESERVED_RUNTIME_ENV)


# Values both must reject: each rule the schema can express.
REJECTED_BY_BOTH = [
    ("name", "My Job"), ("name", "x" * 64), ("owner_email", "nobody"), ("lang", "python2"),
    ("lang", "python3:"), ("version", "1.0"), ("version", "v1.0.0"), ("version", 1.0),
    ("git.remote", ""), ("git.remote", "-x"), ("git.remote", "a b"), ("git.branch", "a..b"),
    ("git.branch", "-x"), ("git.branch", "a.lock"), ("git.branch", "a b"), ("git.directory", "../x"),
    ("git.directory", "/abs"), ("python.entrypoint_path", "main"), ("python.entrypoint_path", "../x.py"),
    ("python.entrypoint_class", "2x"), ("python.requirements_path", "a\\b"),
    ("system_dependencies", ["curl && rm -rf /"]), ("build_env", {"1X": "a"}), ("build_env", {"A": "a\nb"}),
    ("runtime_env", {"PUB_URL": "x"}), ("runtime_env", {"A": None}), ("public_endpoints", ["/a,b"]),
    ("public_endpoints", ["/a/../b"]), ("public_endpoints", ["api"]), ("public_endpoints", ["/pub/fatman/x"]),
    ("labels", {"bad key": "x"}), ("secret_build_env_file", ""), ("git", "https://x"), ("labels", ["a"]),
    ("colour", "blue"),
]


@pytest.mark.parametrize("path, value", REJECTED_BY_BOTH)
def test_schema_and_validators_reject_the_same_values(path: str, value: Any) -> None:
    data = with_field(path, value)
    assert not model_accepts(data)
    assert not schema_accepts(data)


# Fields whose validator is code rather than the schema's pattern: random strings must get the
# same verdict from both. (Strings from an alphabet rich in the characters the rules are about.)
AGREEING_FIELDS = ["git.branch", "git.directory", "python.entrypoint_path", "python.requirements_path",
                   "python.entrypoint_class", "public_endpoints", "name", "version", "lang"]
RULE_CHARS = st.text(alphabet="ab1./-_:@~^?*[\\ {}%,#\t\nlockpythn3v", max_size=16)


@pytest.mark.parametrize("path", AGREEING_FIELDS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=RULE_CHARS)
def test_schema_pattern_agrees_with_the_validator(path: str, value: str) -> None:
    if path == "python.entrypoint_class" and keyword.iskeyword(value):
        return  # keywords: the validator also rejects them, the schema cannot say so
    if value.endswith("\n"):
        # Python's re (used by jsonschema) lets "$" match before a final newline; ECMA-262, the
        # dialect of schema patterns that editors use, does not. The validators use fullmatch.
        return
    field_value: Any = [value] if path == "public_endpoints" else value
    data = with_field(path, field_value)
    assert model_accepts(data) == schema_accepts(data), (path, value)


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


PROBES = ["", "a", "adder", "My Job", "1.0.0", "1.0.0-rc.1+b.2", "python3:latest", "a..b", "-x", "a.lock",
          "feature/x", "/api/v1/perform", "/a,b", "/a/../b", "../x.py", "src/main.py", "a\\b", "req/", " ",
          "A_B", "1X", "owner@example.com", "a\tb", "\u00e9t\u00e9", "com.example/tier", "@", "a@{1}",
          "x\u0085y"]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the patterns as ECMA-262")
def test_patterns_mean_the_same_in_ecma_262() -> None:
    """Editors run schema patterns as JavaScript regexes (with the u flag): same verdicts as Python."""
    patterns = sorted(set(_patterns(SCHEMA)))
    script = ("const [patterns, probes] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "console.log(JSON.stringify(patterns.map(p => probes.map(s => new RegExp(p, 'u').test(s)))));")
    result = subprocess.run(["node", "-e", script], input=json.dumps([patterns, PROBES]), capture_output=True,
                            text=True, timeout=60, check=True)
    ecma = json.loads(result.stdout)
    for pattern, verdicts in zip(patterns, ecma, strict=True):
        python = [re.search(pattern, probe) is not None for probe in PROBES]
        assert python == verdicts, pattern
