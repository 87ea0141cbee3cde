"""Image names derived from the manifest."""

import pytest

from racetrack_builder.errors import UsageError
from racetrack_builder.images import (
    base_image_ref,
    check_image_ref,
    job_image_ref,
    names_a_registry,
    python_image,
)


def test_job_ref_defaults_to_name_and_version() -> None:
    assert job_image_ref("adder", "1.2.3") == "adder:1.2.3"


def test_build_metadata_plus_is_not_a_docker_tag_character() -> None:
    assert job_image_ref("adder", "1.0.0+build.5") == "adder:1.0.0_build.5"


def test_registry_and_explicit_tag() -> None:
    assert job_image_ref("adder", "1.0.0", registry="127.0.0.1:5000/") == "127.0.0.1:5000/adder:1.0.0"
    assert job_image_ref("adder", "1.0.0", tag="mine:dev", registry="r.example") == "r.example/mine:dev"


def test_base_image_and_root_image_settings(monkeypatch) -> None:
    assert base_image_ref("1.0") == "racetrack/python3:1.0"
    monkeypatch.delenv("RACETRACK_PYTHON_IMAGE", raising=False)
    assert python_image() == "python:3.11-slim"
    monkeypatch.setenv("RACETRACK_PYTHON_IMAGE", "my/python:3.12")
    assert python_image() == "my/python:3.12"
    assert python_image("explicit:1") == "explicit:1"


@pytest.mark.parametrize(
    "ref",
    ["adder:0.1.0", "adder", "127.0.0.1:5000/team/adder:1", "registry.example.com/a/b:1.0.0_build.5",
     "localhost/x:Tag-1", "[::1]:5000/x:1"],
)
def test_references_docker_accepts(ref: str) -> None:
    assert check_image_ref(ref, "--tag") == ref


@pytest.mark.parametrize(
    "ref,hint",
    [
        ("Adder:1", "must be lower-case"),
        ("adder:1.0.0+meta", "cannot hold '+'"),
        ("a//b:1", "lower-case letters, digits"),
        ("adder:", "lower-case letters, digits"),
        ("adder:" + "x" * 129, "lower-case letters, digits"),
    ],
)
def test_references_docker_refuses_are_usage_errors(ref: str, hint: str) -> None:
    with pytest.raises(UsageError, match="is not a valid image reference") as exc:
        check_image_ref(ref, "--tag")
    assert exc.value.exit_code == 2 and hint in (exc.value.hint or "")


@pytest.mark.parametrize(
    "ref,registry",
    [("adder:1", False), ("team/adder:1", False), ("127.0.0.1:5000/x:1", True), ("localhost/x", True),
     ("registry.example.com/a/b:1", True)],
)
def test_a_registry_host_is_read_as_docker_does(ref: str, registry: bool) -> None:
    assert names_a_registry(ref) is registry
