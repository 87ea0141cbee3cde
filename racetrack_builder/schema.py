"""The JSON Schema of ``fatman.yaml`` and of ``job.yaml`` (Racetrack 2.x), generated from the pydantic models.

Editors use it for completion and checking, e.g. with yaml-language-server, by a first line
``# yaml-language-server: $schema=fatman.schema.json``. It is written in JSON Schema draft-07, the
dialect yaml-language-server (and VS Code's JSON support under it) implements fully; later drafts
are only partly supported there.

The patterns, enums and required fields come from the same definitions the validators use (the
rules in ``manifest/fields.py``, assembled into patterns by ``manifest/rules.py``), so the schema and
``racetrack-build validate`` agree wherever the schema is asked to express a rule. The rest is left
to validate: what JSON Schema cannot express (a class name that is a Python keyword), the
git.remote scheme rules, and the few clauses marked ``validate_only()`` in ``manifest/fields.py``.
"""

from __future__ import annotations

import json
from typing import Any

from racetrack_builder.manifest import EXTENSION_PREFIX, FATMAN, JOB, Format, Manifest
from racetrack_builder.manifest.job_model import JobYaml

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
SCHEMA_TITLE = "fatman.yaml"
SCHEMA_TITLES: dict[Format, str] = {FATMAN: SCHEMA_TITLE, JOB: "job.yaml"}
_DESCRIPTIONS: dict[Format, str] = {
    FATMAN: "Manifest of a Racetrack job built with racetrack-build: the job's name, owner, type, "
            "source and how to run it.",
    JOB: "Manifest of a Racetrack 2.x job (job.yaml) built with racetrack-build: the job's name, "
         "owner, job type, source, settings and deployment.",
}


def manifest_schema(fmt: Format = FATMAN) -> dict[str, Any]:
    """The JSON Schema (draft-07) of a fatman.yaml (or, with ``fmt="job"``, a job.yaml), as a dict."""
    model = JobYaml if fmt == JOB else Manifest
    # mode="validation": the schema of what users write (inputs), not of what the model dumps.
    schema = model.model_json_schema(mode="validation", ref_template="#/definitions/{model}")
    schema["definitions"] = schema.pop("$defs", {})
    ordered: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "title": SCHEMA_TITLES[fmt],
        "description": _DESCRIPTIONS[fmt],
    }
    schema.pop("title", None)
    schema.pop("description", None)
    ordered.update(schema)
    if fmt == FATMAN:
        # Extension fields (x-...): ignored by validate, so allowed here too. Racetrack 2.x has none.
        ordered["patternProperties"] = {f"^{EXTENSION_PREFIX}": {}}
    else:
        # Exactly one of jobtype and its deprecated name lang; jobtype_extra or one deprecated name.
        ordered["allOf"] = [
            {"oneOf": [{"required": ["jobtype"]}, {"required": ["lang"]}]},
            {"oneOf": [{"required": [name]} for name in
                       ("jobtype_extra", "python", "golang", "docker", "wrapper_properties")]},
        ]
    _tidy(ordered)
    return ordered


def manifest_schema_json(indent: int = 2, fmt: Format = FATMAN) -> str:
    """The schema as JSON text, keys in a stable order, ending with a newline."""
    return json.dumps(manifest_schema(fmt), indent=indent, ensure_ascii=False) + "\n"


def _tidy(node: Any) -> None:
    """Make the schema read well in editors.

    Drop pydantic's per-field "title" (a copy of the key) so our descriptions show, and move a
    "$ref" that has sibling keywords into "allOf": draft-07 ignores the siblings of "$ref", which
    would hide the descriptions of "git" and "python".
    """
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for value in properties.values():
                if isinstance(value, dict):
                    value.pop("title", None)
                    if "$ref" in value and len(value) > 1:
                        value["allOf"] = [{"$ref": value.pop("$ref")}]
        for value in node.values():
            _tidy(value)
    elif isinstance(node, list):
        for value in node:
            _tidy(value)
