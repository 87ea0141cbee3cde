"""Image names: the python3 base image a manifest selects, its root image, and a job's own tag."""

from __future__ import annotations

import os
import re

from .contract import BASE_IMAGE_REPOSITORY, DEFAULT_PYTHON_VERSION
from .errors import UsageError

# The root image of each Python's base image: a name, or a template where {version} is the
# job's python.python_version ("my-registry/python:{version}-slim").
DEFAULT_PYTHON_IMAGE = "python:{version}-slim"
PYTHON_IMAGE_ENV = "RACETRACK_PYTHON_IMAGE"
VERSION_FIELD = "{version}"


def base_image_ref(tag: str = "latest", python_version: str = DEFAULT_PYTHON_VERSION) -> str:
    """The python3 base image for ``lang: python3:<tag>`` and ``python.python_version``.

    The default Python keeps the plain tag (``racetrack/python3:latest``), so images named before
    jobs could choose their Python keep their meaning; another one gets its own
    (``racetrack/python3:latest-py3.9``), so several coexist on one engine.
    """
    suffix = "" if python_version == DEFAULT_PYTHON_VERSION else f"-py{python_version}"
    return f"{BASE_IMAGE_REPOSITORY}:{tag}{suffix}"


def python_image_setting(explicit: str | None = None) -> str:
    """The root image setting as given: option, then environment, then the default template."""
    return explicit or os.environ.get(PYTHON_IMAGE_ENV) or DEFAULT_PYTHON_IMAGE


def python_image(explicit: str | None = None, python_version: str = DEFAULT_PYTHON_VERSION) -> str:
    """The Python root image the base image of ``python_version`` is built on."""
    return python_image_setting(explicit).replace(VERSION_FIELD, python_version)


def is_template(setting: str) -> bool:
    """Whether a root image setting names one image per Python (it holds ``{version}``)."""
    return VERSION_FIELD in setting


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
