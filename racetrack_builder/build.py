"""Build a job's image: base image, rendered context, docker-py build, tag.

The context is written to a temporary folder that is removed on every exit path. A job with
requirements is built in three steps: its "system" stage (base image + apt), the install step on
top of it (install.py: the only place secret build values go), then the rest of the Dockerfile
FROM the installed packages.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from . import reporting
from .base_image import BaseImageOptions, ensure_base_image
from .base_registry import pull_base_image, pull_build_tools
from .build_tools import ensure_build_tools, ensure_build_tools_image, tools_ref
from .certs import extra_certificates
from .contract import IMAGE_CA_BUNDLE
from .engine import BuildKitUnavailable, BuiltImage, Engine
from .images import check_image_ref, job_image_ref
from .install import (
    CACHE_REPOSITORY,
    InstallRequest,
    install_requirements,
    installed_ref,
    portable_install_key,
)
from .job import Job
from .registry_cache import CacheRef, CacheReport, RegistryCache, copied_files, system_key
from .render import (
    PACKAGES_IMAGE_ARG,
    BuildContext,
    RenderOptions,
    build_args,
    plan_job_requirements,
    write_context,
)
from .requirements import RequirementsPlan


@dataclass(frozen=True)
class BuildOptions:
    tag: str | None = None
    registry: str | None = None
    nocache: bool = False
    network: str | None = None
    ca_cert: Path | None = None
    python_image: str | None = None
    cache_from: tuple[CacheRef, ...] = ()  # registry caches to reuse the job's layers from
    cache_to: CacheRef | None = None  # where the job's cache goes after the build
    base_registry: str | None = None  # where a missing base image is pulled from
    build_base: bool = False  # build a missing base image here even with base_registry


@dataclass(frozen=True)
class BuildResult:
    image: BuiltImage
    base_image: str
    commit: str | None
    cache: CacheReport | None = None  # set when a registry cache was given


@dataclass(frozen=True)
class _Packages:
    """The install's image, and what the registry cache keeps of it."""

    ref: str
    system_id: str | None  # None when the install came from the cache whole
    system_key: str
    install_key: str


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
    started = time.monotonic()
    ref = check_image_ref(
        job_image_ref(job.manifest.name, job.manifest.version, tag=options.tag, registry=options.registry),
        "--tag" if options.tag else "--registry with NAME:VERSION" if options.registry else "NAME:VERSION",
    )
    reporting.phase("base image")
    base_options = BaseImageOptions(
        tag=job.manifest.base_image_tag,
        python_version=job.manifest.python.python_version,
        python_image=options.python_image,
        ca_cert=options.ca_cert,
        network=options.network,
    )
    if options.base_registry and not options.build_base:
        pull_base_image(engine, base_options, options.base_registry)
    base = ensure_base_image(engine, base_options)
    cache = RegistryCache(engine, job.manifest.name, options.cache_from, options.cache_to,
                          read=not options.nocache)
    target = f"{ref.rpartition(':')[0] or ref}:candidate-{uuid.uuid4().hex[:12]}" if verify else ref
    packages: _Packages | None = None
    plan = plan_job_requirements(job.manifest, job.source)
    with tempfile.TemporaryDirectory(prefix="racetrack-context-") as tmp:
        apt_ca = (
            _apt_certificates(engine, base, options.ca_cert) if job.manifest.system_dependencies else None
        )
        image = None
        if plan is not None and _one_buildkit_build(job, engine, options):
            image = _build_whole(job, engine, options, base_options, base, apt_ca, target, Path(tmp))
        if image is None:
            reporting.phase(job.manifest.name)
            context = _write(job, options, base, "engine", Path(tmp) / "context")
            args = build_args(context, apt_ca)
            packages = (
                None if plan is None else
                _packages_image(job, plan, engine, options, base_options, context, args, base, cache,
                                Path(tmp))
            )
            if packages is not None:
                args[PACKAGES_IMAGE_ARG] = packages.ref
            image = engine.build(
                context.path,
                tag=target,
                buildargs=args,
                network=options.network,
                nocache=options.nocache,
                cache_from=_job_cache_from(engine, cache, ref),
                # The job's own steps need no BuildKit session (the install, with its secrets, ran
                # before them), and BuildKit runs them in a fraction of the classic builder's time.
                # A registry cache keeps to the classic builder: its layers are the ones it reuses.
                buildkit=cache.target is None,
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
    # The build's time: base image, install and the job's own steps (the cache's push is not).
    duration = time.monotonic() - started
    if cache.target is not None:
        reporting.phase("cache")
        stages: list[tuple[str, str, str | None]] = []
        if packages is not None:
            if packages.system_id is not None:
                stages.append((packages.system_id, "system", packages.system_key))
            stages.append((packages.ref, "install", packages.install_key))
        stages.append((image.id, "job", None))
        cache.publish(stages)
    image = replace(image, duration=duration)
    used = bool(options.cache_from or options.cache_to)
    return BuildResult(image=image, base_image=base, commit=job.source.commit,
                       cache=cache.report if used else None)


def _one_buildkit_build(job: Job, engine: Engine, options: BuildOptions) -> bool:
    """Whether the whole job of a job with requirements, its install step included, is one build
    of the engine's BuildKit: a job with no secret build env (the install's secrets would need a BuildKit
    session, which only the Docker CLI holds), no registry cache (which reuses the classic
    builder's layers), on an engine whose BuildKit takes the build. It saves the install
    container's start, commit and removal: about 1.4 s of a data-science job's cold build
    (benchmarks/README-build.md)."""
    return (
        not job.build_secrets
        and not (options.cache_from or options.cache_to)
        and engine.buildkit_usable(options.network)
    )


def _build_whole(
    job: Job,
    engine: Engine,
    options: BuildOptions,
    base_options: BaseImageOptions,
    base: str,
    apt_ca: str | None,
    target: str,
    scratch: Path,
) -> BuiltImage | None:
    """The job built as ``render`` writes it for BuildKit (the install a ``RUN`` step with the
    tools mounted from their image); None when the engine's BuildKit would not take it, said as
    progress: the caller then builds it with the install container."""
    reporting.phase("install tools")
    if options.base_registry and not options.build_base:
        pull_build_tools(engine, base_options.python_version, options.base_registry)
    ensure_build_tools_image(engine, base_options)
    reporting.phase(job.manifest.name)
    context = _write(job, options, base, "buildkit", scratch / "buildkit-context")
    try:
        return engine.build(
            context.path,
            tag=target,
            buildargs=build_args(context, apt_ca),
            network=options.network,
            nocache=options.nocache,
            require_buildkit=True,
        )
    except BuildKitUnavailable as exc:
        reporting.progress(f"{exc.message}; installing the requirements in a container instead")
        return None


def _write(job: Job, options: BuildOptions, base: str, install: str, folder: Path) -> BuildContext:
    return write_context(
        job.manifest,
        job.source,
        folder,
        RenderOptions(
            base_image=base,
            secret_build_names=tuple(job.build_secrets),
            manifest_file=job.manifest_path.name,
            install=install,
        ),
        ca_cert_path=options.ca_cert,
    )


def _job_cache_from(engine: Engine, cache: RegistryCache, ref: str) -> list[str]:
    """The images the job's own steps may reuse layers of: the cache's job image, and then this
    engine's previous build of the job, since the builder, once given any, uses no others."""
    if not cache.reads:
        return []
    pulled = cache.find("job")
    cache.report.job_cache = pulled
    if pulled is None:
        return []
    return [pulled] + ([ref] if engine.image_id(ref) is not None else [])


def _packages_image(
    job: Job,
    plan: RequirementsPlan,
    engine: Engine,
    options: BuildOptions,
    base_options: BaseImageOptions,
    context: BuildContext,
    args: dict[str, str],
    base: str,
    cache: RegistryCache,
    scratch: Path,
) -> _Packages | None:
    """The image with the job's requirements (``plan``) installed by install.py: the
    "system" stage is built first, as the image the install runs in. With a registry cache, the
    install's commit (which holds the system stage below it) is looked for first, then the system
    stage alone."""
    if context.system_dockerfile is None:
        return None
    skey = ikey = ""
    if cache.reads or cache.target is not None:  # keys cost an scrypt of the secrets: only for a cache
        dockerfile = (context.path / context.system_dockerfile).read_text(encoding="utf-8")
        skey = system_key(engine.image_id(base) or base, dockerfile, args,
                          copied_files(context.path, dockerfile))
        ikey = portable_install_key(_install_request(job, options, skey, "", plan), skey,
                                    tools_ref(job.manifest.python.python_version))
    if cache.reads:
        installed = cache.find("install", ikey, base_image=base)
        if installed is not None:
            cache.report.system, cache.report.install = "registry", "registry"
            reporting.progress("installing requirements: reusing the packages of the registry cache")
            return _Packages(installed, None, skey, ikey)
    system_cached = cache.find("system", skey, base_image=base) if cache.reads else None
    # A tag of this build only, so builds of the same job at once never cross; the install runs
    # on the image id, and the tag goes when it is done.
    system_tag = f"{CACHE_REPOSITORY}:{job.manifest.name}-system-{uuid.uuid4().hex[:12]}"
    tagged = system_cached is not None or bool(job.manifest.system_dependencies)
    if system_cached is not None:
        cache.report.system = "registry"
        reporting.progress("system packages: reusing the system stage of the registry cache")
        engine.tag(system_cached, system_tag)
        system_id = engine.image_id(system_cached) or system_cached
    elif not job.manifest.system_dependencies:
        # The stage is the base image as it is (FROM, nothing else): the id a build of it gives,
        # under the base image's own tag (no tag of this build's is needed).
        cache.report.system = "built"
        system_id = engine.image_id(base) or base
    else:
        cache.report.system = "built"
        system_id = engine.build(
            _system_context(context, scratch),
            tag=system_tag,
            buildargs=args,
            network=options.network,
            nocache=options.nocache,
        ).id
    try:
        reporting.phase("install tools")
        if options.base_registry and not options.build_base:
            pull_build_tools(engine, base_options.python_version, options.base_registry)
        tools = ensure_build_tools(engine, base_options)
        reporting.phase(job.manifest.name)
        request = _install_request(job, options, system_id, tools, plan)
        local = installed_ref(request)
        reused = not options.nocache and engine.image_id(local) is not None
        cache.report.install = "engine" if reused else "installed"
        return _Packages(install_requirements(engine, request), system_id, skey, ikey)
    finally:
        if tagged:
            with contextlib.suppress(Exception):
                engine.untag(system_tag)


def _system_context(context: BuildContext, scratch: Path) -> Path:
    """A folder holding the system stage's Dockerfile alone: the stage copies no file in (apt's
    certificates are a build argument), and the whole context, the job's files and models with it,
    would otherwise be sent to the engine once more."""
    assert context.system_dockerfile is not None
    folder = scratch / "system"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(context.path / context.system_dockerfile, folder / "Dockerfile")
    return folder


def _install_request(
    job: Job, options: BuildOptions, system_image: str, tools: str, plan: RequirementsPlan
) -> InstallRequest:
    return InstallRequest(
        job_name=job.manifest.name,
        system_image=system_image,
        tools_volume=tools,
        requirements_path=job.manifest.python.requirements_path or "",
        plan=plan,
        job_root=job.source.job_root,
        job_files=tuple(job.source.files),
        python_version=job.manifest.python.python_version,
        build_env=job.manifest.build_env,
        secrets=job.build_secrets,
        ca_cert=options.ca_cert,
        network=options.network,
        nocache=options.nocache,
        check_requirements=job.manifest.check_requirements,
        python_version_field=job.manifest.python_version_field,
    )


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
