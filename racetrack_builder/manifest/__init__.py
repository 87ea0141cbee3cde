"""The manifest, ``fatman.yaml`` (2022) or ``job.yaml`` (Racetrack 2.x): its rules, models and loading.

A job.yaml is validated by its own model (:mod:`.job_model`, rules only 2.x has in
:mod:`.job_fields`, the shared fields' rules in :mod:`.fields`) and becomes a
:class:`~.job_manifest.JobManifest`, which is a :class:`Manifest`: the build takes both alike.
``extends`` (:mod:`.overlays`) and ``-e`` overrides (:mod:`.overrides`) are merged before
validation, remembering which file or override gave each value (:mod:`.sources`).

Loading is three steps, each in its own module (see :mod:`.loading`): YAML is read with the
position of every key and value (:mod:`racetrack_builder.yaml_lines`), the data is validated by a
pydantic model (:mod:`.model`, the rules of each field in :mod:`.fields`), and the errors are turned
into located problems whose messages name the fix (:mod:`.problems`). :mod:`.rules` is how a rule
is written once, so that the validator's messages and the JSON Schema's patterns cannot drift apart.

Every string that ends up in the image (names, paths, env values, labels, endpoints...) is checked
for control characters, so a newline can never start a new Dockerfile instruction; quoting and
``$`` escaping of the accepted values is the renderer's job.

The names below are this package's interface; other modules import them from here.
"""

from .fields import (
    BRANCH_PATTERN,
    DOCKER_TAG_PATTERN,
    EMAIL_PATTERN,
    ENDPOINT_PATTERN,
    ENV_NAME_PATTERN,
    IDENTIFIER_PATTERN,
    LABEL_KEY_PATTERN,
    LANG_PATTERN,
    NAME_PATTERN,
    NO_CONTROL_PATTERN,
    PACKAGE_PATTERN,
    RESERVED_RUNTIME_ENV,
    SUPPORTED_LANGS,
    VERSION_PATTERN,
    check_branch,
    check_client_path,
    check_directory,
    check_email,
    check_endpoint,
    check_entrypoint_class,
    check_entrypoint_path,
    check_env_name,
    check_label_key,
    check_lang,
    check_name,
    check_package,
    check_python_version,
    check_remote,
    check_requirements_path,
    check_runtime_env_name,
    check_text,
    check_version,
)
from .formats import FATMAN, FILE_NAMES, FORMATS, JOB, Format, format_by_name, format_of
from .job_manifest import JobManifest
from .loading import MAX_MANIFEST_BYTES, load_manifest, parse_manifest
from .lookup import find_manifest, manifest_in
from .model import (
    EXTENSION_PREFIX,
    Endpoint,
    EnvName,
    GitConfig,
    LabelKey,
    Manifest,
    Package,
    PythonConfig,
    RuntimeEnvName,
    Text,
)
from .overrides import Override, parse_override, parse_overrides
from .problems import MAX_PROBLEMS

__all__ = [
    "FATMAN",
    "FILE_NAMES",
    "FORMATS",
    "JOB",
    "Format",
    "JobManifest",
    "Override",
    "find_manifest",
    "format_by_name",
    "format_of",
    "manifest_in",
    "parse_override",
    "parse_overrides",
    "BRANCH_PATTERN",
    "DOCKER_TAG_PATTERN",
    "EMAIL_PATTERN",
    "ENDPOINT_PATTERN",
    "ENV_NAME_PATTERN",
    "EXTENSION_PREFIX",
    "IDENTIFIER_PATTERN",
    "LABEL_KEY_PATTERN",
    "LANG_PATTERN",
    "MAX_MANIFEST_BYTES",
    "MAX_PROBLEMS",
    "NAME_PATTERN",
    "NO_CONTROL_PATTERN",
    "PACKAGE_PATTERN",
    "RESERVED_RUNTIME_ENV",
    "SUPPORTED_LANGS",
    "VERSION_PATTERN",
    "Endpoint",
    "EnvName",
    "GitConfig",
    "LabelKey",
    "Manifest",
    "Package",
    "PythonConfig",
    "RuntimeEnvName",
    "Text",
    "check_branch",
    "check_client_path",
    "check_directory",
    "check_email",
    "check_endpoint",
    "check_entrypoint_class",
    "check_entrypoint_path",
    "check_env_name",
    "check_label_key",
    "check_lang",
    "check_name",
    "check_package",
    "check_python_version",
    "check_remote",
    "check_requirements_path",
    "check_runtime_env_name",
    "check_text",
    "check_version",
    "load_manifest",
    "parse_manifest",
]
