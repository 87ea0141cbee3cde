"""Render a job's Dockerfile and write self-contained build contexts.

The Dockerfile comes from ``templates/job.Dockerfile.j2`` (Jinja2 with StrictUndefined). Every
value taken from the manifest passes through a filter that makes it inert in its Dockerfile
context, on top of the manifest's own validation: the renderer must be safe even for a manifest
model built by other code.

A build context is a folder with the Dockerfile and the job's files under ``job/``: plain
``docker build DIR``, BuildKit or Kaniko can build it without this tool. Secret build values never
enter it: the Dockerfile declares their names as build arguments and the builder passes the values.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, contract
from .build_tools import TOOLS_MOUNT, TOOLS_PATH, tools_ref
from .contract import CA_BUNDLE_ARG, CA_BUNDLE_FILE, WRAPPER_PYTHON, WRAPPER_SCRIPT
from .errors import RenderError, disk_error
from .requirements import RequirementsPlan, plan_requirements
from .resources import templates_dir

if TYPE_CHECKING:
    from .manifest import Manifest
    from .source import JobSource

TEMPLATE = "job.Dockerfile.j2"
JOB_DIR = "job"
# Engine install: the system stage's Dockerfile, beside the job stage's.
SYSTEM_DOCKERFILE = "system.Dockerfile"
# In a context for BuildKit: what the install step reads (install.py's plan and files).
INSTALL_DIR = "racetrack-install"
# The build argument naming the image install.py made (the engine install's FROM).
PACKAGES_IMAGE_ARG = "RACETRACK_PACKAGES_IMAGE"
# Written by ``render -o --ca-cert`` beside the Dockerfile: the value of CA_BUNDLE_ARG for a builder
# other than ours. In the context folder but never COPYed, so no layer holds it.
APT_CA_FILE = "apt-ca.pem"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# COPY sources are glob patterns and undergo $-substitution even in the JSON form.
_UNSAFE_COPY_PATH = re.compile(r"[\x00-\x1f\x7f$\\\"*?\[\]]")


def _reject_control(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise RenderError(
            f"{what} {value!r} contains a control character (newline, tab, NUL...)",
            hint="remove it from the manifest: a Dockerfile cannot carry it safely",
        )
    return value


def _dq(value: object) -> str:
    """A double-quoted Dockerfile word, for ENV, ARG and LABEL: \\, " and $ are escaped."""
    text = _reject_control(str(value), "value")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _sh(value: object) -> str:
    """A single shell word inside a RUN instruction."""
    return shlex.quote(_reject_control(str(value), "value"))


def _json(value: Any) -> str:
    """An exec-form array (CMD, RUN [...], COPY [...]), which no shell ever sees."""
    for item in value if isinstance(value, list) else [value]:
        _reject_control(str(item), "value")
    return json.dumps(value)


def _comment(value: object) -> str:
    return _CONTROL.sub(" ", str(value))


def _copy_path(path: str) -> str:
    if _UNSAFE_COPY_PATH.search(path):
        raise RenderError(
            f"the job file '{_comment(path)}' has a character a Dockerfile COPY cannot take literally "
            "($, \\, quotes, *, ?, [ or ])",
            hint="rename the file",
        )
    return path


@functools.lru_cache(maxsize=1)
def _environment():  # noqa: ANN202 - jinja2 is imported lazily: `validate` must start fast
    """One environment per process: it keeps the templates it compiled (a build renders the
    Dockerfile of each stage, and compiling the template is most of a render's time)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - Dockerfiles, not HTML; values are quoted by the filters
        keep_trailing_newline=True,
    )
    env.filters.update(dq=_dq, sh=_sh, json=_json, comment=_comment)
    return env


@dataclass(frozen=True)
class RenderOptions:
    """What the renderer needs besides the manifest and the job's files."""

    base_image: str | None = None  # default: the manifest's (lang's tag, python.python_version)
    secret_build_names: tuple[str, ...] = ()  # names only: values never reach the renderer
    # The manifest names a secret build env file, read here or not: `render -o` writes a context
    # for another builder, which is given the file, so this machine need not have it.
    secret_file: bool = False
    ca_cert: bool = False  # a CA bundle will be in the context (pip) and a build arg (apt)
    manifest_file: str = "fatman.yaml"
    # Who installs the requirements: "buildkit", a RUN step with secret and tool mounts, for a
    # context built by another builder; "engine", this tool's install container (install.py),
    # whose committed image the Dockerfile starts FROM.
    install: str = "buildkit"


