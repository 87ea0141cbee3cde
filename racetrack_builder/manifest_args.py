"""Command-line arguments about the manifest, for cli.py: the MANIFEST argument, ``-e``, ``schema``'s format.

- MANIFEST may be a file or a folder; a folder's ``job.yaml`` or ``fatman.yaml`` is used, and a
  folder holding both is a usage error naming both (manifest/lookup.py).
- ``-e``/``--extra-vars KEY.PATH=VALUE`` (repeatable) is checked as it is parsed, so a malformed
  one stops the command before anything is cloned (manifest/overrides.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .errors import UsageError

# The manifest package (pydantic...) is imported when an argument is converted, not with the CLI:
# `racetrack-build --help` stays fast.
if TYPE_CHECKING:
    from .manifest import Format, Override


class ManifestPath(click.ParamType):
    """A manifest file, or a folder holding one (resolved to the file)."""

    name = "manifest"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        from .manifest import find_manifest

        return find_manifest(Path(value))


manifest_arg = click.argument("manifest", type=ManifestPath())


def _parse_extra_vars(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[Override, ...]:
    from .manifest import parse_override

    return tuple(parse_override(value) for value in values)


def extra_vars_opt(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-e``/``--extra-vars KEY.PATH=VALUE``, repeatable: the ``extra_vars`` parameter."""
    return click.option(
        "-e", "--extra-vars", "extra_vars", multiple=True, metavar="KEY.PATH=VALUE",
        callback=_parse_extra_vars,
        help="Set a manifest value (VALUE is YAML), after extends; repeatable, e.g. -e git.branch=dev.",
    )(func)


def manifest_target(target: str) -> str:
    """A TARGET (manifest, image or URL): a folder holding a manifest becomes that manifest's path."""
    from .manifest import manifest_in

    path = Path(target)
    if path.is_dir():
        found = manifest_in(path)
        if found is not None:
            return str(found)
    return target


def schema_format(fmt: str | None, manifest: str | None) -> Format:
    """The format ``schema`` prints: ``--format``, else that of the file named (it need not exist),
    else fatman.yaml's; UsageError when both are given and disagree."""
    from .manifest import FILE_NAMES, FORMATS, format_by_name, manifest_in

    by_name: Format | None = None
    if manifest is not None:
        path = Path(manifest)
        found = manifest_in(path) if path.is_dir() else path
        if found is None:
            raise UsageError(f"{path} holds no {' or '.join(FILE_NAMES.values())}",
                             hint="give a manifest's name, or --format fatman|job")
        by_name = format_by_name(str(found))
    if fmt is not None and by_name is not None and fmt != by_name:
        raise UsageError(f"--format {fmt} and {manifest} ({FILE_NAMES[by_name]}) disagree",
                         hint="give one of them")
    chosen = fmt or by_name or "fatman"
    assert chosen in FORMATS
    return chosen  # type: ignore[return-value]
