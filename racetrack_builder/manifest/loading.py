"""Reading a ``fatman.yaml``: file to text, text to YAML with positions, YAML to a :class:`Manifest`.

Three steps, kept apart so that each can change on its own and another manifest format can reuse
them (the project's style guide asks for this: parse, then validate, then word the errors):

1. :func:`racetrack_builder.yaml_lines.load_yaml` reads the text, keeping the line and column of
   every key and value, and reports YAML-level problems (syntax, duplicate keys, bad tags).
2. :class:`~.model.Manifest` validates the plain data and collects every error at once.
3. :mod:`.problems` turns each error into a :class:`Problem` with a message that names the fix,
   located with the positions from step 1.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from racetrack_builder.errors import ManifestError, Problem
from racetrack_builder.yaml_lines import LoadedDocument, YamlSyntaxError, load_yaml

from .model import EXTENSION_PREFIX, SECTION_EXAMPLES, TEXT_SECTIONS, Manifest
from .problems import (
    Layout,
    kind_of,
    sorted_and_capped,
    syntax_problem,
    validation_problems,
    yaml_problems,
)

# A manifest is a few dozen lines; a bigger file is a mistake (wrong file, generated junk).
MAX_MANIFEST_BYTES = 1024 * 1024

FATMAN_LAYOUT = Layout(model=Manifest, section_examples=SECTION_EXAMPLES, text_sections=TEXT_SECTIONS,
                       extension_prefix=EXTENSION_PREFIX)


def load_manifest(path: Path | str) -> Manifest:
    """Read and validate a manifest file; raise ManifestError listing every problem.

    Problems carry the 1-based line and column in the file. A missing, unreadable, oversized or
    non-UTF-8 file is a ManifestError too (with one Problem), never an OSError.
    """
    path = Path(path)
    return parse_manifest(_read_text(path), str(path))


def _read_text(path: Path) -> str:
    """The text of a manifest file (UTF-8, a BOM allowed); ManifestError when it cannot be had."""
    filename = str(path)
    try:
        # Bounded read: a device or pipe given by mistake (/dev/zero) must not be read forever,
        # while /dev/stdin still works.
        with path.open("rb") as stream:
            raw = stream.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(filename, [Problem("", "no such file (create fatman.yaml at the root of "
                                                   "your job's repository, or give its path)")]) from None
    except IsADirectoryError:
        raise ManifestError(filename, [Problem("", "is a directory (give the path of the fatman.yaml "
                                                   "file inside it)")]) from None
    except OSError as err:
        raise ManifestError(filename, [Problem("", f"cannot be read: {err.strerror or err} "
                                                   f"(check the path and its permissions)")]) from err
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(filename, [Problem("", f"is larger than a manifest can be ({MAX_MANIFEST_BYTES} "
                                                   f"bytes; is it the right file?)")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise ManifestError(filename, [Problem("", f"is not valid UTF-8: byte 0x{raw[err.start]:02x} "
                                                   f"cannot be decoded (save the file as UTF-8)",
                                               line, column)]) from None


def parse_manifest(text: str, filename: str = "fatman.yaml") -> Manifest:
    """Validate manifest text (the content of a fatman.yaml); raise ManifestError on any problem.

    ``filename`` is only used to name the file in the error.
    """
    doc = _read_mapping(text, filename, FATMAN_LAYOUT)
    problems = yaml_problems(doc)
    manifest = None
    try:
        manifest = Manifest.model_validate(_with_source_text(doc, FATMAN_LAYOUT))
    except ValidationError as err:
        problems += validation_problems(err, doc, FATMAN_LAYOUT)
    if problems or manifest is None:
        raise ManifestError(filename, sorted_and_capped(problems))
    return manifest


def _read_mapping(text: str, filename: str, layout: Layout) -> LoadedDocument:
    """Step 1: the YAML document, which must be a mapping; ManifestError if it cannot be read."""
    try:
        doc = load_yaml(text)
    except YamlSyntaxError as err:
        raise ManifestError(filename, [syntax_problem(err, text)]) from None
    if doc.data is None:
        message = f"the manifest is empty ({layout.required_hint()})"
        raise ManifestError(filename, [Problem("", message, 1, 1)])
    if not isinstance(doc.data, dict):
        raise ManifestError(filename, [Problem(
            "", f"the manifest must be a mapping of fields, not {kind_of(doc.data)} (write 'name: my-job' "
                f"and the other fields one per line)", doc.root.line, doc.root.column)])
    return doc


def _with_source_text(doc: LoadedDocument, layout: Layout) -> dict[str, Any]:
    """The document's data without extension keys, and with text-section values as written.

    YAML types ``PORT: 8080`` as a number; the user meant "8080", ``RATIO: 1.10`` "1.10" (not
    "1.1"), ``DEBUG: yes`` "yes".
    """
    data = {key: value for key, value in doc.data.items()
            if not (isinstance(key, str) and key.startswith(layout.extension_prefix))}
    for section in layout.text_sections:
        values = data.get(section)
        if not isinstance(values, dict):
            continue
        coerced = {}
        for key, value in values.items():
            entry = doc.entry((section, key))
            typed = isinstance(value, bool | int | float | date)
            coerced[key] = entry.raw if typed and entry is not None and entry.raw is not None else value
        data[section] = coerced
    return data
