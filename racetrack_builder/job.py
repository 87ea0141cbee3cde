"""A job ready to render or build: its manifest, its build secrets and its fetched source.

This is the first half of the pipeline (manifest -> secrets -> source) in one place, so the
``render``, ``build`` and ``test`` commands prepare a job the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .manifest import Manifest, load_manifest
from .secrets import merge_env, read_secret_env
from .source import JobSource, check_job_files, open_source


@dataclass(frozen=True)
class Job:
    manifest: Manifest
    manifest_path: Path
    source: JobSource
    build_secrets: dict[str, str] = field(repr=False)

    @property
    def build_env(self) -> dict[str, str]:
        """build_env with the secret build env over it (secrets win, as the spec says)."""
        return merge_env(self.manifest.build_env, self.build_secrets)


@contextlib.contextmanager
def open_job(
    manifest_path: Path, *, local: bool = False, progress: Callable[[str], None] | None = None
) -> Iterator[Job]:
    """Load and check everything a build needs; the fetched source is removed on exit."""
    manifest = load_manifest(manifest_path)
    # Secrets first: a missing .env file is found before a slow clone.
    build_secrets = read_secret_env(manifest, manifest_path, "build")
    with open_source(manifest, manifest_path, local=local, progress=progress) as source:
        for warning in check_job_files(manifest, source):
            if progress:
                progress(f"warning: {warning}")
        _check_requirement_variables(manifest, source, merge_env(manifest.build_env, build_secrets))
        yield Job(manifest=manifest, manifest_path=manifest_path, source=source, build_secrets=build_secrets)


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