def image_labels(
    manifest: Manifest, source: JobSource | None, base_image: str | None = None
) -> list[tuple[str, str]]:
    """OCI labels of the job image.

    First the ones the base image would otherwise pass down with its own meaning (description,
    licences, base name), which the manifest's labels may override; then the manifest's labels;
    then the ones that describe the build itself, which win.
    """
    from .git_urls import mask_credentials

    labels: list[tuple[str, str]] = [
        ("org.opencontainers.image.description", f"Racetrack python3 job {manifest.name} {manifest.version}"),
        ("org.opencontainers.image.licenses", ""),  # the job's own licence is not ours to state
    ]
    if base_image:
        labels.append(("org.opencontainers.image.base.name", base_image))
    labels += list(manifest.labels.items())
    labels += [
        ("org.opencontainers.image.title", manifest.name),
        ("org.opencontainers.image.version", manifest.version),
        ("org.opencontainers.image.authors", manifest.owner_email),
        ("org.opencontainers.image.source", mask_credentials(manifest.git.remote)),
    ]
    if source is not None and source.commit:
        labels.append(("org.opencontainers.image.revision", source.commit))
    if source is not None and source.dirty:
        # --local with uncommitted changes: the revision alone does not give back these files.
        labels.append(("org.racetrack.git.dirty", "true"))
    labels += [
        ("org.racetrack.lang", manifest.lang),
        ("org.racetrack.python.version", manifest.python.python_version),
        # No branch (a job.yaml may leave it out): the remote's default branch, no label.
        *([("org.racetrack.git.branch", manifest.git.branch)] if manifest.git.branch is not None else []),
        ("org.racetrack.git.directory", manifest.git.directory),
        ("org.racetrack.public-endpoints", ",".join(manifest.public_endpoints)),
    ]
    # A job.yaml's fields the build has no use for (replicas, resources...); none for a fatman.yaml.
    labels += manifest.racetrack_labels()
    return labels


def default_base_image(manifest: Manifest) -> str:
    """The base image a context starts FROM when none is given: the tag of this version's wrapper
    sources (``racetrack/python3:<tag>[-py<version>]-<digest>``, which ``racetrack-build base``
    makes), so a context built elsewhere never starts from another version's wrapper that holds
    ``racetrack/python3:<tag>`` on that engine."""
    from .base_image import sources_ref

    return sources_ref(manifest.base_image_tag, _packaged_base_digest(), manifest.python.python_version)


@functools.lru_cache(maxsize=1)
def _packaged_base_digest() -> str:
    # The packaged sources do not change while the process runs; a digest reads every file.
    from .base_image import base_context_dir, context_digest

    return context_digest(base_context_dir())


def git_version(source: JobSource | None) -> str:
    """``GIT_VERSION`` of the image (Racetrack 2.x's, reported by ``/health``): the commit, with
    ``-dirty`` for a ``--local`` tree with uncommitted changes (as ``git describe --dirty`` marks
    it); "" when the files come from no commit."""
    if source is None or not source.commit:
        return ""
    return f"{source.commit}-dirty" if source.dirty else source.commit


def wrapper_command(manifest: Manifest, verb: str) -> list[str]:
    """``fatman-wrapper VERB ENTRYPOINT [--class NAME]`` as an exec-form array.

    The wrapper's console script, not ``python -m fatman_wrapper``: ``-m`` puts the working
    directory, the job's root, first on ``sys.path`` before the wrapper has imported anything, so a
    job file named ``json.py``, ``flask.py`` or ``fatman_wrapper.py`` would replace what the server
    itself imports. The script puts only its own folder there; the wrapper adds the job root when it
    imports the job, after its own modules are loaded.
    """
    command = [WRAPPER_SCRIPT, verb, manifest.python.entrypoint_path]
    if manifest.python.entrypoint_class:
        command += ["--class", manifest.python.entrypoint_class]
    return command


