"""Where the tool's own data files are: Dockerfile templates and the base image sources.

They live at the top of the repository (``templates/``, ``base-images/``) because users read them;
a normal (non-editable) install carries them inside the package as ``racetrack_builder/_data/``
(see ``[tool.hatch.build.targets.wheel.force-include]`` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    installed = _PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"racetrack-build's {name}/ folder is missing (looked in {installed} and {checkout}); "
        "reinstall the package"
    )


def templates_dir() -> Path:
    """The folder of Jinja2 templates for job Dockerfiles."""
    return _data_dir("templates")


def base_images_dir() -> Path:
    """The folder holding one build context per base image (``python3/``)."""
    return _data_dir("base-images")
