"""The python3 base image: built from ``base-images/python3`` on top of a Python root image.

Job builds need it on the engine. When it is missing (or was built by us from different wrapper
sources) it is built automatically, so a machine with nothing but an engine and a Python root image
can build jobs; ``racetrack-build base`` builds it explicitly.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import reporting
from .contract import CA_BUNDLE_FILE
from .engine import BuiltImage, Engine
from .errors import UsageError
from .images import base_image_ref, python_image
from .resources import base_images_dir

CONTEXT_LABEL = "org.racetrack.base.context-sha256"
PYTHON_IMAGE_LABEL = "org.racetrack.base.python-image"
PYTHON_IMAGE_ID_LABEL = "org.racetrack.base.python-image-id"
# Kept out of the context hash and the context itself (mirrors base-images/python3/.dockerignore).
_IGNORED_PARTS = {"tests", ".venv", "__pycache__", "build", "dist", ".pytest_cache", ".ruff_cache"}


def _context_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _IGNORED_PARTS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path.name != CA_BUNDLE_FILE:
            files.append(path)
    return files


def context_digest(root: Path) -> str:
    """A hash of the base image's sources, stored as a label to tell a stale base image."""
    digest = hashlib.sha256()
    for path in _context_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class BaseImageOptions:
    tag: str = "latest"
    python_image: str | None = None  # None: RACETRACK_PYTHON_IMAGE or the default
    ca_cert: Path | None = None
    network: str | None = None
    nocache: bool = False
    sources: Path | None = None  # the base image's build context; None: the packaged one


def base_context_dir(options: BaseImageOptions | None = None) -> Path:
    root = (options.sources if options and options.sources else None) or base_images_dir() / "python3"
    if not (root / "Dockerfile").is_file():
        raise UsageError(f"no base image sources at {root}", hint="reinstall racetrack-build")
    return root


def build_base_image(engine: Engine, options: BaseImageOptions) -> BuiltImage:
    """Build ``racetrack/python3:<tag>`` from the packaged sources."""
    root = base_context_dir(options)
    root_image = python_image(options.python_image)
    root_id = engine.image_id(root_image)
    with tempfile.TemporaryDirectory(prefix="racetrack-base-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        for path in _context_files(root):
            target = context / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        if options.ca_cert is not None:
            shutil.copyfile(options.ca_cert, context / CA_BUNDLE_FILE)
        digest = context_digest(root)
        built = engine.build(
            context,
            tag=base_image_ref(options.tag),
            buildargs={"PYTHON_IMAGE": root_image},
            network=options.network,
            nocache=options.nocache,
            labels={
                CONTEXT_LABEL: digest,
                PYTHON_IMAGE_LABEL: root_image,
                PYTHON_IMAGE_ID_LABEL: root_id or "",
            },
        )
    # Also under a tag of these sources: another racetrack-build version on the same engine
    # retags racetrack/python3:<tag> for its own wrapper, and this version then finds its image
    # here instead of building it again (and again, each time the other builds).
    engine.tag(built.id, sources_ref(options.tag, digest))
    return built


def sources_ref(tag: str, digest: str) -> str:
    """``racetrack/python3:<tag>-<first 12 of the sources' digest>``: the base image of one wrapper."""
    return f"{base_image_ref(tag)}-{digest[:12]}"


def _stale_reason(
    engine: Engine, options: BaseImageOptions, labels: dict[str, str] | None, ref: str | None = None
) -> str | None:
    """Why the base image ``ref`` (whose labels are given, None when missing) must be built, or None.

    Only images this tool built (they carry our labels) are judged stale: from other wrapper
    sources, on another root image, or on a root image that has changed since. A base image pulled
    from a registry under the same name is used as it is.
    """
    ref = ref or base_image_ref(options.tag)
    if labels is None:
        return f"{ref} is not on the engine"
    if CONTEXT_LABEL not in labels:
        return None
    if labels[CONTEXT_LABEL] != context_digest(base_context_dir(options)):
        return f"{ref} was built from other wrapper sources"
    built_on = labels.get(PYTHON_IMAGE_LABEL)
    if options.python_image and built_on != options.python_image:
        return f"{ref} was built on {built_on}, not {options.python_image}"
    current_id = engine.image_id(built_on) if built_on else None
    if current_id and labels.get(PYTHON_IMAGE_ID_LABEL) and current_id != labels[PYTHON_IMAGE_ID_LABEL]:
        return f"{ref} was built on an older {built_on}"
    return None


def ensure_base_image(engine: Engine, options: BaseImageOptions) -> str:
    """Make sure the base image is on the engine; build it when missing or stale. Returns its ref:
    ``racetrack/python3:<tag>``, or the same image under the tag of these wrapper sources when
    another version of the tool has since retagged the first (see ``sources_ref``)."""
    labels = engine.image_labels(base_image_ref(options.tag))
    reason = _stale_reason(engine, options, labels)
    if reason is not None and labels is not None and CONTEXT_LABEL in labels:
        ours = sources_ref(options.tag, context_digest(base_context_dir(options)))
        if _stale_reason(engine, options, engine.image_labels(ours), ours) is None:
            reporting.progress(f"using {ours} ({reason})")
            return ours
    if reason is not None:
        reporting.progress(f"building the base image: {reason}")
        if options.python_image is None and labels and labels.get(PYTHON_IMAGE_LABEL):
            # A rebuild for new wrapper sources keeps the root image the stale one was built on.
            options = replace(options, python_image=labels[PYTHON_IMAGE_LABEL])
        build_base_image(engine, options)
    return base_image_ref(options.tag)