def job_check_command(manifest: Manifest) -> list[str]:
    """The build's import check of the job's code alone; the install step checks the server
    (``contract.SERVER_CHECK_COMMAND``) in the layer of the job's packages, which a change to the
    code does not rebuild."""
    return [*wrapper_command(manifest, "check"), "--no-server"]


def plan_job_requirements(manifest: Manifest, source: JobSource) -> RequirementsPlan | None:
    """Which requirements files the builder stage needs, or None when the job has none."""
    if not manifest.python.requirements_path:
        return None
    files = set(source.files)

    def read(rel: str) -> str | None:
        if rel not in files:
            return None
        return (source.job_root / rel).read_text(encoding="utf-8", errors="replace")

    field_name = manifest.python_field("requirements_path")
    plan = plan_requirements(manifest.python.requirements_path, read, field_name)
    for f in plan.files:
        _copy_path(f)
    return plan


@dataclass(frozen=True)
class Rendered:
    """A rendered Dockerfile and the build arguments a builder must pass along with it."""

    dockerfile: str
    build_arg_names: tuple[str, ...]
    requirements: RequirementsPlan | None = None
    secret_names: tuple[str, ...] = ()  # the secret build env the install step needs
    takes_secrets: bool = False  # the install step reads a secret build env file
    secret_id: str = ""  # the BuildKit secret it reads them from (the manifest's buildkit_secret_id)


# What a Dockerfile holds: both stages; the system stage alone; the job's stage alone, FROM the
# packages image the engine install made (install="engine" with requirements: build.py builds the
# system stage, installs on it, then builds the job's stage, so apt never runs twice).
STAGES = ("all", "system", "job")


def render(
    manifest: Manifest, source: JobSource, options: RenderOptions | None = None, *, stage: str = "all"
) -> Rendered:
    """Render the job's Dockerfile."""
    options = options or RenderOptions()
    if stage not in STAGES:
        raise RenderError(f"unknown stage {stage!r}")
    secret_names = tuple(dict.fromkeys(options.secret_build_names))
    for name in secret_names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise RenderError(f"secret build variable name {_comment(name)!r} is not a valid variable name")
    secret = set(secret_names)
    # Plain build_env as ARGs with their values, in both stages; a secret of the same name wins
    # (the spec's precedence), so it is declared in the builder stage only, without a default, and
    # its value comes as a build arg. Secrets never reach the final stage.
    final_args = [(name, value) for name, value in manifest.build_env.items() if name not in secret]
    requirements = plan_job_requirements(manifest, source)
    system_dependencies = list(manifest.system_dependencies)
    if options.install not in ("buildkit", "engine"):
        raise RenderError(f"unknown install mode {options.install!r}")
    if stage == "job" and not (requirements and options.install == "engine"):
        raise RenderError("the job's stage alone exists only for an engine install of requirements")

    # What the job sees of the build env (a job.yaml's build_env, as 2.x writes it), then
    # runtime_env over it.
    runtime_env = {**dict(manifest.build_env_at_runtime(secret_names)), **manifest.runtime_env}
    takes_secrets = bool(requirements) and (bool(secret_names) or options.secret_file)
    base_image = _reject_control(options.base_image or default_base_image(manifest), "image")
    context = {
        "contract": contract,
        "m": manifest,
        "tool_version": __version__,
        "manifest_file": options.manifest_file,
        "base_image": base_image,
        "takes_secrets": takes_secrets,
        "final_args": final_args,
        "install": options.install,
        "stage": stage,
        "install_dir": INSTALL_DIR,
        "tools_image": tools_ref(manifest.python.python_version),
        "tools_path": TOOLS_PATH,
        "tools_mount": TOOLS_MOUNT,
        "secret_id": manifest.buildkit_secret_id,
        "wrapper_python": WRAPPER_PYTHON,
        "ca_cert": options.ca_cert,
        "requirements": requirements,
        "system_dependencies": system_dependencies,
        "runtime_env": list(runtime_env.items()),
        "labels": image_labels(manifest, source, base_image),
        "git_version": git_version(source),
        "check_command": job_check_command(manifest),
        "command": wrapper_command(manifest, "run"),
    }
    dockerfile = _environment().get_template(TEMPLATE).render(context)
    # No secret is a build argument: the install step gets them as a file (a BuildKit secret, or
    # install.py's container). The CA argument exists only for the apt step.
    arg_names = []
    if options.ca_cert and system_dependencies:
        arg_names.append(CA_BUNDLE_ARG)
    return Rendered(
        dockerfile=dockerfile,
        build_arg_names=tuple(arg_names),
        requirements=requirements,
        secret_names=secret_names if requirements else (),
        takes_secrets=takes_secrets,
        secret_id=manifest.buildkit_secret_id,
    )


