"""A job as every command prepares it: the manifest, the secrets this machine gives it, its files.

The first half of the pipeline (manifest -> secrets -> source) in one place, resolved once per
command and passed along: :func:`load_job` reads the manifest and the secret files the command
needs, :func:`open_job` fetches the source on top and checks the files the manifest names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .job_files import check_job_files
from .manifest import Manifest, load_manifest
from .manifest.advice import manifest_advice
from .reporting import warn
from .secrets import SecretNeed, merge_env, read_secret_env
from .source import JobSource, open_source


@dataclass(frozen=True)
class JobSpec:
    """A validated manifest with the secret values read for it on this machine."""

    manifest: Manifest
    manifest_path: Path
    build_secrets: dict[str, str] = field(repr=False)
    runtime_secrets: dict[str, str] = field(repr=False)

    @property
    def secret_values(self) -> list[str]:
        """Every secret value, to keep out of everything printed."""
        return [*self.build_secrets.values(), *self.runtime_secrets.values()]


def load_job(manifest_path: Path, *, build: SecretNeed = "required", runtime: SecretNeed = "no",
             overrides: Iterable[str] = ()) -> JobSpec:
    """Read and validate the manifest (fatman.yaml or job.yaml, with ``-e KEY=VALUE`` ``overrides``
    applied) and the secret env files as the command needs them.

    ``"required"``: a missing file is an error; ``"if-present"``: read when it exists (a plain build
    reads the runtime secrets only to mask them, so a CI builder without the production file can
    build); ``"no"``: not read at all.
    """
    manifest = load_manifest(manifest_path, overrides)
    for advice in manifest_advice(manifest):
        warn(advice)
    return JobSpec(
        manifest=manifest,
        manifest_path=manifest_path,
        build_secrets=read_secret_env(manifest, manifest_path, "build", build),
        runtime_secrets=read_secret_env(manifest, manifest_path, "runtime", runtime),
    )


@dataclass(frozen=True)
class Job:
    """A job ready to render or build: its spec and its fetched, checked source."""

    spec: JobSpec
    source: JobSource

    @property
    def manifest(self) -> Manifest:
        return self.spec.manifest

    @property
    def manifest_path(self) -> Path:
        return self.spec.manifest_path

    @property
    def build_secrets(self) -> dict[str, str]:
        return self.spec.build_secrets


@contextlib.contextmanager
def open_job(spec: JobSpec, *, local: bool = False, secrets_known: bool = True) -> Iterator[Job]:
    """Fetch and check the job's source; it is removed on exit. Warnings go to the reporter.

    ``secrets_known=False``: the secret build env file was not read (``render -o`` without it), so
    the requirements' ``${NAME}`` references cannot be checked against it."""
    with open_source(spec.manifest, spec.manifest_path, local=local) as source:
        check_job_files(spec.manifest, source)
        if secrets_known:
            build_env = merge_env(spec.manifest.build_env, spec.build_secrets)
            _check_requirement_variables(spec.manifest, source, build_env)
        yield Job(spec=spec, source=source)


def _check_requirement_variables(manifest: Manifest, source: JobSource, build_env: dict[str, str]) -> None:
    """Every ``${NAME}`` the requirements files use is defined by build_env or the secret build env."""
    if not manifest.python.requirements_path:
        return
    from .render import plan_job_requirements
    from .requirements import undefined_references

    plan = plan_job_requirements(manifest, source)
    if plan is None:
        return
    texts = {rel: (source.job_root / rel).read_text(encoding="utf-8", errors="replace") for rel in plan.files}
    missing = undefined_references(texts, set(build_env))
    if missing:
        listed = "; ".join(
            f"{rel} uses {', '.join('${' + name + '}' for name in names)}" for rel, names in missing.items()
        )
        raise UsageError(
            f"{listed}, which neither build_env nor secret_build_env_file defines "
            "(pip would use the text as written)",
            hint="define them in secret_build_env_file (credentials) or build_env, or fix the names",
        )
