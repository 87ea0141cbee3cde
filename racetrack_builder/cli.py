"""The ``racetrack-build`` command line: parse arguments, call the library, print, exit.

Kept thin on purpose: each command calls one library function; errors are RacetrackError
subclasses whose ``exit_code`` becomes the process status (see errors.py and the README).
``racetrack-build MANIFEST`` is the same as ``racetrack-build build MANIFEST``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__, contract, gc_tuning
from .console import BuildProgress, ConsoleReporter, Output
from .errors import BuildFailed, ManifestError, RacetrackError, UsageError
from .manifest_args import extra_vars_opt as _extra_vars_opt
from .manifest_args import manifest_arg as _manifest_arg  # a manifest file, or a folder holding one
from .reporting import reporting_to

if TYPE_CHECKING:
    from .engine import Engine

EXIT_INTERRUPTED = 130
# The manifest formats (racetrack_builder.manifest.formats.FORMATS), spelled here so that parsing the
# command line does not import the manifest package and pydantic with it.
_FORMATS = click.Choice(["fatman", "job"])


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI job cancelled or timed out, a supervisor stopping ``run``) or SIGHUP (the
    terminal closed).

    A KeyboardInterrupt so it unwinds through exactly the cleanup Ctrl-C does: temporary
    workspaces, candidate tags and containers are removed either way. The exit status is
    128 + the signal's number, as the shell reports a process the signal killed.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_code = 128 + signum
        self.name = signal.Signals(signum).name


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _terminate(signum: int, frame: object) -> None:
    # A second signal during the cleanup gets the default action: whoever sends it means it.
    for stop in _STOP_SIGNALS:
        signal.signal(stop, signal.SIG_DFL)
    raise Terminated(signum)


class DefaultToBuild(click.Group):
    """A group where a first argument that is not a command means ``build``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


def _output(ctx: click.Context, quiet: bool = False, verbose: bool = False) -> Output:
    obj = ctx.ensure_object(dict)
    out: Output = obj.setdefault("output", Output())
    out.quiet = out.quiet or quiet
    out.verbose = out.verbose or verbose
    return out


_ready_timeout_opt = click.option(
    "--ready-timeout",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    metavar="SECONDS",
    help="How long a started job may take to be ready (its __init__ loading a model, say).",
)


_env_opt = click.option(
    "--env", "env_pairs", multiple=True, metavar="NAME=VALUE", help="Extra runtime variable."
)


_run_tag_opt = click.option(
    "--tag",
    metavar="IMAGE",
    help="With a manifest: the image to start instead of NAME:VERSION (what `build --tag` built), "
    "still with the manifest's runtime secrets.",
)


def _verbosity(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("-q", "--quiet", is_flag=True, help="Print only the result and errors.")(func)
    return click.option("-v", "--verbose", is_flag=True, help="Print every build log line and error causes.")(
        func
    )


_local_opt = click.option(
    "--local",
    is_flag=True,
    help="Use the git working tree holding the manifest instead of cloning git.remote.",
)
_ca_opt = click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA bundle trusted by apt and pip during build steps only (TLS-intercepting networks).",
)
_network_opt = click.option("--network", metavar="MODE", help="Network mode for build steps, e.g. host.")
_base_registry_opt = click.option(
    "--base-registry", metavar="R", envvar="RACETRACK_BASE_REGISTRY", show_envvar=True,
    help="Pull a missing base image (and install tools) from this registry, as `base --push --registry R` "
    "published them.",
)
_build_base_opt = click.option(
    "--build-base", is_flag=True, help="Build a missing base image here, even with --base-registry."
)
_python_image_opt = click.option(
    "--python-image",
    metavar="IMAGE",
    envvar="RACETRACK_PYTHON_IMAGE",
    show_envvar=True,
    help="Python root image of the base images: a name, or a template where {version} is the job's "
    "python.python_version (default python:{version}-slim).",
)


