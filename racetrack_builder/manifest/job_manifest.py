"""A job.yaml as the build uses it: a :class:`~.model.Manifest`, plus what 2.x adds.

Render, build, serve and the rest take a ``Manifest``; a :class:`JobManifest` is one (its
``lang``, ``python`` and ``git`` hold what jobtype, jobtype_extra and git mean), with:

- the settings the wrapper reads at run time, as the environment variables it takes them from
  (:meth:`JobManifest.wrapper_env`);
- the fields racetrack-build has no use for, as image labels (:meth:`JobManifest.racetrack_labels`);
- ``check_requirements`` and the warnings found while reading it.

Built by :mod:`.job_yaml` from a validated :class:`~.job_model.JobYaml`, never from user input.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from ..contract import JOB_SITE_PACKAGES
from .fields import RESERVED_RUNTIME_ENV
from .job_fields import jobtype_version
from .model import GitConfig, Manifest, _Strict

# The variables the wrapper (base-images/python3/fatman_wrapper/config.py) reads its settings from:
# the limits are per worker process there.
ENV_MAX_CONCURRENCY = "FATMAN_MAX_CONCURRENCY"
ENV_MAX_QUEUE = "FATMAN_MAX_QUEUE"
ENV_HOME_PAGE = "FATMAN_HOME_PAGE"
ENV_JOB_TYPE_VERSION = "JOB_TYPE_VERSION"
ENV_VENV_PACKAGES = "VENV_PACKAGES_PATH"
# The gateway prefix the job names itself with (the webview's base_url): Racetrack 2.x's.
ENV_PUB_PREFIX = "FATMAN_PUB_PREFIX"
JOB_PUB_PREFIX = "/pub/job"
# Whose answers the wrapper gives where the eras differ (307 for "/", 400 for a ValueError, /health's
# status pass/fail and 500): Racetrack 2.x's for a job.yaml; a fatman.yaml's image sets nothing (1).
ENV_CONTRACT = "FATMAN_CONTRACT"
RACETRACK2_CONTRACT = "2"
LABEL_PREFIX = "org.racetrack."


class JobGitConfig(GitConfig):
    """git: as 2.x reads it: no branch means the remote's default branch."""

    branch: str | None = None  # type: ignore[assignment]


class JobSettings(_Strict):
    """jobtype_extra's settings beyond fatman.yaml's python: section."""

    check_requirements: bool = True
    max_concurrency: int | None = None
    max_concurrency_queue: int | None = None
    home_page: str = "/docs"
    # Racetrack 2.x settings of its own image, which this build does not use: labels.
    debian_version: str = "slim-bullseye"
    debian_backports: bool = False
    memray_profiler: bool = False


class Deployment(_Strict):
    """Fields for Racetrack's deployment, not for the image: carried as labels."""

    replicas: int = 1
    resources: dict[str, str] = Field(default_factory=dict)
    infrastructure_target: str | None = None
    image_type: str = "docker"


class JobManifest(Manifest):
    """A validated job.yaml, in the shape the build uses."""

    git: JobGitConfig  # type: ignore[assignment]
    jobtype: str
    settings: JobSettings = Field(default_factory=JobSettings)
    deployment: Deployment = Field(default_factory=Deployment)
    found_warnings: tuple[str, ...] = ()
    # The block the settings were read from: jobtype_extra, or a deprecated name (python...).
    extra_block: str = "jobtype_extra"

    @property
    def check_requirements(self) -> bool:
        return self.settings.check_requirements

    @property
    def job_type(self) -> str:
        return self.jobtype

    def python_field(self, key: str) -> str:
        return f"{self.extra_block}.{key}"

    @property
    def buildkit_secret_id(self) -> str:
        return "build_secrets"

    @property
    def notices(self) -> tuple[str, ...]:
        return self.found_warnings

    def wrapper_env(self) -> list[tuple[str, str]]:
        settings = self.settings
        # JOB_TYPE_VERSION is the plugin version Racetrack resolved; for `latest` or a wildcard
        # (2.15.*) no plugin resolves it here, so it stays unset and /health reports the version
        # of the wrapper that serves the job, the job type this image really has.
        version = jobtype_version(self.jobtype)
        env = [(ENV_JOB_TYPE_VERSION, version)] if version != "latest" and "*" not in version else []
        env += [(ENV_PUB_PREFIX, JOB_PUB_PREFIX), (ENV_CONTRACT, RACETRACK2_CONTRACT),
                # 2.x's name for the folder of the job's packages (its venv's site-packages there).
                (ENV_VENV_PACKAGES, JOB_SITE_PACKAGES)]
        if settings.max_concurrency is not None:
            env.append((ENV_MAX_CONCURRENCY, str(settings.max_concurrency)))
        if settings.max_concurrency_queue is not None:
            env.append((ENV_MAX_QUEUE, str(settings.max_concurrency_queue)))
        env.append((ENV_HOME_PAGE, settings.home_page))
        return env

    def build_env_at_runtime(self, secret_names: Iterable[str] = ()) -> list[tuple[str, str]]:
        """Racetrack 2.x writes ``build_env`` as the image's ENV, so the job sees it at run time,
        and sets each secret build variable to "" there (its value is for the build only). Names
        the image sets itself (PATH, PYTHONPATH...) are left out: they would break the image."""
        env = {name: value for name, value in self.build_env.items() if name not in RESERVED_RUNTIME_ENV}
        env.update((name, "") for name in secret_names if name not in RESERVED_RUNTIME_ENV)
        return list(env.items())

    def racetrack_labels(self) -> list[tuple[str, str]]:
        deployment, settings = self.deployment, self.settings
        labels = [
            ("jobtype", self.jobtype),
            ("replicas", str(deployment.replicas)),
            *((f"resources.{key.replace('_', '-')}", value) for key, value in deployment.resources.items()),
        ]
        if deployment.infrastructure_target is not None:
            labels.append(("infrastructure-target", deployment.infrastructure_target))
        labels += [
            ("image-type", deployment.image_type),
            ("jobtype-extra.debian-version", settings.debian_version),
            ("jobtype-extra.debian-backports", str(settings.debian_backports).lower()),
            ("jobtype-extra.memray-profiler", str(settings.memray_profiler).lower()),
        ]
        return [(LABEL_PREFIX + key, value) for key, value in labels]


# Names the image sets from jobtype_extra: runtime_env may not set them too.
WRAPPER_ENV_BY_KEY = {
    "max_concurrency": ENV_MAX_CONCURRENCY,
    "max_concurrency_queue": ENV_MAX_QUEUE,
    "home_page": ENV_HOME_PAGE,
}
