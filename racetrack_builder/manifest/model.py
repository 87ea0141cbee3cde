"""The ``fatman.yaml`` model (pydantic v2): which fields exist, their types, defaults and schema.

``extra="forbid"`` and ``strict=True``, so that unknown keys and wrong types are errors, and
pydantic collects every error at once. The rules of each value live in :mod:`.fields`; the JSON
Schema keywords below read the same definitions (``*_RULE.pattern``, ``*_PATTERN``, the limits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..contract import DEFAULT_PYTHON_VERSION, PYTHON_VERSIONS
from . import fields

# Top-level keys starting with this are the user's own and ignored, as docker-compose does: a place
# for YAML anchors (x-defaults: &env ...) and for other tools' settings. Any other unknown key is
# an error, so that a typo is never silently ignored.
EXTENSION_PREFIX = "x-"
# Mappings whose values are text, YAML scalars being taken as written (``PORT: 8080`` -> "8080").
TEXT_SECTIONS = ("build_env", "runtime_env", "labels")


def _scalars_to_text(value: Any) -> Any:
    """Env and label values: YAML numbers and booleans become the strings the user meant.

    load_manifest replaces them with their source text first (``1.10`` stays "1.10", ``yes``
    stays "yes"); this covers data built in code. A missing value (None) stays an error.
    """
    if value is None:
        return {}  # an empty section, e.g. all its entries commented out
    if not isinstance(value, Mapping):
        return value
    coerced: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, int | float):
            item = str(item)
        elif isinstance(item, datetime | date):
            item = item.isoformat()
        coerced[key] = item
    return coerced


def _none_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


# --- types ----------------------------------------------------------------------------------------

Text = Annotated[str, AfterValidator(fields.check_text)]
EnvName = Annotated[str, AfterValidator(fields.check_env_name)]
RuntimeEnvName = Annotated[str, AfterValidator(fields.check_runtime_env_name)]
LabelKey = Annotated[str, AfterValidator(fields.check_label_key)]
Package = Annotated[str, AfterValidator(fields.check_package)]
Endpoint = Annotated[str, AfterValidator(fields.check_endpoint)]

_ENV_VALUE_SCHEMA = {
    "type": ["string", "number", "boolean"],
    "pattern": fields.NO_CONTROL_PATTERN,
    "description": "A string; numbers and booleans are taken as the text written.",
}


def _env_schema(name_schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": ["object", "null"], "propertyNames": name_schema,
            "additionalProperties": _ENV_VALUE_SCHEMA}


_CLIENT_PATH_SCHEMA: dict[str, Any] = {"minLength": 1, "pattern": fields.CLIENT_PATH_RULE.pattern}


class _Strict(BaseModel):
    # strict: no silent coercion (a YAML number is not a name); env values are coerced on purpose.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class GitConfig(_Strict):
    """Where the job's source lives."""

    remote: Annotated[str, AfterValidator(fields.check_remote)] = Field(
        description="URL of the job's git repository: https://, http://, ssh://, git://, file://, "
                    "user@host:path, or a local path",
        examples=["https://github.com/racetrack/supersmart-model"],
        json_schema_extra={"minLength": 1, "pattern": fields.REMOTE_RULE.pattern},
    )
    branch: Annotated[str, AfterValidator(fields.check_branch)] = Field(
        "master", description="Branch to build (a name git accepts)", examples=["master", "main"],
        json_schema_extra={"pattern": fields.BRANCH_PATTERN},
    )
    directory: Annotated[str, AfterValidator(fields.check_directory)] = Field(
        ".", description="Subdirectory of the repository holding the job, relative to its root; "
                         "'..' and absolute paths are not allowed",
        examples=[".", "services/supersmart"],
        json_schema_extra={"pattern": fields.DIRECTORY_RULE.pattern},
    )


