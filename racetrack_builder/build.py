"""Build a job's image: base image, rendered context, docker-py build, tag.

The context is written to a temporary folder that is removed on every exit path; secret build
values travel only as build arguments.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from . import reporting
from .base_image import BaseImageOptions, ensure_base_image
from .certs import extra_certificates
from .contract import IMAGE_CA_BUNDLE
from .engine import BuiltImage, Engine
from .images import check_image_ref, job_image_ref
from .job import Job
from .render import RenderOptions, build_args, write_context


@dataclass(frozen=True)
class BuildOptions:
    tag: str | None = None
    registry: str | None = None
    nocache: bool = False
    network: str | None = None
    ca_cert: Path | None = None
    python_image: str | None = None


@dataclass(frozen=True)
class BuildResult:
    image: BuiltImage
    base_image: str
    commit: str | None


def build_job(
    job: Job,
    engine: Engine,
    options: BuildOptions,
    *,
    verify: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build ``job`` into ``[registry/]name:version`` (or ``options.tag``).

    With ``verify`` (the smoke test), the image is built under a unique candidate tag, handed to
    ``verify``, and given its real tag only when ``verify`` returns: a failing check leaves neither
    a new image under the tag nor a clobbered previous one.
    """
    ref = check_image_ref(
        job_image_ref(job.manifest.name, job.manifest.version, tag=options.tag, registry=options.registry),
        "--tag" if options.tag else "--registry with NAME:VERSION" if options.registry else "NAME:VERSION",
    )
    reporting.phase("base image")
    base = ensure_base_image(
        engine,
        BaseImageOptions(
            tag=job.manifest.base_image_tag,
            python_version=job.manifest.python.python_version,
            python_image=options.python_image,
            ca_cert=options.ca_cert,
            network=options.network,
        ),
    )
    reporting.phase(job.manifest.name)
    with tempfile.TemporaryDirectory(prefix="racetrack-context-") as tmp:
        context = write_context(
            job.manifest,
            job.source,
            Path(tmp) / "context",
            RenderOptions(
                base_image=base,
                secret_build_names=tuple(job.build_secrets),
                manifest_file=job.manifest_path.name,
            ),
            ca_cert_path=options.ca_cert,
        )
        apt_ca = (
            _apt_certificates(engine, base, options.ca_cert) if job.manifest.system_dependencies else None
        )
        target = f"{ref.rpartition(':')[0] or ref}:candidate-{uuid.uuid4().hex[:12]}" if verify else ref
        image = engine.build(
            context.path,
            tag=target,
            buildargs=build_args(context, job.build_secrets, apt_ca),
            network=options.network,
            nocache=options.nocache,
        )
    if verify is not None:
        try:
            verify(target)
            engine.tag(image.id, ref)
        except BaseException:
            # The first failure (a failed smoke test, Ctrl-C) is what the user must see: a failure
            # to drop the candidate tag now must not replace it.
            with contextlib.suppress(Exception):
                engine.untag(target)
            raise
        engine.untag(target)
        image = replace(image, ref=ref)
    return BuildResult(image=image, base_image=base, commit=job.source.commit)


def _apt_certificates(engine: Engine, base_image: str, ca_cert: Path | None) -> str | None:
    """The certificates of ``--ca-cert`` that apt in the base image does not trust yet."""
    if ca_cert is None:
        return None
    trusted = engine.read_file(base_image, IMAGE_CA_BUNDLE)
    return extra_certificates(
        ca_cert.read_text(encoding="utf-8", errors="replace"),
        trusted.decode("utf-8", "replace") if trusted else None,
        str(ca_cert),
    )
