"""The paths of a build context that its ``.dockerignore`` lets through, by the engine's rules.

docker-py's matcher (``docker.utils.build.exclude_paths``) applies them as the Docker CLI does,
``!`` exceptions included; this module only reads the file, for the two places that need the list:
the contexts sent to the engine's BuildKit (buildkit_build.py) and the sources of the images this
tool builds itself, whose digest names them (base_image.py).
"""

from __future__ import annotations

from pathlib import Path


def kept_paths(folder: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """The paths under ``folder`` (relative, files and folders, sorted) that its ``.dockerignore``
    keeps; ``dockerfile`` is always kept, as the engine keeps it."""
    from docker.utils.build import exclude_paths  # lazy: docker-py costs commands that build nothing

    ignore = folder / ".dockerignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return sorted(exclude_paths(str(folder), patterns, dockerfile=dockerfile))