def render_dockerfile(manifest: Manifest, source: JobSource, options: RenderOptions | None = None) -> str:
    """The job's Dockerfile as text."""
    return render(manifest, source, options).dockerfile


@dataclass(frozen=True)
class BuildContext:
    """A written build context and what a builder must be given besides the folder."""

    path: Path
    dockerfile: str
    build_arg_names: tuple[str, ...]  # the CA bundle for apt, if any
    apt_ca_path: Path | None = None  # the certificates apt needs, when written beside the context
    installs: bool = False  # a BuildKit install step: the build needs BuildKit and the tools image
    secret_names: tuple[str, ...] = ()  # the secret build env the install step reads
    takes_secrets: bool = False  # the install step reads a secret build env file (a BuildKit secret)
    secret_id: str = ""  # the BuildKit secret it reads them from
    system_dockerfile: str | None = None  # engine install: the system stage's Dockerfile, by name

    def docker_build_command(self, tag: str, secret_file: str | None = None) -> str:
        """A `docker build` command line for this context: the secret build env file as a BuildKit
        secret; apt's certificates from ``apt_ca_path`` when written."""
        args = ""
        if self.takes_secrets:
            args += f" --secret id={self.secret_id},src={shlex.quote(secret_file or 'SECRET_BUILD_ENV_FILE')}"
        for name in self.build_arg_names:
            if name == CA_BUNDLE_ARG and self.apt_ca_path is not None:
                args += f' --build-arg {name}="$(cat {shlex.quote(str(self.apt_ca_path))})"'
            else:
                args += f" --build-arg {name}"
        builder = "DOCKER_BUILDKIT=1 docker build" if self.installs else "docker build"
        return f"{builder}{args} -t {shlex.quote(tag)} {shlex.quote(str(self.path))}"


def _copy_job_files(source: JobSource, dest: Path) -> None:
    for rel in source.files:
        src = source.job_root / rel
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # Links inside the job stay links (source.py has rejected those leading out of it).
        shutil.copy2(src, target, follow_symlinks=False)


