"""Manifest fuzzing, fast slice: generated manifests never give a traceback, and none renders a
Dockerfile carrying an instruction the template did not write (see ``tests/manifest_fuzz.py``).

About 1,500 cases in the normal suite; ``benchmarks/fuzz_manifests.py`` runs 10,000+ and prints
the counts. Raise FUZZ_MANIFEST_EXAMPLES to run a longer slice here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from tests import manifest_fuzz as fuzz

EXAMPLES = int(os.environ.get("FUZZ_MANIFEST_EXAMPLES", "400"))
# Seconds of generated cases: the full suite runs them, the fast part (-m "not slow") does not.
pytestmark = pytest.mark.slow

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-source")


def test_the_starting_manifest_is_accepted_and_rendered(workdir: Path) -> None:
    """The mutations start from a manifest that renders (else they would only test refusals)."""
    for text in fuzz.iter_valid_texts():
        outcome = fuzz.check_case(text, workdir)
        assert outcome.verdict == "accepted", outcome


@SETTINGS
@given(text=fuzz.one_field_mutated())
def test_one_field_mutated(text: str, workdir: Path) -> None:
    fuzz.check_case(text, workdir)


@SETTINGS
@given(text=fuzz.hostile_everywhere())
def test_hostile_strings_in_every_field(text: str, workdir: Path) -> None:
    fuzz.check_case(text, workdir)


@SETTINGS
@given(text=fuzz.values_near_valid())
def test_accepted_values_with_metacharacters(text: str, workdir: Path) -> None:
    fuzz.check_case(text, workdir)


@SETTINGS
@given(text=fuzz.random_yaml())
def test_random_yaml(text: str, workdir: Path) -> None:
    fuzz.check_case(text, workdir)


def test_metacharacter_values_are_accepted_and_still_inert(workdir: Path) -> None:
    """Values the validator allows but a Dockerfile must escape reach the renderer: the checks above
    are exercised on them, not only on refusals."""
    data = fuzz._copy()
    data["runtime_env"]["GREETING"] = 'say "hi" for $5 \\ `id` $(id) ${X}'
    data["labels"]["team"] = '" RUN id "'
    outcome = fuzz.check_case(yaml.safe_dump(data), workdir)
    assert outcome.verdict == "accepted"
    assert outcome.dockerfile is not None and "\\$5" in outcome.dockerfile


def test_the_checker_catches_an_injected_instruction() -> None:
    """The tokenizer and value check are not blind: a raw newline or an unescaped quote is caught."""
    base = "FROM x\nENV A=\"1\" \\\n    B=\"2\"\n"
    assert [k for k, _ in fuzz.instructions(base)] == ["FROM", "ENV"]
    assert [k for k, _ in fuzz.instructions(base + "RUN id\n")] == ["FROM", "ENV", "RUN"]
    assert fuzz.key_values('A="1" B="x\\"y"') == [("A", "1"), ("B", 'x"y')]
    for broken in ('A="1" B="x"y"', 'A=1', 'A="$HOME"', 'A="1"B="2"'):
        with pytest.raises(AssertionError):
            fuzz.key_values(broken)
