"""``serve``: run a job from the current Python environment, without Docker, for the developer's loop.

The job is served by the same wrapper as in its image (``fatman_wrapper.create_app``), so it has
the same endpoints, the same ``/pub/fatman/NAME/VERSION`` prefixes and the same environment
variables: FATMAN_NAME, FATMAN_VERSION, FATMAN_PUBLIC_ENDPOINTS, ``runtime_env`` and the secret
runtime env, as ``templates/job.Dockerfile.j2`` and ``run`` give them. Its working directory and root
are ``git.directory`` of the working tree holding the manifest, as for ``build --local``.

Three pieces: :func:`plan_serve` works out what to run and checks the environment first (the
wrapper's dependencies, the job's requirements, the port); :class:`DevServer` is a handle for the
running server (start, output lines, stop), like ``engine.Container`` for ``run``; the server
itself is :mod:`racetrack_builder.dev_child`, a separate process holding only the wrapper and the
job, restarted by Werkzeug's reloader when the job's files change.

Nothing here prints: the server's output comes back as lines for the CLI to show (masked), and
what serve does (a restart after the manifest changed) goes to the reporter.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import reporting
from .errors import EnvironmentFailure, RacetrackError, SourceError
from .job import JobSpec
from .resources import base_images_dir
from .secrets import manifest_folder, merge_env, secret_env_path

HOST = "127.0.0.1"
EXTRA = "serve"
# The wrapper's server stack as import name -> distribution name: what `serve` needs besides the
# job's own requirements. Werkzeug's server replaces gunicorn here (its reloader is the point).
SERVER_MODULES = {
    "flask": "Flask",
    "werkzeug": "Werkzeug",
    "prometheus_client": "prometheus-client",
    "swagger_ui_bundle": "swagger-ui-bundle",
}
# Used when racetrack-build's own metadata cannot say (a source tree run without installing it);
# the same ranges as the [serve] extra in pyproject.toml and the wrapper's dependencies.
_FALLBACK_SPECS = ("flask>=2.0,<4", "werkzeug>=2.0,<4", "prometheus-client>=0.12",
                   "swagger-ui-bundle>=0.0.9,<2", "packaging>=21")
STOP_TIMEOUT = 5.0
_SGR = re.compile(r"\x1b\[[0-9;]*m")
# How often the manifest and the secret env file are looked at (see DevServer.follow).
MANIFEST_POLL = 0.5


@dataclass(frozen=True)
class ServePlan:
    """What ``serve`` runs: the command, its folder and its whole environment."""

    name: str
    version: str
    job_root: Path
    command: tuple[str, ...]
    environment: dict[str, str] = field(repr=False)
    port: int
    reload: bool
    watched: tuple[Path, ...]
    """The manifest and the secret runtime env file: a change to them means a new environment."""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def job_root_of(spec: JobSpec) -> Path:
    """``git.directory`` of the git working tree holding the manifest (as ``build --local`` uses it);
    without a working tree yet, the manifest's folder when ``git.directory`` is ``.``."""
    from .git_transport import git_text
    from .source_files import job_root

    folder = manifest_folder(spec.manifest_path)
    directory = spec.manifest.git.directory
    toplevel = git_text(folder, "rev-parse", "--show-toplevel")
    if toplevel:
        return job_root(Path(toplevel), directory, toplevel)
    if directory in (".", ""):
        return folder.resolve()
    raise SourceError(
        f"{folder} is not inside a git working tree, so git.directory {directory!r} has no root "
        "to start from",
        hint="run `git init` at the repository's root, or serve from there",
    )