class PythonConfig(_Strict):
    """How to find and install the job's Python code."""

    entrypoint_path: Annotated[str, AfterValidator(fields.check_entrypoint_path)] = Field(
        description="Path (relative to git.directory) of the .py file with the entrypoint class",
        examples=["fatman_entrypoint.py"],
        json_schema_extra={"pattern": fields.ENTRYPOINT_PATH_RULE.pattern},
    )
    entrypoint_class: Annotated[str, AfterValidator(fields.check_entrypoint_class)] | None = Field(
        None, description="Name of the entrypoint class (discovered when omitted)",
        examples=["FatmanEntrypoint"],
        json_schema_extra={"pattern": fields.IDENTIFIER_PATTERN},
    )
    requirements_path: Annotated[str, AfterValidator(fields.check_requirements_path)] | None = Field(
        None, description="Path (relative to git.directory) of a pip requirements file",
        examples=["requirements.txt"],
        json_schema_extra={"pattern": fields.REQUIREMENTS_PATH_RULE.pattern},
    )
    python_version: Annotated[str, AfterValidator(fields.check_python_version)] = Field(
        DEFAULT_PYTHON_VERSION,
        description="The job's Python, MAJOR.MINOR in quotes (3.10 unquoted would be the number 3.1): "
                    + ", ".join(PYTHON_VERSIONS),
        examples=[DEFAULT_PYTHON_VERSION, "3.9"],
        json_schema_extra={"enum": list(PYTHON_VERSIONS)},
    )


