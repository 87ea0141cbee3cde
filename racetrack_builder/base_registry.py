"""Base images (and the install tools) from a registry, so a fresh engine need not build them.

``racetrack-build base --push --registry R`` publishes each Python's base image under the tag of
its wrapper sources (``R/racetrack/python3:<tag>[-py<version>]-<digest>``, see
``base_image.sources_ref``) and the install tools under theirs (``R/racetrack/build-tools:...``).
A build given ``--base-registry R`` (or ``RACETRACK_BASE_REGISTRY``) pulls what its engine lacks
from there, retags it as the local names, and builds only what the registry does not have (or
everything, with ``--build-base``). A registry that cannot help is a warning: the build goes on and
builds the base itself, as without one.
"""

from __future__ import annotations

import os

from . import reporting
from .base_image import CONTEXT_LABEL, BaseImageOptions, base_context_dir, context_digest, sources_ref
from .build_tools import tools_ref
from .engine import Engine, PullFailed
from .errors import UsageError
from .images import check_image_ref, names_a_registry

BASE_REGISTRY_ENV = "RACETRACK_BASE_REGISTRY"
_REASONS = {
    "unreachable": "cannot be reached",
    "refused": "refused the pull (log in with `docker login REGISTRY`)",
}


def base_registry_setting(explicit: str | None = None, option: str = "--base-registry") -> str | None:
    """The registry of base images: the option, else ``RACETRACK_BASE_REGISTRY``, else none. A
    value that is not ``HOST[:PORT][/PATH]`` is a UsageError."""
    value = (explicit or os.environ.get(BASE_REGISTRY_ENV) or "").strip().rstrip("/")
    if not value:
        return None
    given = option if explicit else BASE_REGISTRY_ENV
    check_image_ref(f"{value}/racetrack/python3", given)
    if not names_a_registry(f"{value}/x"):
        raise UsageError(f"{given} {value!r} is not a registry",
                         hint="give HOST[:PORT] or HOST[:PORT]/PATH, e.g. 127.0.0.1:5000")
    return value


def published_base_ref(registry: str, options: BaseImageOptions) -> str:
    """Where ``base --push`` puts the base image of ``options`` for these wrapper sources."""
    digest = context_digest(base_context_dir(options))
    return f"{registry}/{sources_ref(options.tag, digest, options.python_version)}"


def published_tools_ref(registry: str, python_version: str) -> str:
    return f"{registry}/{tools_ref(python_version)}"


def pull_base_image(engine: Engine, options: BaseImageOptions, registry: str) -> None:
    """Put the base image of ``options`` on the engine from ``registry`` when the engine lacks it.
    ``ensure_base_image`` then finds it; when it could not be pulled, it builds it, after a
    warning saying why."""
    ours = sources_ref(options.tag, context_digest(base_context_dir(options)), options.python_version)
    if engine.image_id(ours) is None:
        remote = published_base_ref(registry, options)
        if _pull_as(engine, remote, ours, "the base image", registry):
            if engine.image_id(options.ref) is None:
                engine.tag(ours, options.ref)


def pull_build_tools(engine: Engine, python_version: str, registry: str) -> None:
    """The same for the install tools, which only a build that installs needs (a build whose
    install comes from a registry cache never asks)."""
    tools = tools_ref(python_version)
    if engine.image_id(tools) is None:
        _pull_as(engine, published_tools_ref(registry, python_version), tools, "the install tools", registry)


def _pull_as(engine: Engine, remote: str, local: str, what: str, registry: str) -> bool:
    reporting.progress(f"pulling {what} {remote}")
    try:
        engine.pull(remote)
    except PullFailed as exc:
        if exc.kind == "missing":
            reason = f"has no {remote} (publish it with `racetrack-build base --push --registry {registry}`)"
        else:
            reason = f"{_REASONS.get(exc.kind, 'could not give it')} ({exc.said})"
        reporting.warn(f"base registry {registry} {reason}: building {what} here")
        return False
    engine.tag(remote, local)
    engine.untag(remote)
    return True


def publish_base_images(engine: Engine, base_image_id: str, options: BaseImageOptions, registry: str, *,
                        push: bool) -> list[tuple[str, str | None]]:
    """Tag the base image ``base_image_id`` (built for ``options``) and its install tools for
    ``registry``, and push them with ``push`` (then untag them): ``(ref, digest)`` of each. The
    base's tag is that of the sources it was built from (its label), even if they changed since."""
    labels = engine.image_labels(base_image_id) or {}
    digest = labels.get(CONTEXT_LABEL) or context_digest(base_context_dir(options))
    base_remote = f"{registry}/{sources_ref(options.tag, digest, options.python_version)}"
    tools = tools_ref(options.python_version)
    done: list[tuple[str, str | None]] = []
    for local, remote in ((base_image_id, base_remote),
                          (tools, published_tools_ref(registry, options.python_version))):
        engine.tag(local, remote)
        digest_pushed = None
        if push:
            reporting.progress(f"pushing {remote}")
            try:
                digest_pushed = engine.push(remote)
            finally:
                # Published: the engine keeps its own names only (one tag per registry and
                # wrapper version would pile up).
                engine.untag(remote)
        done.append((remote, digest_pushed))
    return done
