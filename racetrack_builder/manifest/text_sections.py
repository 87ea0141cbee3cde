"""Env and label values as the user wrote them: ``PORT: 8080`` means "8080", ``RATIO: 1.10`` "1.10".

YAML types such values as numbers (1.10 as 1.1) and booleans (``yes`` as true); for the mappings a
format declares text sections (build_env, runtime_env, labels) the source text is taken instead.
Shared by both formats; ``doc`` is one file's document or merged layers (sources.Layers).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .problems import Layout


def with_source_text(doc: Any, layout: Layout) -> dict[str, Any]:
    """The document's data without extension keys, and with text-section values as written."""
    prefix = layout.extension_prefix
    data = {key: value for key, value in doc.data.items()
            if not (prefix and isinstance(key, str) and key.startswith(prefix))}
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
