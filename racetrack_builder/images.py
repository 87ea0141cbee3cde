"""Image names: the python3 base image a manifest selects, and a job's own tag."""

from __future__ import annotations

import os
import re

from .contract import BASE_IMAGE_REPOSITORY
from .errors import UsageError

DEFAULT_PYTHON_IMAGE = "python:3.11-slim"
PYTHON_IMAGE_ENV = "RACETRACK_PYTHON_IMAGE"


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


# Docker's reference grammar (distribution/reference): an optional registry host[:port], then
# lower-case path components, then an optional tag. Checked before the engine sees it, so a bad
# --tag or --registry is the user's input error (exit 2), not an engine failure (exit 3).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_REFERENCE = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?")


def check_image_ref(ref: str, given_as: str) -> str:
    """``ref`` when Docker accepts it as an image reference; UsageError naming the rule otherwise."""
    if len(ref) <= 255 and _REFERENCE.fullmatch(ref):
        return ref
    hint = "lower-case letters, digits and . _ - in the name, then :TAG of letters, digits and . _ -"
    if "+" in ref.rpartition(":")[2]:
        hint = "a tag cannot hold '+': write the build metadata with '_' (1.0.0_build.5)"
    elif ref != ref.lower() and ref.rpartition(":")[0] != ref.rpartition(":")[0].lower():
        hint = "image names must be lower-case (a tag may hold capitals)"
    raise UsageError(f"{given_as} {ref!r} is not a valid image reference", hint=hint)


def names_a_registry(ref: str) -> bool:
    """Whether ``ref``'s first component is a registry host, as Docker reads it: it holds a '.'
    or a ':' (a port), or is ``localhost``. Otherwise a push goes to Docker Hub."""
    first, sep, _ = ref.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")
