"""What the base image and the install tools are built from, and so hashed to tag them: the files
each folder's .dockerignore lets through, which are the files the wheel ships."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from racetrack_builder.base_image import context_digest, context_files, copy_context
from racetrack_builder.contract import CA_BUNDLE_FILE

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("python3", "build-tools")


def _shipped(folder: str) -> set[str]:
    """The top-level names of ``base-images/FOLDER`` the wheel force-includes."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    included = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    prefix = f"base-images/{folder}/"
    return {source.removeprefix(prefix).split("/")[0] for source in included if source.startswith(prefix)}


@pytest.mark.parametrize("folder", FOLDERS)
def test_the_context_is_what_the_wheel_ships(folder: str) -> None:
    root = REPO / "base-images" / folder
    in_context = {path.relative_to(root).parts[0] for path in context_files(root)}
    assert in_context == _shipped(folder)


@pytest.fixture(params=FOLDERS)
def sources(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of one folder's sources, as a fresh clone has them."""
    root = tmp_path / str(request.param)
    root.mkdir()
    copy_context(REPO / "base-images" / str(request.param), root)
    return root


def test_caches_tests_and_leftovers_beside_the_sources_change_nothing(sources: Path) -> None:
    before = context_digest(sources)
    for junk in (".mypy_cache/3.11/cache.db", ".hypothesis/examples/x", ".ruff_cache/0.1/y",
                 "tests/test_x.py", ".venv/bin/python", "__pycache__/m.cpython-311.pyc", "ruff.toml",
                 ".keep", "notes.txt~", CA_BUNDLE_FILE):
        (sources / junk).parent.mkdir(parents=True, exist_ok=True)
        (sources / junk).write_text("anything\n")
    packages = [p for p in sources.iterdir() if p.is_dir() and not p.name.startswith((".", "_", "tests"))]
    for package in packages:
        (package / "__pycache__").mkdir()
        (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert context_digest(sources) == before


def test_a_change_to_a_source_changes_the_digest(sources: Path) -> None:
    before = context_digest(sources)
    dockerfile = sources / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    assert context_digest(sources) != before


def test_copying_a_context_copies_only_its_files(sources: Path, tmp_path: Path) -> None:
    (sources / ".mypy_cache").mkdir()
    (sources / ".mypy_cache" / "cache.db").write_text("x")
    copy = tmp_path / "copy"
    copy.mkdir()
    copy_context(sources, copy)
    assert sorted(p.relative_to(copy) for p in copy.rglob("*") if p.is_file()) == \
        sorted(p.relative_to(sources) for p in context_files(sources))
    assert not (copy / ".mypy_cache").exists()