@click.group(cls=DefaultToBuild, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="racetrack-build")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Build a Docker image serving a Python class, from its fatman.yaml manifest.

    `racetrack-build MANIFEST` builds it (same as `racetrack-build build MANIFEST`).
    """
    ctx.with_resource(reporting_to(ConsoleReporter(_output(ctx))))


@cli.command()
@_manifest_arg
@_extra_vars_opt
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable result on stdout.")
@click.pass_context
def validate(ctx: click.Context, manifest: Path, extra_vars: tuple[Any, ...], as_json: bool) -> None:
    """Check a manifest; print a summary or every problem at once."""
    from .manifest import load_manifest
    from .manifest.advice import manifest_advice
    from .reporting import warn
    from .secrets import missing_secret_files

    out = _output(ctx)
    try:
        model = load_manifest(manifest, extra_vars)
        warnings = [*manifest_advice(model), *missing_secret_files(model, manifest)]
        for advice in warnings:
            warn(advice)
    except ManifestError as err:
        if as_json:
            out.result(
                json.dumps(
                    {
                        "valid": False,
                        "manifest": str(manifest),
                        "problems": [p.to_dict() for p in err.problems],
                    },
                    indent=2,
                )
            )
            ctx.exit(err.exit_code)
        raise
    if as_json:
        out.result(
            json.dumps(
                {
                    "valid": True,
                    "manifest": str(manifest),
                    "name": model.name,
                    "version": model.version,
                    # The job type as the manifest gives it (lang, or a job.yaml's jobtype); both
                    # keys, as earlier versions had "lang".
                    "lang": model.job_type,
                    "job_type": model.job_type,
                    "python_version": model.python.python_version,
                    # As the manifest names them, relative to its folder (null: none): where a
                    # pipeline writes the secrets from its own store before building.
                    "secret_build_env_file": model.secret_build_env_file,
                    "secret_runtime_env_file": model.secret_runtime_env_file,
                    "problems": [],
                    "warnings": warnings,
                },
                indent=2,
            )
        )
        return
    out.success(
        f"{manifest}: valid: {model.name} {model.version} ({model.job_type}, Python "
        f"{model.python.python_version}), entrypoint {model.python.entrypoint_path}"
    )


@cli.command()
@_manifest_arg
@_extra_vars_opt
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write a complete build context (Dockerfile + job/) into this new or empty folder.",
)
@_local_opt
@_ca_opt
@click.option(
    "--base-image",
    metavar="IMAGE",
    help="Base image to build FROM (default racetrack/python3:<tag of lang>).",
)
@_verbosity
@click.pass_context
def render(
    ctx: click.Context,
    manifest: Path,
    extra_vars: tuple[Any, ...],
    out_dir: Path | None,
    local: bool,
    ca_cert: Path | None,
    base_image: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Print the job's Dockerfile, or write a self-contained build context with -o."""
    from .build_tools import tools_ref
    from .images import job_image_ref
    from .job import load_job, open_job
    from .render import RenderOptions, check_output_folder, render_dockerfile, write_context
    from .secrets import missing_secret_files, secret_env_path

    out = _output(ctx, quiet, verbose)
    if out_dir is not None:
        check_output_folder(out_dir)  # before a clone that would be thrown away
    # The values never reach the Dockerfile or the context: a render for another builder, which is
    # given the secret file itself, works where the file is not (a CI step without the secrets).
    spec = load_job(manifest, build="if-present", overrides=extra_vars)
    out.mask(spec.secret_values)
    secret_file = secret_env_path(spec.manifest, spec.manifest_path, "build")
    missing = missing_secret_files(spec.manifest, spec.manifest_path, kinds=("build",))
    for warning in missing:
        out.warn(warning)
    secrets_here = not missing
    with open_job(spec, local=local, secrets_known=secrets_here) as job:
        options = RenderOptions(
            base_image=base_image,
            secret_build_names=tuple(job.build_secrets),
            secret_file=secret_file is not None,
            ca_cert=ca_cert is not None,
            manifest_file=manifest.name,
        )
        if out_dir is None:
            out.result(render_dockerfile(job.manifest, job.source, options).rstrip("\n"))
            return
        context = write_context(
            job.manifest, job.source, out_dir, options, ca_cert_path=ca_cert, apt_ca_file=True
        )
    out.success(f"build context written to {out_dir} ({len(job.source.files)} job files)")
    if context.installs:
        # BuildKit: the install step mounts the build tools image and takes the secrets as a file.
        tools = tools_ref(job.manifest.python.python_version)
        out.info(
            f"The install step needs BuildKit and the build tools image {tools} (`racetrack-build base` "
            "makes it; push it where your builder pulls from). BuildKit is built into docker 20.10; "
            "docker 23 and newer need the buildx plugin. Add --network host when the package index is "
            "on this machine. Kaniko ignores RUN --mount: build such a job with racetrack-build."
        )
    if context.takes_secrets:
        out.info(
            "Secret values are not in the folder: BuildKit reads them from "
            f"{job.manifest.secret_build_env_file} as a secret. Build it with:"
        )
    else:
        out.info("Build it with:")
    out.info("  " + context.docker_build_command(
        job_image_ref(job.manifest.name, job.manifest.version), str(secret_file) if secret_file else None
    ))


