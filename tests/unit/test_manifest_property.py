"""Property tests: whatever the input, load_manifest/parse_manifest give a Manifest or a ManifestError.

Never another exception, every Problem well-formed (located inside the text, message naming a fix),
and no accepted value that could break out of a Dockerfile line. The example counts keep this file
to a few seconds in the normal suite; raise them with HYPOTHESIS_MANIFEST_EXAMPLES for a long run.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from racetrack_builder.errors import ManifestError
from racetrack_builder.manifest import Manifest, load_manifest, parse_manifest
from tests.manifest_fuzz import set_path

EXAMPLES = int(os.environ.get("HYPOTHESIS_MANIFEST_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SAMPLES = Path(__file__).parent / "manifests"
FULL_TEXT = (SAMPLES / "valid" / "full.yaml").read_text(encoding="utf-8")
FULL = yaml.safe_load(FULL_TEXT)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings_in(item)]
    return []


def check(text: str) -> Manifest | None:
    """parse_manifest's contract on any text; returns the Manifest when valid."""
    try:
        manifest = parse_manifest(text, "fatman.yaml")
    except ManifestError as err:
        assert err.problems, "a ManifestError always has at least one problem"
        line_count = max(1, len(text.splitlines()) + 1)
        for problem in err.problems:
            assert problem.message.endswith(")") and " (" in problem.message, problem
            assert "Input should" not in problem.message, problem
            if problem.line is not None:
                assert 1 <= problem.line <= line_count, (problem, line_count)
                assert problem.column is not None and problem.column >= 1, problem
            # The formatted line is one line: control characters in user values are escaped.
            assert "\n" not in problem.format("fatman.yaml"), problem
        return None
    assert isinstance(manifest, Manifest)
    for value in strings_in(manifest.model_dump()):
        assert not CONTROL.search(value), f"control character accepted in {value!r}"
    return manifest


# --- any text, any YAML ---------------------------------------------------------------------------


@SETTINGS
@given(text=st.text())
def test_any_text(text: str) -> None:
    check(text)


YAML_CHARS = st.text(alphabet=st.sampled_from(list(":-[]{},#&*!|>'\"%@` \n\t?<=~.0123456789abcdefnrstuy\\")),
                     max_size=80)


@SETTINGS
@given(text=YAML_CHARS)
def test_any_text_made_of_yaml_syntax(text: str) -> None:
    check(text)


SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
           | st.dates() | st.binary(max_size=8))
KEYS = st.text(max_size=10) | st.integers()


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4))


VALUES = st.recursive(SCALARS, _containers, max_leaves=20)


@SETTINGS
@given(document=VALUES, flow=st.booleans())
def test_any_yaml_document(document: Any, flow: bool) -> None:
    check(yaml.safe_dump(document, default_flow_style=flow))


# --- mutated valid manifests ----------------------------------------------------------------------

FIELD_PATHS = ([(k,) for k in FULL] + [("git", k) for k in FULL["git"]]
               + [("python", k) for k in FULL["python"]])
HOSTILE = st.sampled_from([
    "a\nRUN id", "x\r\ny", "$(id)", "`id`", "'; rm -rf / #", '"', "\\", "../../etc/passwd", "/etc/passwd",
    "curl && rm -rf /", "-o", "ext::sh -c id", "", " ", "\x00", "\u2028", "\x85", "${HOME}", "%0a", "a" * 300,
    "python3:latest\nUSER root", "1.0.0\nUSER root", "/api,/admin", "/a/../b", "\t",
])
MUTANT_VALUES = HOSTILE | SCALARS | st.lists(HOSTILE | SCALARS, max_size=3) | st.dictionaries(
    HOSTILE | st.text(max_size=8), HOSTILE | SCALARS, max_size=3)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data = yaml.safe_load(FULL_TEXT)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(FIELD_PATHS))
        action = draw(st.sampled_from(["set", "delete", "rename", "add"]))
        parent = data
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent.get(part), dict) else {}
        if action == "set":
            set_path(data, path, draw(MUTANT_VALUES))
        elif action == "delete":
            parent.pop(path[-1], None)
        elif action == "rename" and path[-1] in parent:
            name = path[-1]
            index = draw(st.integers(0, len(name) - 1))
            parent[name[:index] + name[index + 1:]] = parent.pop(name)  # drop one letter: a typo
        else:
            parent[draw(HOSTILE | st.text(max_size=8))] = draw(MUTANT_VALUES)
    return data


@SETTINGS
@given(data=mutated(), flow=st.booleans())
def test_mutated_valid_manifests(data: dict[str, Any], flow: bool) -> None:
    check(yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True))


@SETTINGS
@given(edits=st.lists(st.tuples(st.integers(0, len(FULL_TEXT)), st.integers(0, 3), YAML_CHARS), max_size=4))
def test_text_edits_of_a_valid_manifest(edits: list[tuple[int, int, str]]) -> None:
    text = FULL_TEXT
    for position, remove, insert in edits:
        position = min(position, len(text))
        text = text[:position] + insert[:5] + text[position + remove:]
    check(text)


def test_the_unmutated_manifest_is_valid() -> None:
    """The mutation tests start from a valid manifest (else they would only test error paths)."""
    assert check(FULL_TEXT) is not None
    assert check(yaml.safe_dump(FULL)) is not None


@SETTINGS
@given(content=st.binary(max_size=200))
def test_any_bytes_in_a_file(tmp_path_factory: Any, content: bytes) -> None:
    path = tmp_path_factory.mktemp("m") / "fatman.yaml"
    path.write_bytes(content)
    try:
        load_manifest(path)
    except ManifestError as err:
        assert err.problems


def test_dates_and_bytes_are_handled() -> None:
    """Types only YAML has (dates, binary) in every field are problems, never crashes."""
    for path in FIELD_PATHS:
        for value in (date(2024, 1, 31), b"\x00\x01"):
            data = yaml.safe_load(FULL_TEXT)
            set_path(data, path, value)
            check(yaml.safe_dump(data))


TAGS = st.sampled_from(["bool", "int", "float", "null", "timestamp", "binary", "str", "set", "omap", "pairs",
                        "merge", "value", "yaml", "map", "seq", "python/none", "python/object:os.system"])


@SETTINGS
@given(tag=TAGS, value=YAML_CHARS, where=st.sampled_from(["name", "build_env:\n  A", "labels: {k", "x"]))
def test_explicit_tags_on_any_text(tag: str, value: str, where: str) -> None:
    """PyYAML's constructors fail in odd ways on mistagged text (!!timestamp x, !!bool maybe)."""
    closing = "}" if where.startswith("labels") else ""
    check(f"{where}: !!{tag} {value}{closing}\n")
    check(f"{where}: !!{tag} {yaml.safe_dump(value, default_style=chr(34)).strip()}{closing}\n")
