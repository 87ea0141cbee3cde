"""``extends``: a job.yaml overlaid on a base manifest (Racetrack 2.x, spec section 3).

The path is relative to the overlay's folder (an absolute one is refused); the base may not extend
another. Mappings on both sides merge recursively; anything else from the overlay replaces the
base's value (lists and null too). Only the result is validated, so the base may be partial.
Problems of the base are reported against the base file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic_core import PydanticCustomError

from racetrack_builder.errors import Problem
from racetrack_builder.yaml_lines import LoadedDocument

from .job_fields import check_extends
from .problems import kind_of, yaml_problems
from .sources import Layers, Source, sourced

FIELD = "extends"
# Reads a manifest file into a document; raises ManifestError naming the file (unreadable, not YAML...).
ReadDocument = Callable[[Path], LoadedDocument]


def with_base(overlay: Source, overlay_path: Path, read: ReadDocument) -> tuple[Layers, list[Problem]]:
    """The overlay's data merged over its base's, and the problems found on the way.

    Without a usable ``extends`` the layers hold the overlay alone (its problem is reported).
    """
    data = overlay.doc.data
    alone = Layers.of(overlay)
    value = data.get(FIELD) if isinstance(data, dict) else None
    if value is None:
        return alone, []
    if not _usable(value):
        return alone, []  # the model reports the value, with the rest of the manifest
    base_path = overlay_path.parent / value
    if not base_path.is_file():
        what = "a folder" if base_path.is_dir() else "no such file"
        return alone, [_at_extends(overlay, f"{value!r} is {what} ({base_path}; the base manifest's path "
                                            f"is relative to this file's folder)")]
    # A base that cannot be read at all (not UTF-8, not YAML) is the one error: ManifestError naming it.
    base_doc = read(base_path)
    # Named without the '..' of the walk there (prod/../job.yaml is job.yaml): what a CI annotation
    # or an editor opens.
    base = Source(os.path.normpath(base_path), base_doc)
    problems = [sourced(p, base, overlay) for p in yaml_problems(base_doc)]
    if base_doc.data is not None and not isinstance(base_doc.data, dict):
        problems.append(sourced(Problem("", f"the base manifest must be a mapping of fields, not "
                                            f"{kind_of(base_doc.data)}", base_doc.root.line,
                                        base_doc.root.column), base, overlay))
        return alone, problems
    if isinstance(base_doc.data, dict) and FIELD in base_doc.data:
        position = base_doc.locate((FIELD,), key=True)
        problems.append(sourced(Problem(FIELD, "a base manifest cannot extend another (merge the two "
                                               "bases into one)", position.line, position.column),
                                base, overlay))
    layers = Layers(main=overlay, data={}, sources=[])
    layers.overlay(base, base_doc.data or {})
    layers.overlay(overlay, data)
    return layers, problems


def _usable(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        check_extends(value)
    except PydanticCustomError:
        return False
    return True


def _at_extends(overlay: Source, message: str) -> Problem:
    position = overlay.doc.locate((FIELD,))
    return Problem(FIELD, message, position.line, position.column)
