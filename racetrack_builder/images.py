"""Image names: the python3 base image a manifest selects, and a job's own tag."""

from __future__ import annotations

import os

BASE_IMAGE_REPOSITORY = "racetrack/python3"
DEFAULT_PYTHON_IMAGE = "python:3.11-slim"
PYTHON_IMAGE_ENV = "RACETRACK_PYTHON_IMAGE"
# A CA bundle dropped into a build context under this name is trusted by pip in the builder stages
# (base and job images alike) and never reaches a final stage.
CA_BUNDLE_FILE = "ca-bundle.pem"


def base_image_ref(tag: str = "latest") -> str:
    """The python3 base image for ``lang: python3:<tag>``."""
    return f"{BASE_IMAGE_REPOSITORY}:{tag}"


def python_image(explicit: str | None = None) -> str:
    """The Python root image the base image is built on: option, then environment, then default."""
    return explicit or os.environ.get(PYTHON_IMAGE_ENV) or DEFAULT_PYTHON_IMAGE


def job_image_ref(name: str, version: str, *, tag: str | None = None, registry: str | None = None) -> str:
    """``[registry/]name:version`` unless ``tag`` names the image outright.

    A semantic version's build metadata (``1.0.0+build.5``) uses ``+``, which Docker tags do not
    allow; it becomes ``_``, the convention OCI registries (Helm among them) use for it.
    """
    ref = tag or f"{name}:{version.replace('+', '_')}"
    if registry:
        ref = f"{registry.rstrip('/')}/{ref}"
    return ref