def _empty(folder: Path, *, remove: bool) -> None:
    """Delete what is inside ``folder`` (and ``folder`` itself with ``remove``), best effort."""
    if remove:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def check_output_folder(out_dir: Path) -> None:
    """RenderError unless ``out_dir`` is missing or an empty folder (a context holds only the job)."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RenderError(
            f"output folder '{out_dir}' is not empty",
            hint="choose a new folder or empty this one: a context must hold only the job",
        )


def write_context(
    manifest: Manifest,
    source: JobSource,
    out_dir: Path,
    options: RenderOptions | None = None,
    *,
    ca_cert_path: Path | None = None,
    apt_ca_file: bool = False,
) -> BuildContext:
    """Write Dockerfile + ``job/`` into ``out_dir`` (which must be missing or empty).

    ``apt_ca_file`` (for a context built by someone else, ``render -o``): also write the
    certificates of ``ca_cert_path`` that a stock image does not trust to ``APT_CA_FILE``, the value
    of the apt step's build argument. It is never COPYed, so no layer holds it.
    """
    options = options or RenderOptions()
    if ca_cert_path is not None:
        options = replace(options, ca_cert=True)
    check_output_folder(out_dir)
    rendered = render(manifest, source, options)
    system_dockerfile = None
    if options.install == "engine" and rendered.requirements is not None:
        system_dockerfile = render(manifest, source, options, stage="system").dockerfile
        rendered = render(manifest, source, options, stage="job")
    apt_ca = None
    if apt_ca_file and ca_cert_path is not None and CA_BUNDLE_ARG in rendered.build_arg_names:
        apt_ca = _certificates_beyond_stock(ca_cert_path)  # may refuse: before anything is written
    apt_ca_path = None
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "Dockerfile").write_text(rendered.dockerfile, encoding="utf-8")
        if system_dockerfile is not None:
            (out_dir / SYSTEM_DOCKERFILE).write_text(system_dockerfile, encoding="utf-8")
        _copy_job_files(source, out_dir / JOB_DIR)
        if ca_cert_path is not None:
            shutil.copyfile(ca_cert_path, out_dir / CA_BUNDLE_FILE)
        if rendered.requirements is not None and options.install == "buildkit":
            _write_install_dir(manifest, source, rendered.requirements, out_dir / INSTALL_DIR, ca_cert_path)
        if apt_ca is not None:
            apt_ca_path = out_dir / APT_CA_FILE
            apt_ca_path.write_text(apt_ca, encoding="utf-8")
    except OSError as exc:
        # A half-written context must not pass for a complete one: take back what we wrote
        # (the folder was missing or empty, so all of it is ours).
        _empty(out_dir, remove=created)
        raise disk_error(exc, "writing the build context", out_dir) from exc
    return BuildContext(
        path=out_dir,
        dockerfile=rendered.dockerfile,
        build_arg_names=rendered.build_arg_names,
        apt_ca_path=apt_ca_path,
        installs=rendered.requirements is not None and options.install == "buildkit",
        secret_names=rendered.secret_names,
        takes_secrets=rendered.takes_secrets,
        secret_id=rendered.secret_id,
        system_dockerfile=SYSTEM_DOCKERFILE if system_dockerfile is not None else None,
    )


def _write_install_dir(
    manifest: Manifest, source: JobSource, plan: RequirementsPlan, dest: Path, ca_cert_path: Path | None
) -> None:
    """What the BuildKit install step reads: the plan and the files it installs from."""
    from .install import install_files, install_plan

    dest.mkdir()
    plan_document = install_plan(
        manifest.python.requirements_path or "", plan, manifest.build_env, manifest.python.python_version,
        manifest.check_requirements, manifest.python_version_field,
    )
    (dest / "plan.json").write_text(json.dumps(plan_document, indent=2) + "\n", encoding="utf-8")
    for rel in install_files(plan, tuple(source.files)):
        target = dest / JOB_DIR / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source.job_root / rel, target, follow_symlinks=False)
    if ca_cert_path is not None:
        shutil.copyfile(ca_cert_path, dest / CA_BUNDLE_FILE)


def _certificates_beyond_stock(ca_cert_path: Path) -> str:
    """The certificates of ``ca_cert_path`` missing from the Mozilla store that Debian's
    ca-certificates (and so the base image) also ships, taken from certifi: without an engine
    there is no image to ask. In practice this is the intercepting proxy's own CA."""
    import certifi  # installed with requests, which docker-py needs

    from .certs import extra_certificates

    bundle = ca_cert_path.read_text(encoding="utf-8", errors="replace")
    return extra_certificates(bundle, certifi.contents(), str(ca_cert_path))


def build_args(context: BuildContext, apt_ca: str | None = None) -> dict[str, str]:
    """The build arguments to hand a builder with the context: for apt, the CA certificates the
    image lacks (see certs.py). Never a secret: the install step takes those as a file."""
    args: dict[str, str] = {}
    if CA_BUNDLE_ARG in context.build_arg_names:
        args[CA_BUNDLE_ARG] = apt_ca or ""
    return args
