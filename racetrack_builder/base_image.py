"""The python3 base images: built from ``base-images/python3`` on top of a Python root image, one
per Python a job may choose (``python.python_version``).

Job builds need theirs on the engine. When it is missing (or was built by us from different wrapper
sources or another root image) it is built automatically, so a machine with nothing but an engine
and a Python root image can build jobs; ``racetrack-build base`` builds them explicitly. The root
image of each Python comes from a setting that may be a template (``python:{version}-slim``, the
default); whatever it names must run the Python asked for, checked before anything is built.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import reporting
from .contract import CA_BUNDLE_FILE, DEFAULT_PYTHON_VERSION
from .dockerignore import kept_paths
from .engine import BuiltImage, Engine
from .engine_lock import engine_lock
from .errors import EnvironmentFailure, UsageError
from .images import base_image_ref, is_template, python_image, python_image_setting
from .resources import base_images_dir

CONTEXT_LABEL = "org.racetrack.base.context-sha256"
PYTHON_IMAGE_LABEL = "org.racetrack.base.python-image"
PYTHON_IMAGE_ID_LABEL = "org.racetrack.base.python-image-id"
PYTHON_VERSION_LABEL = "org.racetrack.base.python-version"


def context_files(root: Path) -> list[Path]:
    """The files of the image sources in ``root`` that make its build context: those its
    ``.dockerignore`` lets through, less the CA bundle a build adds itself.

    Each folder's ``.dockerignore`` lists exactly what the wheel ships (pyproject.toml's
    force-include), so a checkout with tests, caches (.mypy_cache, .hypothesis...) or editor files
    beside the sources hashes as an installed package does, and neither rebuilds nor publishes a
    base image of its own. The engine's rules apply (dockerignore.py), as when the context is sent.
    """
    kept = (root / relative for relative in kept_paths(root))
    return sorted(path for path in kept if path.is_file() and path.name != CA_BUNDLE_FILE)


def copy_context(root: Path, context: Path) -> None:
    """Copy the build context of ``root`` (:func:`context_files`) into the folder ``context``."""
    for path in context_files(root):
        target = context / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def context_digest(root: Path) -> str:
    """A hash of an image's sources (:func:`context_files`), stored as a label to tell a stale image."""
    digest = hashlib.sha256()
    for path in context_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class BaseImageOptions:
    tag: str = "latest"
    python_version: str = DEFAULT_PYTHON_VERSION
    # A name or a {version} template; None: RACETRACK_PYTHON_IMAGE, else the default template.
    python_image: str | None = None
    ca_cert: Path | None = None
    network: str | None = None
    nocache: bool = False
    sources: Path | None = None  # the base image's build context; None: the packaged one

    @property
    def ref(self) -> str:
        """``racetrack/python3:<tag>`` for the default Python, ``...:<tag>-py<version>`` for another."""
        return base_image_ref(self.tag, self.python_version)

    @property
    def root_image(self) -> str:
        """The Python root image to build on, the template filled in."""
        return python_image(self.python_image, self.python_version)


def base_context_dir(options: BaseImageOptions | None = None) -> Path:
    root = (options.sources if options and options.sources else None) or base_images_dir() / "python3"
    if not (root / "Dockerfile").is_file():
        raise UsageError(f"no base image sources at {root}", hint="reinstall racetrack-build")
    return root


def check_root_python(engine: Engine, options: BaseImageOptions) -> None:
    """UsageError unless the root image runs ``options.python_version`` (pulled when missing)."""
    root_image = options.root_image
    engine.pull_if_missing(root_image)
    try:
        found = engine.output_of(
            root_image, ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        ).strip()
    except EnvironmentFailure as exc:
        raise UsageError(
            f"the Python root image {root_image} cannot run python3 ({exc.message})",
            hint="use a Debian-based image with python3 and python3 -m venv, e.g. python:{version}-slim",
        ) from exc
    if found != options.python_version:
        setting = python_image_setting(options.python_image)
        how = (f"the template {setting!r} gives it" if is_template(setting)
               else f"a fixed root image ({setting!r}) serves every Python")
        raise UsageError(
            f"the job asks for Python {options.python_version} but the root image {root_image} has "
            f"Python {found} ({how})",
            hint="give a template with {version} in --python-image or RACETRACK_PYTHON_IMAGE, e.g. "
            "'python:{version}-slim', or set python.python_version to " + repr(found),
        )


