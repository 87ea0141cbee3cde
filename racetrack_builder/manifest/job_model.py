"""The ``job.yaml`` model (Racetrack 2.x): the fields as the user writes them, for validation and schema.

The fields both formats share are fatman.yaml's own definitions (:class:`~.model.Manifest`'s
fields, taken as they are), so their rules, messages and schema cannot drift apart; the fields
only 2.x has read their rules from :mod:`.job_fields`. What the fields mean for the build (a
:class:`~.job_manifest.JobManifest`) is :mod:`.job_yaml`'s to work out.

``extra="forbid"`` everywhere, ``x-`` keys included: Racetrack 2.x rejects unknown keys at the top
level, under ``git`` and under ``resources``; racetrack-build rejects them in ``jobtype_extra`` too.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, create_model

from ..contract import DEFAULT_PYTHON_VERSION, PYTHON_VERSIONS
from . import fields, job_fields
from .model import Manifest, _Strict

# Both formats' fields, with fatman.yaml's definitions.
SHARED_FIELDS = ("name", "version", "system_dependencies", "build_env", "runtime_env", "public_endpoints",
                 "secret_build_env_file", "secret_runtime_env_file", "labels")
TEXT_SECTIONS = ("build_env", "runtime_env", "labels")

_FLAG_SCHEMA: dict[str, Any] = {"type": ["boolean", "string"], "enum": [True, False, "true", "false"]}
def _COUNT_SCHEMA(schema: dict[str, Any]) -> None:  # noqa: N802 (named as the other schema extras)
    """A count: a whole number or its digits as text (2.x reads both), or null (unset). Replaces
    pydantic's ``anyOf`` of integer and null, which would refuse the text an editor sees as valid."""
    schema.pop("anyOf", None)
    schema.update({"type": ["integer", "string", "null"], "minimum": 0, "pattern": "^[0-9]+$"})



Flag = Annotated[bool, BeforeValidator(job_fields.coerce_flag)]
Count = Annotated[int, BeforeValidator(job_fields.coerce_count)]


class JobtypeExtra(_Strict):
    """The python3 job type's settings (``jobtype_extra:``; formerly ``python:``)."""

    entrypoint_path: Annotated[str, AfterValidator(fields.check_entrypoint_path)] = Field(
        description="Path (relative to git.directory) of the .py file with the entrypoint class",
        examples=[job_fields.JOB_ENTRYPOINT_EXAMPLE],
        json_schema_extra={"pattern": fields.ENTRYPOINT_PATH_RULE.pattern},
    )
    entrypoint_class: Annotated[str, AfterValidator(fields.check_entrypoint_class)] | None = Field(
        None, description="Name of the entrypoint class (discovered when omitted: the file must "
                          "define exactly one class)", examples=["JobEntrypoint"],
        json_schema_extra={"pattern": fields.IDENTIFIER_PATTERN},
    )
    requirements_path: Annotated[str, AfterValidator(fields.check_requirements_path)] | None = Field(
        None, description="Path (relative to git.directory) of a pip requirements file",
        examples=["requirements.txt"], json_schema_extra={"pattern": fields.REQUIREMENTS_PATH_RULE.pattern},
    )
    check_requirements: Flag = Field(
        True, description="Run pip check after installing the requirements", json_schema_extra=_FLAG_SCHEMA)
    python_version: Annotated[str, AfterValidator(fields.check_python_version)] = Field(
        DEFAULT_PYTHON_VERSION,
        description="The job's Python, MAJOR.MINOR in quotes: " + ", ".join(PYTHON_VERSIONS),
        examples=[DEFAULT_PYTHON_VERSION], json_schema_extra={"enum": list(PYTHON_VERSIONS)},
    )
    debian_version: Annotated[str, AfterValidator(job_fields.check_debian_version)] = Field(
        "slim-bullseye", description="Racetrack 2.x's Debian flavour of the python image; "
                                     "racetrack-build uses its own root image (see --python-image)",
        json_schema_extra={"pattern": job_fields.DEBIAN_VERSION_PATTERN},
    )
    debian_backports: Flag = Field(
        False, description="Racetrack 2.x: add the bullseye-backports apt source (not used by "
                           "racetrack-build)", json_schema_extra=_FLAG_SCHEMA)
    memray_profiler: Flag = Field(
        False, description="Racetrack 2.x: run first under memray (not used by racetrack-build)",
        json_schema_extra=_FLAG_SCHEMA)
    max_concurrency: Count | None = Field(
        None, description="Concurrent perform/auxiliary calls (per worker process); the rest wait. "
                          "0 or unset: no limit", examples=[4], json_schema_extra=_COUNT_SCHEMA)
    max_concurrency_queue: Count | None = Field(
        None, description="Calls that may wait for a slot; those beyond get 429", examples=[10],
        json_schema_extra=_COUNT_SCHEMA)
    home_page: Annotated[str, AfterValidator(job_fields.check_home_page)] = Field(
        job_fields.HOME_PAGE_EXAMPLE, description="Where / redirects to, after the job's base path",
        examples=["/docs", "/api/v1/webview/"], json_schema_extra={"pattern": job_fields.HOME_PAGE_PATTERN},
    )


# Keys read from jobtype_extra only (Racetrack 2.x's runtime ignores them in the deprecated blocks).
RUNTIME_KEYS = ("max_concurrency", "max_concurrency_queue", "home_page")