@cli.command()
@click.argument("manifest", required=False)
@click.option("--format", "fmt", type=_FORMATS,
              help="fatman (fatman.yaml, the default) or job (job.yaml, Racetrack 2.x).")
@click.pass_context
def schema(ctx: click.Context, manifest: str | None, fmt: str | None) -> None:
    """Print the JSON Schema of fatman.yaml, or job.yaml (for editors and yaml-language-server).

    The format is --format's, else that of MANIFEST's name (job.yaml, fatman.yaml; a folder's).
    """
    from .manifest_args import schema_format
    from .schema import manifest_schema_json

    _output(ctx).result(manifest_schema_json(fmt=schema_format(fmt, manifest)))


@cli.command()
@_manifest_arg
@_extra_vars_opt
@_local_opt
@click.option("--tag", help="Image name and tag (default NAME:VERSION from the manifest).")
@click.option("--registry", help="Registry prefix for the tag, e.g. 127.0.0.1:5000.")
@click.option("--no-cache", is_flag=True, help="Build every step anew.")
@_network_opt
@_ca_opt
@_python_image_opt
@click.option("--push", is_flag=True,
              help="Push the image to its registry after the build (and the layer cache to --cache-from's).")
@click.option("--cache-from", "cache_from", multiple=True, metavar="REF",
              help="Registry repository of the job's layer cache (HOST[:PORT]/PATH); repeatable. A cache "
              "that cannot help is a warning.")
@click.option("--cache-to", "cache_to", metavar="REF",
              help="Push the job's layer cache to this repository (with --push, the default is the first "
              "--cache-from).")