def build_base_image(engine: Engine, options: BaseImageOptions) -> BuiltImage:
    """Build the base image of ``options.python_version`` from the packaged sources."""
    root = base_context_dir(options)
    check_root_python(engine, options)
    root_image = options.root_image
    root_id = engine.image_id(root_image)
    with tempfile.TemporaryDirectory(prefix="racetrack-base-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        copy_context(root, context)
        if options.ca_cert is not None:
            shutil.copyfile(options.ca_cert, context / CA_BUNDLE_FILE)
        digest = context_digest(root)
        built = engine.build(
            context,
            tag=options.ref,
            buildargs={"PYTHON_IMAGE": root_image},
            network=options.network,
            nocache=options.nocache,
            labels={
                CONTEXT_LABEL: digest,
                PYTHON_IMAGE_LABEL: root_image,
                PYTHON_IMAGE_ID_LABEL: root_id or "",
                PYTHON_VERSION_LABEL: options.python_version,
            },
        )
    # Also under a tag of these sources: another racetrack-build version on the same engine
    # retags racetrack/python3:<tag> for its own wrapper, and this version then finds its image
    # here instead of building it again (and again, each time the other builds).
    engine.tag(built.id, sources_ref(options.tag, digest, options.python_version))
    return built


def sources_ref(tag: str, digest: str, python_version: str = DEFAULT_PYTHON_VERSION) -> str:
    """``racetrack/python3:<tag>[-py<version>]-<first 12 of the sources' digest>``: the base image
    of one wrapper."""
    return f"{base_image_ref(tag, python_version)}-{digest[:12]}"


def _stale_reason(
    engine: Engine, options: BaseImageOptions, labels: dict[str, str] | None, digest: str,
    ref: str | None = None,
) -> str | None:
    """Why the base image ``ref`` (whose labels are given, None when missing) must be built, or None;
    ``digest`` is the wrapper sources' (``context_digest``).

    Only images this tool built (they carry our labels) are judged stale: from other wrapper
    sources, on another root image, or on a root image that has changed since. A base image pulled
    from a registry under the same name is used as it is.
    """
    ref = ref or options.ref
    if labels is None:
        return f"{ref} is not on the engine"
    if CONTEXT_LABEL not in labels:
        return None
    if labels[CONTEXT_LABEL] != digest:
        return f"{ref} was built from other wrapper sources"
    if labels.get(PYTHON_VERSION_LABEL, DEFAULT_PYTHON_VERSION) != options.python_version:
        return f"{ref} was built for Python {labels.get(PYTHON_VERSION_LABEL, DEFAULT_PYTHON_VERSION)}"
    built_on = labels.get(PYTHON_IMAGE_LABEL)
    if options.python_image and built_on != options.root_image:
        return f"{ref} was built on {built_on}, not {options.root_image}"
    current_id = engine.image_id(built_on) if built_on else None
    if current_id and labels.get(PYTHON_IMAGE_ID_LABEL) and current_id != labels[PYTHON_IMAGE_ID_LABEL]:
        return f"{ref} was built on an older {built_on}"
    return None


def ensure_base_image(engine: Engine, options: BaseImageOptions) -> str:
    """Make sure the base image is on the engine; build it when missing or stale. Returns the ref to
    build FROM: the tag of these wrapper sources (``sources_ref``), which no other version of the
    tool moves, so a build never starts from another version's wrapper even while one retags
    ``racetrack/python3:<tag>`` beside it; ``options.ref`` itself for a base image this tool did not
    build (pulled under that name). Builds of the same base on one engine wait for each other
    (``engine_lock``): six jobs started together on a fresh engine build it once."""
    digest = context_digest(base_context_dir(options))  # read once: it hashes every source file
    found = _usable_base(engine, options, digest)
    if found is not None:
        return found
    with engine_lock(options.ref):
        found = _usable_base(engine, options, digest, quiet=True)  # made by the build we waited for
        if found is not None:
            return found
        labels = engine.image_labels(options.ref)
        reporting.progress(f"building the base image: {_stale_reason(engine, options, labels, digest)}")
        if options.python_image is None and labels and labels.get(PYTHON_IMAGE_LABEL):
            # A rebuild for new wrapper sources keeps the root image the stale one was built on.
            options = replace(options, python_image=labels[PYTHON_IMAGE_LABEL])
        build_base_image(engine, options)
    return sources_ref(options.tag, digest, options.python_version)


def _usable_base(engine: Engine, options: BaseImageOptions, digest: str, quiet: bool = False) -> str | None:
    """The ref of a base image on the engine that a build can use as it is, or None."""
    labels = engine.image_labels(options.ref)
    reason = _stale_reason(engine, options, labels, digest)
    if reason is None and labels is not None and CONTEXT_LABEL not in labels:
        return options.ref  # not ours (pulled under the name): used as it is
    ours = sources_ref(options.tag, digest, options.python_version)
    if reason is None and labels is not None:
        image_id = engine.image_id(options.ref)
        if image_id is not None and engine.image_id(ours) != image_id:
            engine.tag(image_id, ours)  # made before that tag existed, or under the name alone
        return ours
    if _stale_reason(engine, options, engine.image_labels(ours), digest, ours) is None:
        if not quiet:
            reporting.progress(f"using {ours} ({reason})")
        return ours
    return None