class JobGit(_Strict):
    """Where the job's source lives (2.x rules: an https:// remote; no branch = its default branch)."""

    remote: Annotated[str, AfterValidator(job_fields.check_https_remote)] = Field(
        description="https:// URL of the job's git repository",
        examples=["https://github.com/you/your-job"],
        json_schema_extra={"minLength": 1, "pattern": job_fields.HTTPS_REMOTE_PATTERN},
    )
    branch: Annotated[str, AfterValidator(fields.check_branch)] | None = Field(
        None, description="Branch to build (unset: the remote's default branch)", examples=["main"],
        json_schema_extra={"pattern": fields.BRANCH_PATTERN},
    )
    directory: Annotated[str, AfterValidator(fields.check_directory)] = Field(
        ".", description="Subdirectory of the repository holding the job: build context and the "
                         "job's working directory", examples=[".", "services/supersmart"],
        json_schema_extra={"pattern": fields.DIRECTORY_RULE.pattern},
    )


_quantity = Annotated[str, AfterValidator(job_fields.check_quantity)] | None
_QUANTITY_SCHEMA: dict[str, Any] = {"pattern": job_fields.QUANTITY_PATTERN}


class Resources(_Strict):
    """Kubernetes requests and limits (used by Racetrack's infrastructure, not by the image)."""

    memory_min: _quantity = Field(None, examples=["256Mi"], json_schema_extra=_QUANTITY_SCHEMA)
    memory_max: _quantity = Field(None, examples=["1Gi"], json_schema_extra=_QUANTITY_SCHEMA)
    cpu_min: _quantity = Field(None, examples=["10m"], json_schema_extra=_QUANTITY_SCHEMA)
    cpu_max: _quantity = Field(None, examples=["1000m"], json_schema_extra=_QUANTITY_SCHEMA)


def _deprecated(replacement: str, description: str) -> dict[str, Any]:
    return {"description": f"Deprecated: use {replacement}: instead. {description}",
            "json_schema_extra": {"deprecated": True,
                                  "deprecationMessage": f"Deprecated. Use {replacement}: instead."}}


_Shared = create_model(  # type: ignore[call-overload]
    "_Shared", __base__=_Strict,
    **{name: (Manifest.model_fields[name].annotation, Manifest.model_fields[name]) for name in SHARED_FIELDS},
)
_Jobtype = Annotated[str, AfterValidator(job_fields.check_jobtype)]
_InfrastructureTarget = Annotated[str, AfterValidator(job_fields.check_infrastructure_target)]
_JOBTYPE_SCHEMA: dict[str, Any] = {"pattern": job_fields.JOBTYPE_PATTERN}


class JobYaml(_Shared):  # type: ignore[misc, valid-type]
    """A ``job.yaml`` as written: Racetrack 2.x's fields and rules."""

    owner_email: Annotated[str, AfterValidator(job_fields.check_job_email)] = Field(
        description="Email address of the job's owner", examples=["nobody@example.com"],
        json_schema_extra={"pattern": "^.+@.+$"},
    )
    git: JobGit = Field(description="Where the job's source lives")
    jobtype: _Jobtype | None = Field(
        None, description="Job type and version: python3:<version>, python3:latest or a '*' pattern "
                          "(python3:2.15.*)", examples=[job_fields.JOBTYPE_EXAMPLE, "python3:2.15.1"],
        json_schema_extra=_JOBTYPE_SCHEMA,
    )
    jobtype_extra: JobtypeExtra | None = Field(None, description="The python3 job type's settings")
    replicas: Annotated[int, BeforeValidator(job_fields.coerce_replicas)] = Field(
        1, description=f"Instances Racetrack runs (at most {job_fields.MAX_REPLICAS}); a label of the image",
        examples=[1], json_schema_extra={"maximum": job_fields.MAX_REPLICAS},
    )
    resources: Resources | None = Field(None, description="Memory and CPU requests and limits; labels "
                                                           "of the image")
    infrastructure_target: _InfrastructureTarget | None = Field(
        None, description="Racetrack infrastructure plugin to deploy to (unset: the default); a label",
        examples=["kubernetes"], json_schema_extra={"pattern": job_fields.INFRASTRUCTURE_RULE.pattern},
    )
    image_type: Annotated[str, AfterValidator(job_fields.check_image_type)] = Field(
        "docker", description="Image type: only docker",
        json_schema_extra={"enum": list(job_fields.IMAGE_TYPES)},
    )
    extends: Annotated[str, AfterValidator(job_fields.check_extends)] | None = Field(
        None, description="Base manifest this one overlays, relative to this file's folder: mappings "
                          "merge, other values replace", examples=[job_fields.EXTENDS_EXAMPLE],
        json_schema_extra={"pattern": job_fields.EXTENDS_RULE.pattern},
    )
    # Deprecated names, still read (with a warning).
    lang: _Jobtype | None = Field(None, **_deprecated("jobtype", "The job type."))
    python: JobtypeExtra | None = Field(None, **_deprecated("jobtype_extra", "The job type's settings."))
    golang: JobtypeExtra | None = Field(None, **_deprecated("jobtype_extra", "The job type's settings."))
    docker: JobtypeExtra | None = Field(None, **_deprecated("jobtype_extra", "The job type's settings."))
    wrapper_properties: JobtypeExtra | None = Field(
        None, **_deprecated("jobtype_extra", "The job type's settings."))


# What a missing section is shown as, in the "is missing (add ...)" message.
SECTION_EXAMPLES: dict[str, dict[str, str]] = {
    "git": {"remote": fields.REMOTE_EXAMPLE},
    "jobtype_extra": {"entrypoint_path": job_fields.JOB_ENTRYPOINT_EXAMPLE},
}
REQUIRED_FIELDS = ("name", "owner_email", "git.remote", "jobtype", "jobtype_extra.entrypoint_path")