def job_environment(spec: JobSpec, overrides: Mapping[str, str]) -> dict[str, str]:
    """The variables the job image sets, with the same values (templates/job.Dockerfile.j2's ENV):
    the job's identity under both generations' names (``FATMAN_*`` and Racetrack 2.x's ``JOB_*``),
    what the manifest sets for the wrapper (``wrapper_env()``: a job.yaml's job type version,
    prefix, limits and home page), runtime_env with the secret runtime env over it (secrets win),
    then ``overrides`` (``--env``)."""
    manifest = spec.manifest
    env = {
        "FATMAN_NAME": manifest.name,
        "FATMAN_VERSION": manifest.version,
        "JOB_NAME": manifest.name,
        "JOB_VERSION": manifest.version,
        "FATMAN_PUBLIC_ENDPOINTS": ",".join(manifest.public_endpoints),
        # As in the image: logs appear as they are written, and no __pycache__ in the job's folder.
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(manifest.wrapper_env())
    if "VENV_PACKAGES_PATH" in env:  # a job.yaml's: here, the packages of this environment
        env["VENV_PACKAGES_PATH"] = sysconfig.get_paths()["purelib"]
    env.update(manifest.build_env_at_runtime(spec.build_secrets))
    env.update(merge_env(manifest.runtime_env, spec.runtime_secrets))
    env.update(overrides)
    return env


def install_command(packages: list[str] | None = None) -> str:
    """The pip command that installs what serve needs into this environment."""
    specs = packages if packages is not None else serve_requirements()
    return f"{sys.executable} -m pip install " + " ".join(f"'{s}'" for s in specs)


def serve_requirements() -> list[str]:
    """The requirements of racetrack-build's ``[serve]`` extra, from its installed metadata."""
    try:
        requires = importlib.metadata.requires("racetrack-build") or []
    except importlib.metadata.PackageNotFoundError:
        return list(_FALLBACK_SPECS)
    marker = re.compile(r"""\s*;\s*extra\s*==\s*["']serve["']\s*$""")
    found = [marker.sub("", r).replace(" ", "") for r in requires if marker.search(r)]
    return found or list(_FALLBACK_SPECS)


def wrapper_path() -> Path | None:
    """Where ``fatman_wrapper`` comes from for the server: None when it is installed in this
    environment, else the copy of its sources racetrack-build carries (put on PYTHONPATH)."""
    if importlib.util.find_spec("fatman_wrapper") is not None:
        return None
    return base_images_dir() / "python3"


def check_server_stack() -> None:
    """The wrapper's dependencies are importable here; EnvironmentFailure naming the install."""
    missing = [dist for module, dist in SERVER_MODULES.items() if importlib.util.find_spec(module) is None]
    if importlib.util.find_spec("packaging") is None:
        missing.append("packaging")
    if missing:
        raise EnvironmentFailure(
            f"serve runs the job in this Python environment ({sys.executable}), which lacks "
            f"{', '.join(missing)} (the wrapper's server)",
            hint=f"install them: {install_command()}  (or `pip install 'racetrack-build[serve]'` "
            "where the package index has racetrack-build)",
        )


def requirement_names(spec: JobSpec, job_root: Path) -> list[str]:
    """The requirement lines of the job's requirements files (``-r`` includes followed), options,
    local paths and URLs without a name left out."""
    if not spec.manifest.python.requirements_path:
        return []
    from .requirements import _logical_lines, plan_requirements  # pip's line syntax, read once

    def read(rel: str) -> str | None:
        path = job_root / rel
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None

    plan = plan_requirements(spec.manifest.python.requirements_path, read,
                             spec.manifest.python_field("requirements_path"))
    lines: list[str] = []
    for rel in plan.files:
        for line in _logical_lines(read(rel) or ""):
            if line.startswith("-"):
                continue  # options and includes (constraints only pin, they install nothing)
            egg = re.search(r"#egg=([A-Za-z0-9._-]+)", line)
            if egg:
                lines.append(egg.group(1))
            elif "://" not in line.split("@")[0] and not line.startswith((".", "/", "~", "file:")):
                lines.append(line)
    return lines


def missing_requirements(lines: list[str]) -> list[str]:
    """Which requirement lines this environment does not satisfy, each with what it has instead."""
    from packaging.requirements import InvalidRequirement, Requirement

    missing: list[str] = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue  # pip will say; serve cannot tell
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            have = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(f"{line} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            missing.append(f"{line} ({have} installed)")
    return missing


def check_port_free(port: int) -> None:
    """EnvironmentFailure when something already listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Werkzeug binds it
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise EnvironmentFailure(
                f"port {port} on {HOST} is in use ({exc.strerror})",
                hint="stop what serves there (a `racetrack-build run` or another serve), or pick "
                "another port with --port",
            ) from exc


def _git_version(job_root: Path) -> str:
    """What an image built with ``--local`` now would set as GIT_VERSION: the commit, ``-dirty``
    with uncommitted changes in the job's folder; "" outside a repository or before a commit."""
    from .git_transport import git_text

    commit = git_text(job_root, "rev-parse", "--verify", "--quiet", "HEAD")
    if not commit:
        return ""
    changed = git_text(job_root, "status", "--porcelain", "--", ".")
    return f"{commit}-dirty" if changed else commit


def plan_serve(spec: JobSpec, *, port: int, reload: bool, overrides: Mapping[str, str],
               base_environ: Mapping[str, str] | None = None) -> ServePlan:
    """Check this environment can serve the job and work out how; nothing is started.

    Raises EnvironmentFailure for a missing server stack or job requirement and a busy port,
    SourceError for a job root that is not there.
    """
    check_server_stack()
    root = job_root_of(spec)
    entrypoint = spec.manifest.python.entrypoint_path
    if not (root / entrypoint).is_file():
        raise SourceError(f"{spec.manifest.python_field('entrypoint_path')}: {entrypoint} is not in {root}",
                          hint="fix the path (it is relative to git.directory) or create the file")
    missing = missing_requirements(requirement_names(spec, root))
    if missing:
        raise EnvironmentFailure(
            f"the job's requirements are not all installed in this environment ({sys.executable}): "
            + "; ".join(missing),
            hint=f"install them: {sys.executable} -m pip install -r "
            f"{root / (spec.manifest.python.requirements_path or 'requirements.txt')}",
        )
    environ = dict(os.environ if base_environ is None else base_environ)
    for name in ("WERKZEUG_RUN_MAIN", "WERKZEUG_SERVER_FD"):  # an outer reloader's, not ours
        environ.pop(name, None)
    environ["GIT_VERSION"] = _git_version(root)  # as the image sets it; --env may replace it
    environ.update(job_environment(spec, overrides))
    environ.update(FATMAN_HOST=HOST, FATMAN_PORT=str(port))
    extra_path = wrapper_path()
    if extra_path is not None:
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (environ.get("PYTHONPATH"), str(extra_path)) if p)
    watched = [Path(os.path.abspath(spec.manifest_path))]
    secret = secret_env_path(spec.manifest, spec.manifest_path, "runtime")
    if secret is not None:
        watched.append(secret)
    command = [sys.executable, "-m", "racetrack_builder.dev_child", entrypoint, "--root", str(root),
               "--host", HOST, "--port", str(port)]
    if spec.manifest.python.entrypoint_class:
        command += ["--class", spec.manifest.python.entrypoint_class]
    if reload:
        command.append("--reload")
        for path in watched:
            command += ["--ignore", str(path)]
    return ServePlan(name=spec.manifest.name, version=spec.manifest.version, job_root=root,
                     command=tuple(command), environment=environ, port=port, reload=reload,
                     watched=tuple(watched))


def _mtimes(paths: tuple[Path, ...]) -> tuple[float | None, ...]:
    def one(path: Path) -> float | None:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return None

    return tuple(one(p) for p in paths)


class DevServer:
    """A running ``serve``: the server process, its output as lines, a stop that always cleans up.

    ``replan`` reads the manifest again after it changed (``--reload``): the server is restarted
    with the new environment, or kept as it is when the manifest no longer validates.
    """

    def __init__(self, plan: ServePlan, replan: Callable[[], ServePlan] | None = None) -> None:
        self.plan = plan
        self.replan = replan
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump_thread: threading.Thread | None = None
        self._last_exit: int | None = None
        # Taken before the first start: an edit made while the server starts must count.
        self._seen = _mtimes(plan.watched)

    # -- the process --------------------------------------------------------------------------------
    def start(self) -> None:
        # A queue per process: the end mark of a process stopped for a restart must not end follow().
        self._lines = queue.Queue()
        # A process group of its own: Werkzeug's reloader runs the server in a child of the child,
        # and stop() must reach both. No stdin: the terminal's Ctrl-C is ours to forward.
        self._process = subprocess.Popen(
            list(self.plan.command),
            cwd=self.plan.job_root,
            env=self.plan.environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            process_group=0,
        )
        self._pump_thread = threading.Thread(target=self._pump, args=(self._process, self._lines),
                                             name="serve-output", daemon=True)
        self._pump_thread.start()

    @staticmethod
    def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                # Werkzeug colours its log; the CLI escapes control characters in what it prints,
                # so the colour codes would show as text: drop them.
                lines.put(_SGR.sub("", line.rstrip("\n")))
        lines.put(None)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The server's exit status once it ended (kept after stop())."""
        return self._last_exit if self._process is None else self._process.poll()

    def stop(self) -> None:
        """Stop the server and its reloaded child: SIGTERM to the group, SIGKILL after a grace time."""
        process, self._process = self._process, None
        if process is None:
            return
        self._last_exit = process.poll()
        if self._last_exit is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the reloaded child, should it outlive its parent
        if self._pump_thread is not None:
            self._pump_thread.join(STOP_TIMEOUT)  # it closes the pipe once the output ends

    def __enter__(self) -> DevServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- waiting and output -------------------------------------------------------------------------
    def wait_listening(self, timeout: float = 60.0) -> list[str]:
        """Wait until the server answers ``/live``; return the lines it printed meanwhile.

        Raises RacetrackError when it stopped first (its output is in the message)."""
        deadline = time.monotonic() + timeout
        early: list[str] = []
        while time.monotonic() < deadline:
            early += self._drain()
            if not self.running():
                early += self._drain(wait=1.0)
                raise RacetrackError(
                    f"the server stopped before it listened (exit code {self.exit_code})"
                    + ("".join("\n  " + line for line in early[-20:])),
                    hint="its output above says why",
                )
            if answers(self.plan.url + "/live"):
                return early
            time.sleep(0.1)
        raise RacetrackError(f"the server did not listen on {self.plan.url} within {timeout:.0f}s")

    def _drain(self, wait: float = 0.0) -> list[str]:
        """The lines printed so far; with ``wait``, up to that long for the end of the output."""
        lines: list[str] = []
        end = time.monotonic() + wait
        while True:
            try:
                line = self._lines.get(timeout=max(0.001, end - time.monotonic())) if wait else \
                    self._lines.get_nowait()
            except queue.Empty:
                return lines
            if line is None:
                self._lines.put(None)  # keep the end mark for follow()
                return lines
            lines.append(line)

    def follow(self) -> Iterator[str]:
        """The server's output lines until it stops.

        With ``--reload`` the manifest and the secret runtime env file are looked at twice a second
        (two known files, so a stat each: Werkzeug's reloader, which watches the job's files, restarts
        its child with the environment it started with, and only this process can read the
        manifest again into a new one).
        """
        while True:
            try:
                line = self._lines.get(timeout=MANIFEST_POLL)
            except queue.Empty:
                line = ""
            if line is None:
                return
            if line:
                yield line
            if self.plan.reload and self.replan is not None:
                now = _mtimes(self.plan.watched)
                if now != self._seen:
                    self._seen = now  # before reading it again: an edit meanwhile counts next time
                    self._restart_for_manifest()

    def _restart_for_manifest(self) -> None:
        assert self.replan is not None
        try:
            plan = self.replan()
        except RacetrackError as err:
            reporting.warn(f"{err}\nthe job keeps running as it was; fix it and save to restart it")
            return
        reporting.progress(f"{', '.join(p.name for p in self.plan.watched)} changed: restarting the server")
        self.stop()
        self.plan = plan
        self.start()


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether an HTTP server answers at ``url`` at all (any status)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - 127.0.0.1 only
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False

