"""Validating a job.yaml (Racetrack 2.x) and turning it into the :class:`JobManifest` the build uses.

The data (one file, or layers merged by :mod:`.overlays` and :mod:`.overrides`) is checked by
:class:`~.job_model.JobYaml`, field by field, and by the rules across fields that 2.x states:

- exactly one of ``jobtype`` and its deprecated name ``lang``;
- at most one of ``jobtype_extra`` and its deprecated names ``python``, ``golang``, ``docker``,
  ``wrapper_properties``; without jobtype_extra the build reads the deprecated block, while the
  runtime settings (max_concurrency, max_concurrency_queue, home_page) are read from
  jobtype_extra only, as Racetrack 2.x's runtime does (a warning says so);
- runtime_env may not set a variable the image sets from jobtype_extra.

Deprecated fields are warned of as 2.x words it: ``<field>: is deprecated. Use <replacement>: instead.``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from racetrack_builder.errors import Problem

from .job_fields import (
    DEPRECATED_FIELDS,
    EXTRA_BLOCKS,
    JOB_ENTRYPOINT_EXAMPLE,
    JOBTYPE_EXAMPLE,
    quantity_value,
)
from .job_manifest import WRAPPER_ENV_BY_KEY, Deployment, JobGitConfig, JobManifest, JobSettings
from .job_model import REQUIRED_FIELDS, RUNTIME_KEYS, SECTION_EXAMPLES, TEXT_SECTIONS, JobtypeExtra, JobYaml
from .model import PythonConfig
from .problems import Layout, validation_problems
from .sources import Layers
from .text_sections import with_source_text

JOB_LAYOUT = Layout(model=JobYaml, section_examples=SECTION_EXAMPLES, text_sections=TEXT_SECTIONS,
                    extension_prefix=None, required=REQUIRED_FIELDS)
# The tool's own base image: jobtype's version names a Racetrack plugin, not one of its images.
BASE_LANG = "python3:latest"
MEMORY_MAX_K8S = 8 * 2**30


def validate_job(layers: Layers, notices: tuple[str, ...] = ()) -> tuple[JobManifest | None, list[Problem]]:
    """The JobManifest of the merged data, or None and every problem found."""
    problems = _across_fields(layers)
    job = None
    try:
        job = JobYaml.model_validate(with_source_text(layers, JOB_LAYOUT))
    except ValidationError as err:
        problems += validation_problems(err, layers, JOB_LAYOUT, layers.attribute)
    if job is None or problems:
        return None, problems
    manifest = to_job_manifest(job, (*notices, *_warnings(layers)))
    problems = _env_collisions(manifest, layers)
    return (None, problems) if problems else (manifest, [])


def to_job_manifest(job: JobYaml, notices: tuple[str, ...] = ()) -> JobManifest:
    """What a valid job.yaml means for the build (fields already validated: nothing is checked)."""
    block = next(name for name in EXTRA_BLOCKS if getattr(job, name) is not None)
    extra: JobtypeExtra = getattr(job, block)
    runtime = extra if block == "jobtype_extra" else JobtypeExtra.model_construct()
    settings = JobSettings.model_construct(
        check_requirements=extra.check_requirements,
        max_concurrency=runtime.max_concurrency,
        max_concurrency_queue=runtime.max_concurrency_queue,
        home_page=runtime.home_page,
        debian_version=extra.debian_version,
        debian_backports=extra.debian_backports,
        memray_profiler=extra.memray_profiler,
    )
    resources = job.resources.model_dump(exclude_none=True) if job.resources is not None else {}
    return JobManifest.model_construct(
        name=job.name,
        owner_email=job.owner_email,
        lang=BASE_LANG,
        version=job.version,
        git=JobGitConfig.model_construct(remote=job.git.remote, branch=job.git.branch,
                                         directory=job.git.directory),
        python=PythonConfig.model_construct(
            entrypoint_path=extra.entrypoint_path, entrypoint_class=extra.entrypoint_class,
            requirements_path=extra.requirements_path, python_version=extra.python_version),
        system_dependencies=list(job.system_dependencies),
        build_env=dict(job.build_env),
        runtime_env=dict(job.runtime_env),
        public_endpoints=list(job.public_endpoints),
        secret_build_env_file=job.secret_build_env_file,
        secret_runtime_env_file=job.secret_runtime_env_file,
        labels=dict(job.labels),
        jobtype=job.jobtype or job.lang,
        settings=settings,
        deployment=Deployment.model_construct(
            replicas=job.replicas, resources=resources,
            infrastructure_target=job.infrastructure_target, image_type=job.image_type),
        found_warnings=notices,
        extra_block=block,
    )


# --- rules across fields --------------------------------------------------------------------------


def _problem(layers: Layers, path: tuple[str, ...], message: str, *, key: bool = True) -> Problem:
    position = layers.locate(path, key=key) if layers.entry(path) is not None else layers.start_of(())
    return layers.attribute(Problem(".".join(path), message, position.line, position.column), path)


def _across_fields(layers: Layers) -> list[Problem]:
    data = layers.data if isinstance(layers.data, dict) else {}
    problems = []
    if "jobtype" in data and "lang" in data:
        problems.append(_problem(layers, ("lang",), "cannot be given with jobtype (remove it: lang is "
                                                    "jobtype's deprecated name)"))
    elif "jobtype" not in data and "lang" not in data:
        problems.append(_problem(layers, ("jobtype",), f"is missing (add jobtype: {JOBTYPE_EXAMPLE})"))
    example = f"{{entrypoint_path: {JOB_ENTRYPOINT_EXAMPLE}}}"
    empty = [name for name in EXTRA_BLOCKS if name in data and data[name] is None]
    blocks = [name for name in EXTRA_BLOCKS if data.get(name) is not None]
    # An empty block (its keys commented out) is null in YAML: it says nothing, entrypoint_path included.
    for name in empty:
        problems.append(_problem(layers, (name,), f"is empty (give it the entrypoint: {name}: {example})"))
    if not blocks and not empty:
        problems.append(_problem(layers, ("jobtype_extra",), f"is missing (add jobtype_extra: {example})"))
    for name in blocks[1:]:
        problems.append(_problem(layers, (name,), f"cannot be given with {blocks[0]} (keep one, "
                                                  f"jobtype_extra: {name} is a deprecated name of it)"))
    return problems


# What Racetrack 2.x's infrastructure sets in a job's environment at deploy (spec section 6), beyond
# what the image sets: a runtime_env holding one of them aborts the deploy there, so it is refused
# here, before CI builds an image Racetrack will not run.
INFRA_SET_ENV = frozenset({
    "JOB_MANIFEST_YAML", "JOB_DEPLOYMENT_TIMESTAMP", "AUTH_TOKEN", "REQUEST_TRACING_HEADER",
    "CALLER_NAME_HEADER", "GIT_VERSION", "DEPLOYED_BY_RACETRACK_VERSION", "JOB_TYPE_VERSION",
})


def _env_collisions(manifest: JobManifest, layers: Layers) -> list[Problem]:
    set_by_image = {name: key for key, name in WRAPPER_ENV_BY_KEY.items()}
    problems = []
    image_set = [name for name, _ in manifest.wrapper_env()]
    for name in image_set:
        if name in manifest.runtime_env:
            key = set_by_image.get(name)
            how = f"set jobtype_extra.{key} instead" if key else "choose another name"
            problems.append(_problem(layers, ("runtime_env", name),
                                     f"{name!r} is set by the image of a job.yaml ({how})"))
    for name in sorted(INFRA_SET_ENV.intersection(manifest.runtime_env).difference(image_set)):
        problems.append(_problem(layers, ("runtime_env", name),
                                 f"{name!r} is Racetrack's own (its image or its deploy sets it), and "
                                 "it refuses a job whose runtime_env sets it too (choose another name)"))
    return problems


def _warnings(layers: Layers) -> list[str]:
    data = layers.data
    found = []

    def warn(path: tuple[str, ...], message: str) -> None:
        source = layers.source_of(path)
        position = layers.locate(path, key=True)
        problem = Problem(".".join(path), message, position.line if source.located else None,
                          position.column if source.located else None)
        found.append(problem.format(source.name))

    for name, replacement in DEPRECATED_FIELDS.items():
        if name in data:
            warn((name,), f"is deprecated. Use {replacement}: instead.")
    blocks = [name for name in EXTRA_BLOCKS if isinstance(data.get(name), dict)]
    extra: dict[str, Any] = data.get("jobtype_extra") or {}
    for block in blocks:
        for key in RUNTIME_KEYS:
            if block != "jobtype_extra" and key in data[block]:
                warn((block, key), "is read at run time from jobtype_extra only, as Racetrack 2.x does, so "
                                   "it has no effect here (move it under jobtype_extra:)")
        for key, why in (("debian_version", "its images start from the python image of "
                                            "python_version; see --python-image"),
                         ("debian_backports", "it adds no apt source"),
                         ("memray_profiler", "the job runs without memray")):
            if key in data[block]:
                warn((block, key), f"is not used by racetrack-build ({why}); it is kept as a label")
    if "max_concurrency_queue" in extra and not extra.get("max_concurrency"):
        warn(("jobtype_extra", "max_concurrency_queue"),
             "has no effect without max_concurrency (set jobtype_extra.max_concurrency too)")
    _resource_warnings(layers, warn)
    return found


def _resource_warnings(layers: Layers, warn: Callable[[tuple[str, ...], str], None]) -> None:
    """What Racetrack's Kubernetes infrastructure would refuse at deployment (not the build's business)."""
    resources = layers.data.get("resources")
    if not isinstance(resources, dict):
        return
    try:
        memory = {key: quantity_value(resources[key]) for key in ("memory_min", "memory_max")
                  if isinstance(resources.get(key), str)}
    except ValueError:
        return
    if "memory_max" in memory and memory["memory_max"] > MEMORY_MAX_K8S:
        warn(("resources", "memory_max"), "is more than the 8Gi Racetrack's Kubernetes infrastructure allows")
    if len(memory) == 2 and memory["memory_min"] < memory["memory_max"] / 4:
        warn(("resources", "memory_min"), "is less than a quarter of memory_max, which Racetrack's "
                                          "Kubernetes infrastructure refuses")
