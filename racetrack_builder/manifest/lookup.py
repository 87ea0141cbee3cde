"""Finding the manifest of a folder: its ``job.yaml`` or its ``fatman.yaml``, never a guess between both."""

from __future__ import annotations

from pathlib import Path

from racetrack_builder.errors import UsageError

from .formats import SEARCHED_NAMES


def manifest_in(folder: Path) -> Path | None:
    """The manifest ``folder`` holds; None when it holds neither; UsageError when it holds both."""
    found = [folder / name for name in SEARCHED_NAMES if (folder / name).is_file()]
    if len(found) > 1:
        raise UsageError(
            f"{folder} holds both {found[0]} and {found[1]}: which one is the manifest?",
            hint=f"give the file's path instead of the folder, e.g. {found[0]}",
        )
    return found[0] if found else None


def find_manifest(path: Path) -> Path:
    """``path`` itself, or for a folder the manifest in it; UsageError when a folder has none."""
    if not path.is_dir():
        return path
    found = manifest_in(path)
    if found is None:
        raise UsageError(f"{path} holds no {' or '.join(SEARCHED_NAMES)}",
                         hint="give the manifest's path, or create one with `racetrack-build init`")
    return found
