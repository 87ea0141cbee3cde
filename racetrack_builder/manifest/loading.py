"""Reading a manifest: file to text, text to YAML with positions, layers merged, data to a :class:`Manifest`.

The steps, kept apart so that each can change on its own and each format reuses them (the project's
style guide asks for this: parse, then validate, then word the errors):

1. :func:`racetrack_builder.yaml_lines.load_yaml` reads the text, keeping the line and column of
   every key and value, and reports YAML-level problems (syntax, duplicate keys, bad tags).
2. :mod:`.formats` says which format it is: fatman.yaml (2022) or job.yaml (Racetrack 2.x).
3. For a job.yaml, :mod:`.overlays` merges it over its ``extends`` base; for both formats,
   :mod:`.overrides` applies the ``-e KEY=VALUE`` values. :mod:`.sources` remembers which file or
   override gave each value.
4. The format's model validates the plain data and collects every error at once:
   :class:`~.model.Manifest` for fatman.yaml, :mod:`.job_yaml` for job.yaml (which gives a
   :class:`~.job_manifest.JobManifest`, a Manifest too).
5. :mod:`.problems` turns each error into a :class:`Problem` with a message that names the fix,
   located with the positions from step 1 in the file (or override) the value came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePath

from pydantic import ValidationError

from racetrack_builder.errors import ManifestError, Problem
from racetrack_builder.yaml_lines import LoadedDocument, YamlSyntaxError, load_yaml

from .formats import FILE_NAMES, JOB, Format, format_by_name, format_of, renamed_notice
from .job_yaml import JOB_LAYOUT, validate_job
from .model import EXTENSION_PREFIX, SECTION_EXAMPLES, TEXT_SECTIONS, Manifest
from .overlays import with_base
from .overrides import Override, apply_overrides, parse_override
from .problems import (
    Layout,
    format_path,
    kind_of,
    sorted_and_capped,
    syntax_problem,
    validation_problems,
)
from .sources import Layers, Source, sourced
from .text_sections import with_source_text

# A manifest is a few dozen lines; a bigger file is a mistake (wrong file, generated junk).
MAX_MANIFEST_BYTES = 1024 * 1024

FATMAN_LAYOUT = Layout(model=Manifest, section_examples=SECTION_EXAMPLES, text_sections=TEXT_SECTIONS,
                       extension_prefix=EXTENSION_PREFIX)


def load_manifest(path: Path | str, overrides: Iterable[str | Override] = ()) -> Manifest:
    """Read and validate a manifest file (fatman.yaml or job.yaml); raise ManifestError listing
    every problem. ``overrides`` are ``-e KEY=VALUE`` texts, applied last.

    Problems carry the 1-based line and column in the file. A missing, unreadable, oversized or
    non-UTF-8 file is a ManifestError too (with one Problem), never an OSError.
    """
    path = Path(path)
    return parse_manifest(_read_text(path), str(path), overrides)


def _read_text(path: Path) -> str:
    """The text of a manifest file (UTF-8, a BOM allowed); ManifestError when it cannot be had."""
    filename = str(path)
    try:
        # Bounded read: a device or pipe given by mistake (/dev/zero) must not be read forever,
        # while /dev/stdin still works.
        with path.open("rb") as stream:
            raw = stream.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        message = (f"no such file (create {_file_name(filename)} at the root of your job's repository, "
                   f"or give its path)")
        raise ManifestError(filename, [Problem("", message)]) from None
    except IsADirectoryError:
        raise ManifestError(filename, [Problem("", f"is a directory (give the path of the "
                                                   f"{_file_name(filename)} file inside it)")]) from None
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


def _file_name(filename: str) -> str:
    """The manifest file to suggest: the one the name says, else either (a name like ``ci.yaml``
    does not tell whether a fatman.yaml or a job.yaml was meant)."""
    name = PurePath(filename).name.lower()
    if format_by_name(filename) == JOB or name.startswith("fatman."):
        return FILE_NAMES[format_by_name(filename)]
    return f"{FILE_NAMES[JOB]} or fatman.yaml"


def _late_extends(overrides: tuple[Override, ...], filename: str) -> tuple[str, ...]:
    """Warnings for ``-e extends=...``: overrides apply after the overlay was read (as in 2.x), so
    such a value names no base and changes nothing; said, rather than silently ignored."""
    return tuple(
        f"{o.name}: extends is read before -e values apply, so this override names no base manifest "
        f"(write extends in {PurePath(filename).name}, or pass that overlay's file instead)"
        for o in overrides if o.key[0] == "extends"
    )


def parse_manifest(text: str, filename: str = "fatman.yaml",
                   overrides: Iterable[str | Override] = ()) -> Manifest:
    """Validate manifest text (a fatman.yaml's, or a job.yaml's); raise ManifestError on any problem.

    ``filename`` names the file in the error, tells the format when the content does not (see
    formats.py) and is where a job.yaml's ``extends`` is resolved from. ``overrides`` are
    ``-e KEY=VALUE`` texts (or parsed ones), applied after ``extends``.
    """
    parsed = tuple(o if isinstance(o, Override) else parse_override(o) for o in overrides)
    doc = _read_mapping(text, filename, layout_of(format_by_name(filename)))
    fmt = format_of(filename, doc.data)
    main = Source(filename, doc)
    problems: list[Problem] = []
    if fmt == JOB:
        layers, problems = with_base(main, Path(filename), _read_document)
    else:
        layers = Layers.of(main)
    problems += apply_overrides(layers, parsed)
    problems += _yaml_problems(layers)
    manifest: Manifest | None
    if fmt == JOB:
        renamed = renamed_notice(filename, doc.data)
        notices = ((renamed,) if renamed else ()) + _late_extends(parsed, filename)
        manifest, found = validate_job(layers, notices)
    else:
        manifest, found = _validate_fatman(layers)
    problems += found
    if problems or manifest is None:
        raise ManifestError(filename, sorted_and_capped(problems, layers.sort_key))
    return manifest


def layout_of(fmt: Format) -> Layout:
    """The facts about a format its messages need."""
    return JOB_LAYOUT if fmt == JOB else FATMAN_LAYOUT


def _validate_fatman(layers: Layers) -> tuple[Manifest | None, list[Problem]]:
    try:
        return Manifest.model_validate(with_source_text(layers, FATMAN_LAYOUT)), []
    except ValidationError as err:
        return None, validation_problems(err, layers, FATMAN_LAYOUT, layers.attribute)


def _yaml_problems(layers: Layers) -> list[Problem]:
    """The problems the YAML layer recovered from, in every source, named after it."""
    return [sourced(Problem(format_path(source.prefix + p.path), p.message, p.position.line,
                            p.position.column), source, layers.main)
            for source in layers.sources for p in source.doc.problems]


def _read_document(path: Path) -> LoadedDocument:
    """A base manifest's document (``extends``); ManifestError when it cannot be read."""
    filename = str(path)
    text = _read_text(path)
    try:
        return load_yaml(text)
    except YamlSyntaxError as err:
        raise ManifestError(filename, [syntax_problem(err, text)]) from None


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