class Manifest(_Strict):
    """A validated ``fatman.yaml``."""

    name: Annotated[str, AfterValidator(fields.check_name)] = Field(
        description="Name of the job, unique in the cluster; it becomes an image name and a DNS label: "
                    f"lowercase letters, digits and dashes, at most {fields.NAME_MAX_LENGTH} characters",
        examples=["supersmart"], json_schema_extra={"pattern": fields.NAME_PATTERN},
    )
    owner_email: Annotated[str, AfterValidator(fields.check_email)] = Field(
        description="Email address of the job's owner", examples=["nobody@example.com"],
        json_schema_extra={"pattern": fields.EMAIL_PATTERN, "maxLength": fields.EMAIL_MAX_LENGTH},
    )
    lang: Annotated[str, AfterValidator(fields.check_lang)] = Field(
        description="Job type: python3 (the latest base image) or python3:<tag>",
        examples=["python3:latest", "python3"], json_schema_extra={"pattern": fields.LANG_PATTERN},
    )
    version: Annotated[str, BeforeValidator(fields.coerce_version),
                       AfterValidator(fields.check_version)] = Field(
        "0.0.1", description="Semantic version of the job (MAJOR.MINOR.PATCH); public endpoints are "
                             "approved once per version. Quote it: 1.0 would be a number",
        examples=["1.0.0", "2.1.0-rc.1"],
        json_schema_extra={"pattern": fields.VERSION_PATTERN, "maxLength": fields.VERSION_MAX_LENGTH},
    )
    git: GitConfig = Field(description="Where the job's source lives")
    python: PythonConfig = Field(description="How to find and install the job's Python code")
    system_dependencies: Annotated[list[Package], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list, description="Debian packages installed with apt (name, name:arch or "
                                          "name=version; one package per item)",
        examples=[["libgomp1"]],
        json_schema_extra={"type": ["array", "null"],
                           "items": {"type": "string", "pattern": fields.PACKAGE_PATTERN}},
    )
    build_env: Annotated[dict[EnvName, Text], BeforeValidator(_scalars_to_text)] = Field(
        default_factory=dict, description="Environment variables set while building the image",
        examples=[{"DEBIAN_FRONTEND": "noninteractive"}],
        json_schema_extra=_env_schema({"pattern": fields.ENV_NAME_PATTERN}),
    )
    runtime_env: Annotated[dict[RuntimeEnvName, Text], BeforeValidator(_scalars_to_text)] = Field(
        default_factory=dict,
        description="Environment variables set when the job runs; these names are reserved (set by "
                    "the image): " + ", ".join(sorted(fields.RESERVED_RUNTIME_ENV)),
        examples=[{"DJANGO_DEBUG": "true", "TORCH_MODEL_ZOO": "zoo"}],
        json_schema_extra=_env_schema({"pattern": fields.ENV_NAME_PATTERN,
                                       "not": {"enum": sorted(fields.RESERVED_RUNTIME_ENV)}}),
    )
    public_endpoints: Annotated[list[Endpoint], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list,
        description="Endpoints reachable without authentication (each with all its subpaths), "
                    "without the /pub/fatman/... prefix",
        examples=[["/api/v1/perform", "/api/v1/webview"]],
        json_schema_extra={"type": ["array", "null"],
                           "items": {"type": "string", "pattern": fields.ENDPOINT_PATTERN}},
    )
    secret_build_env_file: Annotated[str, AfterValidator(fields.check_client_path)] | None = Field(
        None, description="Env file on the client machine (relative to this manifest's folder) "
                          "with secret build variables; keep it out of git",
        examples=[".env.build"], json_schema_extra=_CLIENT_PATH_SCHEMA,
    )
    secret_runtime_env_file: Annotated[str, AfterValidator(fields.check_client_path)] | None = Field(
        None, description="Env file on the client machine (relative to this manifest's folder) "
                          "with secret runtime variables; keep it out of git",
        examples=[".env.runtime"], json_schema_extra=_CLIENT_PATH_SCHEMA,
    )
    labels: Annotated[dict[LabelKey, Text], BeforeValidator(_scalars_to_text)] = Field(
        default_factory=dict, description="Metadata describing the job for humans",
        examples=[{"team": "data-science"}],
        json_schema_extra=_env_schema({"pattern": fields.LABEL_KEY_PATTERN}),
    )

    @property
    def base_image_tag(self) -> str:
        """The tag of the python3 base image selected by ``lang`` (``python3`` means ``latest``)."""
        _, _, tag = self.lang.partition(":")
        return tag or "latest"

    # What a job.yaml adds (see job_manifest.JobManifest); a fatman.yaml has none of it.

    @property
    def check_requirements(self) -> bool:
        """Whether the build runs ``pip check`` after installing the requirements."""
        return True

    @property
    def job_type(self) -> str:
        """The job type as the manifest writes it: ``lang`` here, ``jobtype`` in a job.yaml."""
        return self.lang

    def python_field(self, key: str) -> str:
        """The manifest's own name for a setting of its ``python`` section (``entrypoint_path``...),
        for messages: ``python.KEY`` here, ``jobtype_extra.KEY`` in a job.yaml."""
        return f"python.{key}"

    @property
    def python_version_field(self) -> str:
        """The manifest's own name for the job's Python, for messages that suggest another."""
        return self.python_field("python_version")

    @property
    def buildkit_secret_id(self) -> str:
        """The BuildKit secret a ``render -o`` context reads the secret build env from: ours here,
        Racetrack 2.x's ``build_secrets`` in a job.yaml, so a 2.x pipeline's ``--secret`` fits."""
        return "racetrack-build-env"

    def wrapper_env(self) -> list[tuple[str, str]]:
        """Variables the image sets for the wrapper beyond the job's identity (none here)."""
        return []

    def build_env_at_runtime(self, secret_names: Iterable[str] = ()) -> list[tuple[str, str]]:
        """What of the build env the running job sees: nothing for a fatman.yaml, whose
        ``build_env`` is for the build steps only (a job.yaml: see JobManifest)."""
        return []

    def racetrack_labels(self) -> list[tuple[str, str]]:
        """Image labels carrying fields the build has no use for (none here)."""
        return []

    @property
    def notices(self) -> tuple[str, ...]:
        """Warnings found while reading the manifest (deprecated fields...), located."""
        return ()


# What a missing git: or python: section is shown as, in the "is missing (add ...)" message.
SECTION_EXAMPLES: dict[str, dict[str, str]] = {
    "git": {"remote": fields.REMOTE_EXAMPLE},
    "python": {"entrypoint_path": fields.ENTRYPOINT_EXAMPLE},
}
