"""The ``fatman.yaml`` model (pydantic v2) and its loading.

SKELETON: field names and types are the contract other modules code against; validators,
YAML loading with line numbers and error formatting are to be completed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# Names the image itself sets at run time; runtime_env may not use them.
RESERVED_RUNTIME_ENV: frozenset[str] = frozenset(
    {
        "PUB_URL",
        "FATMAN_NAME",
        "FATMAN_VERSION",
        "FATMAN_PUBLIC_ENDPOINTS",
        "PATH",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "HOME",
    }
)

SUPPORTED_LANGS = ("python3",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitConfig(_Strict):
    remote: str = Field(description="URL of the job's git repository (https, ssh, file:// or a local path)")
    branch: str = Field("master", description="Branch to build")
    directory: str = Field(".", description="Subdirectory of the repository holding the job")


class PythonConfig(_Strict):
    entrypoint_path: str = Field(description="Path (relative to git.directory) of the file with the entrypoint class")
    entrypoint_class: str | None = Field(None, description="Name of the entrypoint class (discovered when omitted)")
    requirements_path: str | None = Field(None, description="Path (relative to git.directory) of requirements.txt")


class Manifest(_Strict):
    name: str
    owner_email: str
    lang: str
    version: str = "0.0.1"
    git: GitConfig
    python: PythonConfig
    system_dependencies: list[str] = Field(default_factory=list)
    build_env: dict[str, str] = Field(default_factory=dict)
    runtime_env: dict[str, str] = Field(default_factory=dict)
    public_endpoints: list[str] = Field(default_factory=list)
    secret_build_env_file: str | None = None
    secret_runtime_env_file: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def base_image_tag(self) -> str:
        """The tag of the python3 base image selected by ``lang`` (``python3`` means ``latest``)."""
        _, _, tag = self.lang.partition(":")
        return tag or "latest"


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file; raise ManifestError listing every problem."""
    import yaml

    data = yaml.safe_load(path.read_text())
    return Manifest.model_validate(data)