@_base_registry_opt
@_build_base_opt
@click.option(
    "--smoke-test",
    is_flag=True,
    help="Start the image, wait until ready and call every documented example; fail unless all 2xx.",
)
@_ready_timeout_opt
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@_verbosity
@click.pass_context
def build(
    ctx: click.Context,
    manifest: Path,
    extra_vars: tuple[Any, ...],
    local: bool,
    tag: str | None,
    registry: str | None,
    no_cache: bool,
    network: str | None,
    ca_cert: Path | None,
    python_image: str | None,
    push: bool,
    cache_from: tuple[str, ...],
    cache_to: str | None,
    base_registry: str | None,
    build_base: bool,
    smoke_test: bool,
    ready_timeout: float,
    as_json: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Build the job's image (also: `racetrack-build MANIFEST`)."""
    from .base_registry import base_registry_setting
    from .build import BuildOptions, build_job
    from .engine import DockerEngine
    from .images import check_image_ref
    from .job import load_job, open_job
    from .registry_cache import parse_cache_ref

    out = _output(ctx, quiet, verbose)
    if as_json:
        ctx.ensure_object(dict)["json_errors"] = True  # main() prints a failure as JSON too
    if tag:
        check_image_ref(tag, "--tag")  # before a clone: the engine would refuse it only at the end
    sources = tuple(dict.fromkeys(parse_cache_ref(ref, "--cache-from") for ref in cache_from))
    # With --push, the cache goes where it is read from, unless --cache-to names another place.
    target = parse_cache_ref(cache_to, "--cache-to") if cache_to else None
    if target is None and push and sources:
        target = sources[0]
    engine = DockerEngine()
    options = BuildOptions(
        tag=tag,
        registry=registry,
        nocache=no_cache,
        network=network,
        ca_cert=ca_cert,
        python_image=python_image,
        cache_from=sources,
        cache_to=target,
        base_registry=base_registry_setting(base_registry),
        build_base=build_base,
    )
    # The runtime secrets never enter the image: a plain build reads them only to mask their
    # values, so a CI builder without the production file can build. The smoke test starts the
    # job, so it needs the file, read before the long build to fail early.
    spec = load_job(manifest, runtime="required" if smoke_test else "if-present", overrides=extra_vars)
    out.mask(spec.secret_values)
    with open_job(spec, local=local) as job:

        def verify(candidate: str) -> None:
            out.success(f"built {candidate}; smoke testing it before tagging")
            _smoke(out, engine, candidate, spec.runtime_secrets, ready_timeout)

        with BuildProgress(out, job.manifest.name):
            result = build_job(job, engine, options, verify=verify if smoke_test else None)
    image = result.image
    out.success(f"built {image.ref} ({image.id[7:19]}, {image.size / 1e6:.1f} MB) in {image.duration:.1f}s")
    digest = None
    if push:
        from .images import names_a_registry

        if not names_a_registry(image.ref):
            out.warn(f"{image.ref} names no registry: it goes to Docker Hub (set one with --registry)")
        out.step(f"pushing {image.ref}")
        digest = engine.push(image.ref)
        out.success(f"pushed {image.ref}" + (f" ({digest})" if digest else ""))
    if as_json:
        out.result(
            json.dumps(
                {
                    "ok": True,
                    "image": image.ref,
                    "id": image.id,
                    "size": image.size,
                    "duration": round(image.duration, 3),
                    "commit": result.commit,
                    "dirty": job.source.dirty,  # --local with uncommitted changes in the image
                    "base_image": result.base_image,
                    "pushed": push,
                    # What a deployment should pin: the registry's digest of the pushed image.
                    "digest": digest,
                    "smoke_tested": smoke_test,
                    # What the registry cache did: which stages came from it, what was pushed.
                    "cache": result.cache.to_dict() if result.cache is not None else None,
                },
                indent=2,
            )
        )


@cli.command()
@click.option("--tag", default="latest", show_default=True, help="Tag of racetrack/python3 to build.")
@click.option(
    "--python-version",
    "python_versions",
    type=click.Choice(contract.PYTHON_VERSIONS),
    multiple=True,
    default=(contract.DEFAULT_PYTHON_VERSION,),
    show_default=True,
    help="The Python of the base image (repeat for several); each has its own image.",
)
@_python_image_opt
@_ca_opt
@_network_opt
@click.option("--no-cache", is_flag=True, help="Build every step anew.")
@click.option("--registry", metavar="R",
              help="Tag the images for this registry (HOST[:PORT][/PATH]) under their sources' digest.")
@click.option("--push", is_flag=True, help="Push them to --registry, for builds with --base-registry.")
@_verbosity
@click.pass_context
def base(
    ctx: click.Context,
    tag: str,
    python_versions: tuple[str, ...],
    python_image: str | None,
    ca_cert: Path | None,
    network: str | None,
    no_cache: bool,
    registry: str | None,
    push: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Build the python3 base images and the install tools (a build makes its own when missing)."""
    from .base_image import BaseImageOptions, build_base_image
    from .base_registry import base_registry_setting, publish_base_images
    from .build_tools import ensure_build_tools, tools_ref
    from .engine import DockerEngine

    out = _output(ctx, quiet, verbose)
    if push and not registry:
        raise UsageError("base --push needs --registry",
                         hint="give the registry to push to, e.g. --registry 127.0.0.1:5000")
    publish_to = base_registry_setting(registry, "--registry") if registry else None
    engine = DockerEngine()
    for version in dict.fromkeys(python_versions):
        options = BaseImageOptions(
            tag=tag,
            python_version=version,
            python_image=python_image,
            ca_cert=ca_cert,
            network=network,
            nocache=no_cache,
        )
        with BuildProgress(out, f"base image (Python {version})"):
            image = build_base_image(engine, options)
        out.success(
            f"built {image.ref} ({image.id[7:19]}, {image.size / 1e6:.1f} MB) in {image.duration:.1f}s"
        )
        with BuildProgress(out, f"install tools (Python {version})"):
            ensure_build_tools(engine, options)
        out.success(f"install tools ready: {tools_ref(version)}")
        if publish_to:
            with BuildProgress(out, f"publish (Python {version})"):
                published = publish_base_images(engine, image.id, options, publish_to, push=push)
            for ref, digest in published:
                out.success(("pushed " if push else "tagged ") + ref + (f" ({digest})" if digest else ""))


@cli.command()
@click.argument("target")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=contract.PORT,
    show_default=True,
    help="Port on 127.0.0.1 to publish (0: any free one).",
)
@_env_opt
@_run_tag_opt
@_extra_vars_opt
@_ready_timeout_opt
@_verbosity
@click.pass_context
def run(
    ctx: click.Context,
    target: str,
    port: int,
    env_pairs: tuple[str, ...],
    extra_vars: tuple[Any, ...],
    tag: str | None,
    ready_timeout: float,
    quiet: bool,
    verbose: bool,
) -> None:
    """Run a built job locally: TARGET is a manifest (its NAME:VERSION image) or an image name."""
    from . import serving
    from .engine import DockerEngine
    from .smoke import JOB_LOG_TITLE, running, wait_ready

    out = _output(ctx, quiet, verbose)
    image, environment = _image_and_env(target, out, tag, extra_vars)
    environment.update(_env_options(env_pairs))
    engine = DockerEngine()
    with running(engine, image, environment, host_port=port) as (container, url):
        out.step(f"started {image} as {container.name}; waiting until ready")
        wait_ready(url, container, timeout=ready_timeout)
        # From here on, Ctrl-C is how `run` is meant to end, even while the endpoints are listed.
        try:
            out.success(f"{image} is ready")
            _list_endpoints(out, url)
            out.info("Press Ctrl-C to stop and remove the container.")
            served = serving.identity(url)
            with serving.recorded(*served, url) if served else contextlib.nullcontext():
                for line in container.follow_logs():
                    if not out.quiet:  # the job's own log is what `run` is for: shown without -v
                        out.line(line)
        except KeyboardInterrupt:
            out.info("stopping and removing the container")
            return  # Ctrl-C is how `run` is meant to end: `running` removes the container
        raise BuildFailed(
            f"the container stopped ({container.status()})",
            log_tail=container.logs(),
            log_title=JOB_LOG_TITLE,
        )


@cli.command()
@click.argument("target")
@_run_tag_opt
@_extra_vars_opt
@_ready_timeout_opt
@_verbosity
@click.pass_context
def test(
    ctx: click.Context, target: str, tag: str | None, extra_vars: tuple[Any, ...], ready_timeout: float,
    quiet: bool, verbose: bool,
) -> None:
    """Smoke-test a built job: TARGET is a manifest (its NAME:VERSION image) or an image name."""
    from .engine import DockerEngine

    out = _output(ctx, quiet, verbose)
    image, environment = _image_and_env(target, out, tag, extra_vars)
    _smoke(out, DockerEngine(), image, environment, ready_timeout)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".", required=False)
@click.option("--name", help="The job's name (default: from the folder's name).")
@click.option("--format", "fmt", type=_FORMATS, default="fatman", show_default=True,
              help="fatman: fatman.yaml and a FatmanEntrypoint class; job: Racetrack 2.x's job.yaml and "
                   "a JobEntrypoint class.")
@_verbosity
@click.pass_context
def init(ctx: click.Context, directory: Path, name: str | None, fmt: str, quiet: bool, verbose: bool) -> None:
    """Write a new job into DIRECTORY (default .): manifest, entrypoint, requirements, secret templates.

    Never overwrites a file; in a git working tree, git.remote and git.branch come from it.
    """
    from .scaffold import init_job

    out = _output(ctx, quiet, verbose)
    result = init_job(directory, name, fmt="job" if fmt == "job" else "fatman")
    for note in result.notes:
        out.info(note)
    out.success(f"new job {result.name} in {directory}: {', '.join(result.written) or 'no new files'}")
    if result.ignored:
        out.info(f"  {directory / '.gitignore'}: added {', '.join(result.ignored)}")
    manifest = directory / result.manifest
    out.info("Next:")
    out.info(f"  racetrack-build serve {manifest} --reload     # serve it here; a save restarts it")
    out.info(f"  racetrack-build call {manifest} -i numbers='[40, 2]' -i scale=1.5")
    out.info(f"  racetrack-build build --local {manifest} --smoke-test")


@cli.command()
@_manifest_arg
@_extra_vars_opt
@click.option("--reload", "reload_", is_flag=True,
              help="Restart the job when its files change; a job that fails to load answers 503 naming why.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=contract.PORT,
    show_default=True,
    help="Port on 127.0.0.1 to serve on.",
)
@_env_opt
@_verbosity
@click.pass_context
def serve(
    ctx: click.Context,
    manifest: Path,
    extra_vars: tuple[Any, ...],
    reload_: bool,
    port: int,
    env_pairs: tuple[str, ...],
    quiet: bool,
    verbose: bool,
) -> None:
    """Serve the job from this Python environment, without Docker: the same wrapper and endpoints.

    Checks first that the environment has the job's requirements and the wrapper's server.
    """
    from . import serving
    from .dev_server import DevServer, ServePlan, check_port_free, plan_serve
    from .job import load_job

    out = _output(ctx, quiet, verbose)
    overrides = _env_options(env_pairs)

    def plan() -> ServePlan:
        spec = load_job(manifest, build="no", runtime="required", overrides=extra_vars)
        out.mask(spec.secret_values)
        return plan_serve(spec, port=port, reload=reload_, overrides=overrides)

    first = plan()
    check_port_free(port)
    server = DevServer(first, replan=plan)
    try:
        with server:
            out.step(f"serving {first.name} {first.version} from {first.job_root} with {sys.executable}")
            for line in server.wait_listening():
                out.line(line)
            out.success(f"{first.name} {first.version} is served at {first.url}"
                        + (" (restarted when its files change)" if reload_ else ""))
            _list_endpoints(out, first.url)
            out.info("Press Ctrl-C to stop.")
            with serving.recorded(first.name, first.version, first.url):
                for line in server.follow():
                    out.line(line)
            code = server.exit_code
    except KeyboardInterrupt:
        out.info("stopped")
        return  # Ctrl-C (or SIGTERM) is how serve is meant to end
    raise RacetrackError(f"the server stopped (exit code {code})", hint="its output above says why")


@cli.command("server")
@_verbosity
@click.pass_context
def server_command(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Keep racetrack-build warm for a rebuild loop: with RACETRACK_BUILD_SERVER=1, commands hand
    themselves to it and start without importing anything heavy (about 0.3 s less each).

    Runs until Ctrl-C or SIGTERM. Each command runs in a process of its own, forked from this one,
    with the client's environment, folder and terminal.
    """
    from .build_server import ENV_SWITCH, serve_forever

    out = _output(ctx, quiet, verbose)

    def ready(path: str) -> None:
        out.success(f"build server ready on {path}")
        out.info(f"Commands run by it where {ENV_SWITCH}=1 is set (export {ENV_SWITCH}=1). "
                 "Press Ctrl-C to stop.")

    try:
        serve_forever(on_ready=ready, on_command=out.step if verbose else None)
    except KeyboardInterrupt:
        pass
    out.info("build server stopped")


@cli.command("call")
@click.argument("target")
@click.option("-i", "pairs", multiple=True, metavar="NAME=VALUE",
              help="An argument; typed by the job's parameters (-i x=1.5 -i items='[1,2]').")
@click.option("--input", "input_file", type=click.File("r"), metavar="FILE|-",
              help="A JSON object of arguments (- for stdin); -i values go over it.")
@click.option("--endpoint", metavar="PATH",
              help="The endpoint: perform (default) or an auxiliary one, e.g. /explain.")
@click.option("--port", type=click.IntRange(1, 65535),
              help=f"With a manifest: the port its job is served on (default {contract.PORT}).")
@click.option("--token", envvar="FATMAN_AUTH_TOKEN", show_envvar=True, help="The job's auth token.")
@_extra_vars_opt
@_verbosity
@click.pass_context
def call_command(
    ctx: click.Context,
    target: str,
    pairs: tuple[str, ...],
    input_file: Any,
    endpoint: str | None,
    port: int | None,
    token: str | None,
    extra_vars: tuple[Any, ...],
    quiet: bool,
    verbose: bool,
) -> None:
    """Call a running job: TARGET is its URL, or a manifest whose job `serve` or `run` serves here.

    Prints the answer (indented on a terminal, as sent otherwise); a non-2xx answer is an error.
    """
    from . import call as calling
    from .manifest_args import manifest_target

    out = _output(ctx, quiet, verbose)
    if token:
        out.mask([token])
    parsed = [calling.parse_pair(pair) for pair in pairs]
    base = calling.read_input(input_file.read(), input_file.name) if input_file is not None else {}
    where = calling.resolve_target(manifest_target(target), endpoint=endpoint, port=port,
                                   overrides=extra_vars)
    client = calling.Client(where, token or None)
    calling.check_identity(client)
    params = calling.parameters_of(client, where.endpoint) if parsed else None
    given = bool(parsed) or input_file is not None
    inputs = calling.typed_inputs(parsed, params, base) if given else None
    out.detail(f"POST {where.url} " + (json.dumps(inputs) if inputs is not None else "(no body)"))
    answer = calling.call(client, inputs)
    out.result(calling.format_result(answer, pretty=bool(getattr(out.out, "isatty", lambda: False)())))


def _env_options(env_pairs: tuple[str, ...]) -> dict[str, str]:
    """``--env NAME=VALUE`` options (``run``, ``serve``) as a mapping, with runtime_env's rule for
    the names (a variable name the image does not set itself)."""
    from pydantic_core import PydanticCustomError

    from .manifest import check_runtime_env_name

    environment: dict[str, str] = {}
    for pair in env_pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--env {pair!r} is not NAME=VALUE")
        try:
            check_runtime_env_name(name)
        except PydanticCustomError as exc:  # the manifest's own rule and its message
            message = exc.message()
            quoted = repr(name)
            said = f"{name} {message[len(quoted):].lstrip()}" if message.startswith(quoted) else message
            raise UsageError(f"--env {said}") from None
        environment[name] = value
    return environment


def _list_endpoints(out: Output, url: str) -> None:
    """What ``run`` and ``serve`` print once the job answers: Swagger UI, each endpoint, and the
    gateway prefixes it also answers under."""
    from .smoke import gateway_prefixes, job_endpoints

    out.info(f"  Swagger UI: {url}/docs")
    for method, path in job_endpoints(url) or [("POST", "/api/v1/perform")]:
        out.info(f"  {method:<4} {url}{path}")
    prefixes = gateway_prefixes(url)
    if prefixes:
        out.info("  (and under " + " and ".join(url + prefix for prefix in prefixes) + ")")


def _image_and_env(
    target: str, out: Output, tag: str | None = None, extra_vars: tuple[Any, ...] = ()
) -> tuple[str, dict[str, str]]:
    """An image ref and the runtime secrets to start it with, from a manifest path or folder (its
    NAME:VERSION image, or ``tag``) or an image name."""
    from .manifest_args import manifest_target

    path = Path(manifest_target(target))
    if path.is_file() or target.endswith((".yaml", ".yml")):
        from .images import check_image_ref, job_image_ref
        from .job import load_job

        spec = load_job(path, build="no", runtime="required", overrides=extra_vars)
        out.mask(spec.secret_values)
        manifest = spec.manifest
        image = check_image_ref(tag, "--tag") if tag else job_image_ref(manifest.name, manifest.version)
        return image, dict(spec.runtime_secrets)
    if tag:
        raise UsageError(
            "--tag goes with a manifest", hint="give the image as TARGET, or the manifest with --tag"
        )
    if extra_vars:
        raise UsageError("-e goes with a manifest", hint="give the manifest (or its folder) as TARGET")
    return target, {}


def _smoke(
    out: Output, engine: Engine, image: str, environment: dict[str, str], ready_timeout: float
) -> None:
    from .smoke import smoke_test

    out.step(f"smoke test: starting {image}")
    results = smoke_test(engine, image, environment, ready_timeout=ready_timeout)
    if not results:
        out.warn(
            "the job documents no example input (docs_input_example/docs_input_examples): "
            "only readiness was checked"
        )
    for r in results:
        out.info(f"  POST {r.path} -> {r.status}")
    out.success(f"smoke test passed ({len(results)} example{'' if len(results) == 1 else 's'})")


def _report_error(out: Output, err: RacetrackError) -> None:
    if isinstance(err, ManifestError):
        out.error(err.message.splitlines()[0])
        for problem in err.problems:
            out.line(problem.format(err.filename))
        return
    out.error(str(err))
    if err.log_tail:
        out.line(err.log_title)
        for line in err.log_tail:
            out.line("  " + line)
        if err.hint:
            # Again below the log: the last lines are what a CI page shows first.
            out.line(f"To fix: {err.hint}")
    if out.verbose and err.__cause__ is not None:
        out.line(f"Caused by: {type(err.__cause__).__name__}: {err.__cause__}")


def _json_error(out: Output, err: RacetrackError) -> str:
    """A failed ``build --json`` still gives the pipeline a document to parse (masked: unlike a
    success summary, an error carries outside text such as a step's output)."""
    document: dict[str, Any] = {
        "ok": False,
        "exit_code": err.exit_code,
        "error": type(err).__name__,
        "message": out.redact(err.message),
        "hint": out.redact(err.hint) if err.hint else None,
    }
    if isinstance(err, ManifestError):
        document["problems"] = [p.to_dict() for p in err.problems]
    if isinstance(err, BuildFailed) or err.log_tail:
        document["log_tail"] = [out.redact(line) for line in err.log_tail]
    if err.details:
        document["diagnosis"] = _redacted(out, err.details)
    return json.dumps(document, indent=2)


def _redacted(out: Output, value: Any) -> Any:
    """``value`` (JSON data) with every string masked."""
    if isinstance(value, str):
        return out.redact(value)
    if isinstance(value, list):
        return [_redacted(out, v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(out, v) for k, v in value.items()}
    return value


def main(argv: list[str] | None = None) -> None:
    """Console script entry point: run the CLI and turn errors into messages and exit codes."""
    gc_tuning.tune_for_a_short_process()
    obj: dict[str, Any] = {}
    for stop in _STOP_SIGNALS:
        signal.signal(stop, _terminate)
    try:
        # standalone_mode=False: we print errors ourselves; ctx.exit(code) comes back as the code.
        code = cli.main(args=argv, prog_name="racetrack-build", standalone_mode=False, obj=obj)
    except RacetrackError as err:
        out = obj.get("output") or Output()
        _report_error(out, err)
        if obj.get("json_errors"):
            out.result(_json_error(out, err))
        sys.exit(err.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as err:
        # click turns an interrupt inside a command into Abort, the interrupt as its cause.
        stopped = err if isinstance(err, Terminated) else err.__cause__
        if isinstance(stopped, Terminated):
            print(f"Terminated ({stopped.name}).", file=sys.stderr)
            sys.exit(stopped.exit_code)
        print("Interrupted." if isinstance(err, KeyboardInterrupt) else "Aborted.", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as err:
        err.show()
        if _asked_for_json(sys.argv[1:] if argv is None else argv):
            # Refused before the command ran (an unknown option, a bad value): a pipeline reading
            # stdout still gets a document, as for every other failure of a --json command.
            Output().result(json.dumps({
                "ok": False,
                "exit_code": err.exit_code,
                "error": "UsageError",
                "message": err.format_message(),
                "hint": f"see {_command_path(err)} --help",
            }, indent=2))
        sys.exit(err.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _command_path(err: click.ClickException) -> str:
    ctx = getattr(err, "ctx", None)
    return ctx.command_path if ctx is not None else "racetrack-build"


def _asked_for_json(args: list[str]) -> bool:
    """Whether the command line has --json among its options (not after ``--``)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options
