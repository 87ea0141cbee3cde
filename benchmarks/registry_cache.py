"""A CI runner's first build of an expensive job, with and without the registry cache, in one run.

    .venv/bin/python benchmarks/registry_cache.py [--rounds 2] [--json out.json]

The job: the data-science stack (numpy, pandas, scikit-learn, with libgomp1) plus psycopg2==2.9.9,
which has no wheel and is compiled from source (libpq-dev and gcc in system_dependencies). Each
timed build runs on a new engine (tests/integration/second_engine.py: a dockerd of its own, its
data on a tmpfs, started for that build and stopped after), so it has never seen the job, and
pulls the base image and install tools from a registry on 127.0.0.1 (Debian's docker-registry),
where `racetrack-build base --push --registry R` put them. First, one build on a new engine fills
the job's cache in that registry (``--cache-to``); then, per round, a new engine builds with
``--cache-from`` and another builds without it (the order alternates). The packages are downloaded
once by the host's pip and served to the builds from a find-links server on 127.0.0.1 (host
networking), so the figures measure building, not the internet. Times are the CLI's wall clock,
base pull included.

Target (issue 12): the cached build takes at most 0.3x the cold one. Needs root, dockerd,
docker-registry, openssl, openssh-server and iproute2, and the first engine's base image (built here
when missing, with `racetrack-build base`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from build_times import find_links_server, sh  # noqa: E402  (benchmarks/, first on sys.path)

from tests.integration.second_engine import SecondEngine  # noqa: E402

REQUIREMENTS = ["numpy==2.2.6", "pandas==2.3.3", "scikit-learn==1.7.2", "psycopg2==2.9.9"]
# What uv needs to build psycopg2's sdist offline (its setup.py build backend).
BUILD_REQUIREMENTS = ["setuptools>=40.8.0", "wheel"]
SYSTEM_PACKAGES = ["libgomp1", "libpq-dev", "gcc"]
ENTRY = '''\
import numpy as np
import pandas as pd
import psycopg2
from sklearn.linear_model import LinearRegression


class Model:
    def perform(self, x: float) -> dict:
        """Predict y for x, and say which libpq psycopg2 was built against."""
        frame = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [1.0, 3.0, 5.0]})
        model = LinearRegression().fit(frame[["x"]], frame["y"])
        return {"y": float(model.predict(np.array([[x]]))[0]), "libpq": psycopg2.__libpq_version__}
'''
REGISTRY_CONFIG = """\
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {storage}
http:
  addr: 127.0.0.1:{port}
