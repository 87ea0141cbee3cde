"""The build tools image: uv, git and the install script the install step runs (``base-images/build-tools``).

No job image holds these: the install container mounts them from a volume the engine fills from
this image (install.py). One image per Python root image, since git comes with the libraries of the
Debian release it was built on; each is tagged with the digest of its sources, so different versions
of racetrack-build on one engine never overwrite each other's.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from . import reporting
from .base_image import BaseImageOptions, check_root_python, context_digest, copy_context
from .contract import CA_BUNDLE_FILE, DEFAULT_PYTHON_VERSION, INSTALL_SCRIPT_NAME
from .engine import Engine
from .engine_lock import engine_lock
from .errors import UsageError
from .resources import base_images_dir

TOOLS_REPOSITORY = "racetrack/build-tools"
# Where the tools are in their image (base-images/build-tools/Dockerfile puts them there).
TOOLS_PATH = "/opt/racetrack-tools"
# Where the install step sees them: a folder every Debian image has, empty, so the mount point adds
# nothing to the committed layer (a new mount point would leave an empty folder in it).
TOOLS_MOUNT = "/mnt"
INSTALL_SCRIPT = f"{TOOLS_MOUNT}/{INSTALL_SCRIPT_NAME}"


def tools_context_dir() -> Path:
    root = base_images_dir() / "build-tools"
    if not (root / "Dockerfile").is_file():
        raise UsageError(f"no build tools sources at {root}", hint="reinstall racetrack-build")
    return root


def tools_ref(python_version: str = DEFAULT_PYTHON_VERSION) -> str:
    """``racetrack/build-tools:py<version>-<first 12 of the sources' digest>``."""
    return f"{TOOLS_REPOSITORY}:py{python_version}-{context_digest(tools_context_dir())[:12]}"


def tools_volume(image_id: str) -> str:
    """The volume holding one tools image's files: named for the image, so it is never stale."""
    return f"racetrack-build-tools-{image_id.removeprefix('sha256:')[:16]}"


def ensure_build_tools(engine: Engine, options: BaseImageOptions) -> str:
    """The volume of the build tools for ``options.python_version`` (the install container mounts
    it), their image built and the volume filled when missing."""
    ref = tools_ref(options.python_version)
    # Concurrent builds on one engine make and fill them once (engine_lock.py).
    with engine_lock(ref):
        volume = tools_volume(_ensure_image(engine, options, ref))
        engine.fill_volume(volume, ref, TOOLS_PATH)
    return volume


def ensure_build_tools_image(engine: Engine, options: BaseImageOptions) -> str:
    """The ref of the build tools' image for ``options.python_version`` (a BuildKit install step
    mounts it), built when missing."""
    ref = tools_ref(options.python_version)
    with engine_lock(ref):
        _ensure_image(engine, options, ref)
    return ref


def _ensure_image(engine: Engine, options: BaseImageOptions, ref: str) -> str:
    image_id = engine.image_id(ref)
    if image_id is None:
        reporting.progress(f"building the install tools ({ref} is not on the engine)")
        image_id = _build(engine, replace(options, nocache=False), ref)
    return image_id


def _host_uv(engine: Engine) -> Path | None:
    """This machine's uv binary, when the engine can run it (Linux, the same architecture)."""
    if platform.system() != "Linux" or engine.architecture() != platform.machine():
        return None
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    try:
        return Path(find_uv_bin())
    except FileNotFoundError:
        return None


def _build(engine: Engine, options: BaseImageOptions, ref: str) -> str:
    check_root_python(engine, options)
    root = tools_context_dir()
    with tempfile.TemporaryDirectory(prefix="racetrack-tools-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        copy_context(root, context)
        if options.ca_cert is not None:
            shutil.copyfile(options.ca_cert, context / CA_BUNDLE_FILE)
        uv = _host_uv(engine)
        if uv is not None:
            shutil.copyfile(uv, context / "uv")
        built = engine.build(
            context,
            tag=ref,
            buildargs={"PYTHON_IMAGE": options.root_image},
            network=options.network,
        )
    return built.id
