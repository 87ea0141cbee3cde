"""A job chooses its Python: the manifest field, the base image and root image of each version, and
the check that a root image runs the Python it is used for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from racetrack_builder.base_image import BaseImageOptions, check_root_python
from racetrack_builder.contract import DEFAULT_PYTHON_VERSION, PYTHON_VERSIONS
from racetrack_builder.engine import BuiltImage, Container
from racetrack_builder.errors import EnvironmentFailure, ManifestError, UsageError
from racetrack_builder.images import base_image_ref, python_image
from racetrack_builder.manifest import parse_manifest
from racetrack_builder.schema import manifest_schema

MANIFEST = """\
name: adder
owner_email: you@example.com
lang: python3
git:
  remote: https://github.com/you/adder
python:
  entrypoint_path: adder.py
"""


def problems(version_line: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(MANIFEST + f"  python_version: {version_line}\n")
    return [p.format("fatman.yaml") for p in info.value.problems]


def test_the_default_is_3_11_and_every_supported_version_is_accepted_quoted() -> None:
    assert parse_manifest(MANIFEST).python.python_version == DEFAULT_PYTHON_VERSION == "3.11"
    for version in PYTHON_VERSIONS:
        assert parse_manifest(MANIFEST + f"  python_version: '{version}'\n").python.python_version == version


def test_a_yaml_number_is_refused_with_the_number_yaml_read_and_the_quoted_fix() -> None:
    assert problems("3.10") == [
        "fatman.yaml:8:19: python.python_version: YAML reads 3.10 as the number 3.1, not text "
        "(quote it: '3.10')"
    ]
    assert problems("3.9") == [
        "fatman.yaml:8:19: python.python_version: YAML reads 3.9 as a number, not text (quote it: '3.9')"
    ]


def test_a_number_given_with_e_is_told_the_quoting_that_survives_the_shell() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(MANIFEST, overrides=["python.python_version=3.13"])
    (problem,) = [p.format("fatman.yaml") for p in info.value.problems]
    assert problem == ("-e python.python_version=3.13: python.python_version: YAML reads 3.13 as a number, "
                       "not text (quote it inside the shell's quotes: -e \"python.python_version='3.13'\")")
    quoted = parse_manifest(MANIFEST, overrides=["python.python_version='3.13'"])
    assert quoted.python.python_version == "3.13"


def test_an_unsupported_version_names_the_supported_ones() -> None:
    (unquoted,) = problems("3.8")
    assert "'3.8' is not one of the choices" in unquoted
    assert "'3.9', '3.10', '3.11', '3.12', '3.13'" in unquoted
    (quoted,) = problems("'3.8'")
    assert quoted == ("fatman.yaml:8:19: python.python_version: '3.8' is not a supported Python version "
                      "(supported: 3.9, 3.10, 3.11, 3.12, 3.13, written in quotes, e.g. '3.11')")
    (patch,) = problems("'3.11.4'")
    assert "did you mean '3.11'?" in patch


def test_the_schema_lists_the_versions() -> None:
    field = manifest_schema()["definitions"]["PythonConfig"]["properties"]["python_version"]
    assert field["enum"] == list(PYTHON_VERSIONS) and field["default"] == "3.11"


def test_each_python_has_its_own_base_image_and_the_default_keeps_the_plain_tag() -> None:
    assert base_image_ref("latest") == base_image_ref("latest", "3.11") == "racetrack/python3:latest"
    assert base_image_ref("latest", "3.9") == "racetrack/python3:latest-py3.9"
    assert base_image_ref("1.0", "3.13") == "racetrack/python3:1.0-py3.13"
    assert len({base_image_ref("latest", v) for v in PYTHON_VERSIONS}) == len(PYTHON_VERSIONS)


def test_the_root_image_setting_is_a_template_or_a_fixed_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RACETRACK_PYTHON_IMAGE", raising=False)
    assert python_image(python_version="3.9") == "python:3.9-slim"
    monkeypatch.setenv("RACETRACK_PYTHON_IMAGE", "my-registry/python:{version}-slim-bookworm")
    assert python_image(python_version="3.13") == "my-registry/python:3.13-slim-bookworm"
    assert python_image("fixed/python:3.12", "3.9") == "fixed/python:3.12"


class RootImages:
    """An engine whose root images run the given Pythons (only what check_root_python asks)."""

    def __init__(self, pythons: dict[str, str]) -> None:
        self.pythons = pythons
        self.pulled: list[str] = []

    def pull_if_missing(self, ref: str) -> None:
        self.pulled.append(ref)

    def output_of(self, image: str, command: list[str]) -> str:
        if image not in self.pythons:
            raise EnvironmentFailure("exec: python3: executable file not found")
        return self.pythons[image] + "\n"

    # The rest of engine.Engine, unused here.
    def image_labels(self, ref: str) -> dict[str, str] | None: raise NotImplementedError
    def image_id(self, ref: str) -> str | None: raise NotImplementedError
    def tag(self, image_id: str, ref: str) -> None: raise NotImplementedError
    def untag(self, ref: str) -> None: raise NotImplementedError
    def read_file(self, image: str, path: str) -> bytes | None: raise NotImplementedError
    def build(self, context: Path, **kwargs: object) -> BuiltImage: raise NotImplementedError
    def push(self, ref: str) -> str | None: raise NotImplementedError
    def run(self, image: str, **kwargs: object) -> Container: raise NotImplementedError
    def remove_container(self, name: str) -> None: raise NotImplementedError


@pytest.fixture(autouse=True)
def _no_root_image_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("RACETRACK_PYTHON_IMAGE", raising=False)
    yield


def test_a_root_image_running_the_asked_python_passes() -> None:
    engine = RootImages({"python:3.9-slim": "3.9"})
    check_root_python(engine, BaseImageOptions(python_version="3.9"))
    assert engine.pulled == ["python:3.9-slim"]


def test_a_fixed_root_image_of_another_python_is_refused_before_any_build() -> None:
    engine = RootImages({"corp/python:3.11": "3.11"})
    with pytest.raises(UsageError) as info:
        check_root_python(engine, BaseImageOptions(python_version="3.9", python_image="corp/python:3.11"))
    assert info.value.message == ("the job asks for Python 3.9 but the root image corp/python:3.11 has "
                                  "Python 3.11 (a fixed root image ('corp/python:3.11') serves every Python)")
    assert "{version}" in (info.value.hint or "") and "'3.11'" in (info.value.hint or "")


def test_a_template_giving_the_wrong_python_says_so() -> None:
    engine = RootImages({"corp/py:3.9": "3.10"})
    with pytest.raises(UsageError, match=r"the template 'corp/py:\{version\}' gives it"):
        check_root_python(engine, BaseImageOptions(python_version="3.9", python_image="corp/py:{version}"))


def test_a_root_image_without_python3_is_a_usage_error_naming_the_image() -> None:
    with pytest.raises(UsageError, match=r"the Python root image scratch:1 cannot run python3"):
        check_root_python(RootImages({}), BaseImageOptions(python_image="scratch:1"))