"""
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def registry(folder: Path) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1, storing in ``folder``; stopped (by its pid) after."""
    port = _free_port()
    (folder / "registry.yml").write_text(REGISTRY_CONFIG.format(storage=folder / "storage", port=port))
    log = (folder / "registry.log").open("wb")
    process = subprocess.Popen(["docker-registry", "serve", str(folder / "registry.yml")],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"docker-registry did not start; see {folder / 'registry.log'}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _root_image_setting() -> str:
    """RACETRACK_PYTHON_IMAGE, else the product's default when the engine has it, else the images
    scripts/ensure-root-image.sh makes on machines that cannot pull (docs/ci.md)."""
    if os.environ.get("RACETRACK_PYTHON_IMAGE"):
        return os.environ["RACETRACK_PYTHON_IMAGE"]
    found = subprocess.run(["docker", "image", "inspect", "python:3.11-slim"], capture_output=True,
                           check=False)
    return "python:{version}-slim" if found.returncode == 0 else "racetrack-ci/python:{version}"


def snapshot(folder: Path) -> dict[str, str]:
    """A copy of this checkout's tool (package, templates, base image sources) in ``folder``, and the
    environment that runs it: every build of the run uses the same sources, even while the
    checkout changes (the base image's tag is a digest of them)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", "tests", ".pytest_cache", "*.egg-info")
    for name in ("racetrack_builder", "templates", "base-images"):
        shutil.copytree(REPO / name, folder / name, ignore=skip)
    return {"PYTHONPATH": str(folder)}


def build_on_new_engine(cli: list[str], manifest: Path, args: list[str], tool_env: dict[str, str],
                        log: Path | None = None) -> tuple[float, dict[str, object]]:
    """Start a new engine, build there (timed), stop it: (seconds, the --json summary)."""
    folder = Path(tempfile.mkdtemp(prefix="rt-bench-", dir="/tmp"))
    engine = SecondEngine.start(folder)
    try:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT")}
        env.update(tool_env)
        env["DOCKER_HOST"] = engine.socket_url
        started = time.monotonic()
        done = subprocess.run([*cli, "build", "--local", str(manifest), "--network", "host", "--json", *args],
                              env=env, cwd=manifest.parent, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, check=False)
        seconds = time.monotonic() - started
        if log is not None:
            log.write_text(done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"the build failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        return seconds, json.loads(done.stdout)
    finally:
        engine.stop()
        # A stopped dockerd can leave its network namespace file mounted in the exec root.
        for mounted in (folder / "exec" / "netns").glob("*"):
            subprocess.run(["umount", "-l", str(mounted)], capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--logs", type=Path, help="Write each build's output (timestamped lines) here.")
    args = parser.parse_args()
    for tool in ("dockerd", "docker-registry"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install docker.io docker-registry)")
    cli = [sys.executable, "-m", "racetrack_builder"]
    ca = ["--ca-cert", str(HOST_CA)] if HOST_CA.is_file() else []
    with tempfile.TemporaryDirectory(prefix="registry-cache-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "registry").mkdir()
        tool_env = snapshot(tmp / "tool")
        wheels = tmp / "wheels"
        sh(sys.executable, "-m", "pip", "download", "--quiet", "-d", str(wheels), *REQUIREMENTS,
           *BUILD_REQUIREMENTS)
        with registry(tmp / "registry") as reg, find_links_server(wheels) as links:
            # The base image and install tools, published from the first engine (built when missing).
            sh(*cli, "base", "--network", "host", *ca, "--python-image", _root_image_setting(), "--push",
               "--registry", reg, "-q", cwd=tmp, env=tool_env)
            job = tmp / "job"
            job.mkdir()
            (job / "entrypoint.py").write_text(ENTRY)
            (job / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
            (job / "fatman.yaml").write_text(
                "name: cache-bench\nowner_email: bench@example.com\nlang: python3:latest\n"
                "git:\n  remote: .\npython:\n  entrypoint_path: entrypoint.py\n"
                "  requirements_path: requirements.txt\n"
                f"system_dependencies: [{', '.join(SYSTEM_PACKAGES)}]\n"
                f"build_env:\n  PIP_FIND_LINKS: '{links}'\n  PIP_NO_INDEX: '1'\n"
            )
            sh("git", "init", "-q", "-b", "master", str(job))
            sh("git", "-C", str(job), "add", "-A")
            sh("git", "-C", str(job), "-c", "user.name=bench", "-c", "user.email=bench@example.com",
               "commit", "-q", "-m", "job")
            cache = f"{reg}/cache/cache-bench-{uuid.uuid4().hex[:6]}"
            common = ["--base-registry", reg, "--tag", "cache-bench:1"]
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)

            def log(name: str) -> Path | None:
                return args.logs / f"{name}.log" if args.logs else None

            fill_s, fill = build_on_new_engine(cli, job / "fatman.yaml",
                                               [*common, "--cache-from", cache, "--cache-to", cache],
                                               tool_env, log("fill"))
            cold: list[float] = []
            cached: list[float] = []
            reports: list[object] = []
            for number in range(args.rounds):
                order = ("cached", "cold") if number % 2 == 0 else ("cold", "cached")
                for kind in order:
                    extra = ["--cache-from", cache] if kind == "cached" else []
                    seconds, summary = build_on_new_engine(cli, job / "fatman.yaml", [*common, *extra],
                                                           tool_env, log(f"{kind}-{number + 1}"))
                    (cached if kind == "cached" else cold).append(seconds)
                    if kind == "cached":
                        reports.append(summary["cache"])
    ratios = [c / w for c, w in zip(cached, cold, strict=True)]
    median = round(statistics.median(ratios), 3)
    result = {
        "fill_build_s": round(fill_s, 1),
        "fill_cache": fill["cache"],
        "cold_s": [round(x, 1) for x in cold],
        "cached_s": [round(x, 1) for x in cached],
        "ratio": [round(r, 3) for r in ratios],
        "ratio_median": median,
        "cached_reports": reports,
    }
    print(json.dumps(result, indent=2))
    print(f"{'met' if median <= 0.3 else 'NOT met'}: cached first build on a new engine "
          f"{median}x the cold one (target <= 0.3x)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
