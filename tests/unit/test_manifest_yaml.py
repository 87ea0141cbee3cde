"""Line-aware YAML loading (racetrack_builder.yaml_lines), independent of the manifest model."""

from __future__ import annotations

import textwrap

import pytest

from racetrack_builder.yaml_lines import MAX_DEPTH, Position, YamlSyntaxError, load_yaml

TEXT = textwrap.dedent("""\
    # a comment
    name: adder
    git:
      remote: https://example.com/x.git
      branch: 'main'
    list:
      - first
      - {inline: 1.10}
""")


def test_positions_of_keys_and_values() -> None:
    doc = load_yaml(TEXT)
    assert doc.root == Position(2, 1)
    name = doc.entry(("name",))
    assert name is not None and name.key == Position(2, 1) and name.value == Position(2, 7)
    branch = doc.entry(("git", "branch"))
    assert branch is not None and branch.key == Position(5, 3) and branch.value == Position(5, 11)
    item = doc.entry(("list", 1))
    assert item is not None and item.key is None and item.value == Position(8, 5)
    inline = doc.entry(("list", 1, "inline"))
    assert inline is not None and inline.value == Position(8, 14)


def test_source_text_of_scalars_is_kept() -> None:
    doc = load_yaml(TEXT)
    inline = doc.entry(("list", 1, "inline"))
    assert inline is not None and inline.raw == "1.10" and inline.tag.endswith(":float")
    assert doc.data["list"][1]["inline"] == 1.1
    branch = doc.entry(("git", "branch"))
    assert branch is not None and branch.raw == "main"
    git = doc.entry(("git",))
    assert git is not None and git.raw is None


def test_locate_falls_back_to_the_nearest_ancestor() -> None:
    doc = load_yaml(TEXT)
    assert doc.locate(("git", "directory")) == Position(4, 3)  # value of git: starts at its first key
    assert doc.locate(("nothing", "here")) == doc.root
    assert doc.locate(("git", "branch"), key=True) == Position(5, 3)
    assert doc.start_of(("git",)) == Position(4, 3)
    assert doc.start_of(()) == Position(2, 1)


def test_keys_are_the_text_written() -> None:
    doc = load_yaml("1: a\ntrue: b\nnull: c\n'quoted': d\n")
    assert doc.data == {"1": "a", "true": "b", "null": "c", "quoted": "d"}


def test_duplicate_keys_are_reported_and_the_last_wins() -> None:
    doc = load_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert doc.data == {"a": 3, "b": {"c": 2}}
    assert [(p.path, p.position) for p in doc.problems] == [(("b", "c"), Position(4, 3)),
                                                           (("a",), Position(5, 1))]
    assert doc.problems[1].message == "is given twice (first on line 1; keep one)"


def test_merge_keys() -> None:
    doc = load_yaml("base: &b {x: 1, y: 2}\nother: {z: 0}\nm:\n  <<: [*b, {other: 9}]\n  y: 3\n")
    assert doc.data["m"] == {"y": 3, "x": 1, "other": 9}
    # A merged entry keeps the position where it was written.
    assert doc.entry(("m", "x")) == doc.entry(("base", "x"))
    assert not doc.problems


def test_merge_of_a_scalar_is_a_problem() -> None:
    doc = load_yaml("m:\n  <<: 1\n  a: 2\n")
    assert doc.data == {"m": {"a": 2}}
    assert "merge key" in doc.problems[0].message


def test_aliases_share_data_instead_of_copying_it() -> None:
    doc = load_yaml("a: &x [1, 2]\nb: *x\n")
    assert doc.data["a"] is doc.data["b"]


@pytest.mark.parametrize("text", ["a: &x [*x]\n", "a: &x {b: *x}\n", "a: &x {<<: *x}\n"])
def test_recursive_aliases_are_problems(text: str) -> None:
    doc = load_yaml(text)
    assert any("refers to itself" in p.message for p in doc.problems)


def test_nesting_is_limited() -> None:
    deep = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    doc = load_yaml(deep)
    assert any("nested more than" in p.message for p in doc.problems)


@pytest.mark.parametrize("text, fragment", [
    ("a: !!python/name:os.system x\n", "'!!python/name:os.system'"),
    ("a: !local x\n", "'!local'"),
    ("a: !!set {x, y}\n", "'!!set'"),
    ("a: !!omap [x: 1]\n", "'!!omap'"),
])
def test_unsupported_tags_are_problems(text: str, fragment: str) -> None:
    doc = load_yaml(text)
    assert any(fragment in p.message for p in doc.problems), doc.problems


@pytest.mark.parametrize("text, expected", [("a: 2020-13-45\n", "2020-13-45"),
                                            ("a: 1" + "0" * 5000 + "\n", None)])
def test_scalars_that_only_look_typed_stay_text(text: str, expected: str | None) -> None:
    doc = load_yaml(text)
    assert isinstance(doc.data["a"], str)
    if expected:
        assert doc.data["a"] == expected


@pytest.mark.parametrize("text", ["", "# nothing\n", "---\n"])
def test_empty_documents_have_no_data(text: str) -> None:
    assert load_yaml(text).data is None


@pytest.mark.parametrize("text, position", [
    ("a: [\n", Position(2, 1)),
    ("a: 1\n---\nb: 2\n", Position(2, 1)),
    ("é: ok\nb: \x7f\n", Position(2, 4)),  # a reader error after a multi-byte character
    ("a: \ud800\n", Position(1, 4)),  # a lone surrogate cannot be encoded
])
def test_syntax_errors_carry_a_position(text: str, position: Position) -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml(text)
    assert caught.value.position == position
    assert "in \"<unicode string>\"" not in caught.value.message
