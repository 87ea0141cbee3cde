"""Build times and image size of racetrack-build against a hand-written Dockerfile, in one run.

    .venv/bin/python benchmarks/build_times.py [--runs 5] [--json out.json]

Needs a Docker engine and the base image racetrack/python3:latest (built by `racetrack-build base`
or `.ci/run`). The job is an adder with one requirement, served to pip in the build by a static
find-links server on 127.0.0.1 (host networking), so no step reaches the internet.

What it measures, each as a median over --runs, alternating the two builders so machine noise hits
both alike:
- cold build (--no-cache) of both (median of at most three);
- no-change rebuild: racetrack-build on the same commit (target: under 3 s);
- code-change rebuild: a new commit changing the entrypoint only (target: at most 1.3x the
  hand-written Dockerfile's rebuild for the same change); also printed, for context, the ratio
  against the same hand-written file plus a `RUN python -c "import adder"` step, the least a
  hand-written build does to prove the import that ours proves;
- code-change rebuild against the engine building the context ours renders for a code change of
  its own (`render -o DIR`, then the `docker build` it prints, BuildKit): target at most 1.5x
  (issue 12);
- image size: final image minus base image against what the job adds (installed packages + code),
  for ours and the hand-written one (target: ours <= packages + code + 1 MB).

Both builders go through their command line (racetrack-build; `docker build` with the classic
builder that docker-py also drives), so each figure includes the tool's own start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

BASE_IMAGE = "racetrack/python3:latest"
REQUIREMENT = "six==1.16.0"
ENTRY = '''\
class FatmanEntrypoint:
    def perform(self, x: float, y: float) -> float:
        """Add two numbers (revision {rev})."""
        import six  # the job's own requirement
        return x + y + 0 * len(six.__version__)

    def docs_input_example(self) -> dict:
        return {{"x": 1, "y": 2}}
'''
HAND_WRITTEN = f"""\
FROM {BASE_IMAGE}
USER root
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --prefix /opt/fatman/job-prefix -r /tmp/requirements.txt \\
    && mv /opt/fatman/job-prefix/lib/python3*/site-packages/* /opt/fatman/job/site-packages/ \\
    && rm -rf /opt/fatman/job-prefix /tmp/requirements.txt
COPY --chown=10001:10001 . /src/fatman/
USER fatman
CMD ["python", "-m", "fatman_wrapper", "run", "adder.py"]
"""
# The same hand-written file with the least a hand-written build can do to prove what ours proves:
# that the entrypoint imports inside the image and has its class. Ours must prove it, so this is
# the like-for-like reference; the 1.3x target is measured against the bare one above.
# The label keeps its layers apart from the bare file's: sharing them, its COPY would come cached.
HAND_WRITTEN_CHECKED = (
    HAND_WRITTEN.replace("USER root\n", 'USER root\nLABEL bench.variant="import-check"\n', 1)
    + """\
RUN ["python", "-c", "import adder; adder.FatmanEntrypoint"]
"""
)
MANIFEST = """\
name: bench-adder
owner_email: bench@example.com
lang: python3:latest
version: 1.0.0
git:
  remote: {remote}
python:
  entrypoint_path: adder.py
  requirements_path: requirements.txt
"""


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


def timed(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    sh(*args, cwd=cwd, env=env)
    return time.perf_counter() - started


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass

    def handle(self) -> None:
        # uv may drop a download it no longer needs (a second copy of a wheel): not an error here.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()


@contextlib.contextmanager
def find_links_server(folder: Path) -> Iterator[str]:
    """The wheels and sdists of ``folder`` as a find-links page on 127.0.0.1 (no request log: the
    handler's own, not an attribute set on a functools.partial, which the server never reads)."""
    handler = functools.partial(_QuietFiles, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def image_size(ref: str) -> int:
    return int(sh("docker", "image", "inspect", "--format", "{{.Size}}", ref))


def added_content(ref: str) -> int:
    """Bytes of what the job adds: its installed packages and its code, measured inside the image."""
    out = sh(
        "docker",
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        ref,
        "-c",
        "du -sb /opt/fatman/job /src/fatman | awk '{s+=$1} END {print s}'",
    )
    return int(out)


class _BuildServer:
    """`racetrack-build server` in a runtime folder of its own, and the environment that hands a
    command to it (RACETRACK_BUILD_SERVER=1)."""

    def __init__(self, cli: list[str], folder: Path) -> None:
        folder.mkdir(mode=0o700)
        self.env = {"XDG_RUNTIME_DIR": str(folder), "RACETRACK_BUILD_SERVER": "1"}
        self._log = folder / "server.log"
        with self._log.open("w") as out:
            self._proc = subprocess.Popen([*cli, "server"], env={**os.environ, **self.env}, stdout=out,
                                          stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "build server ready" not in self._log.read_text():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the build server did not start:\n" + self._log.read_text())
            time.sleep(0.05)

    def close(self) -> None:
        self._proc.send_signal(signal.SIGINT)
        self._proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--buildkit-docker", default="docker",
                        help="the docker CLI that builds the rendered context with BuildKit (docker 23+ "
                             "needs the buildx plugin for it; docker 20.10 has it built in)")
    parser.add_argument("--server", action="store_true",
                        help="also time the --local rebuild handed to `racetrack-build server` "
                             "(RACETRACK_BUILD_SERVER=1)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "racetrack_builder"]
    sh("docker", "image", "inspect", BASE_IMAGE)

    with tempfile.TemporaryDirectory(prefix="racetrack-bench-") as tmp_name:
        tmp = Path(tmp_name)
        wheels = tmp / "wheels"
        sh(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheels), REQUIREMENT)
        with find_links_server(wheels) as links:
            requirements = f"--no-index\n--find-links {links}\n{REQUIREMENT}\n"
            # the job's repository (a bare remote) and a hand-written build folder with the same files
            work, bare, hand = tmp / "work", tmp / "remote.git", tmp / "hand"
            work.mkdir()
            env = {
                "GIT_AUTHOR_NAME": "b",
                "GIT_AUTHOR_EMAIL": "b@example.com",
                "GIT_COMMITTER_NAME": "b",
                "GIT_COMMITTER_EMAIL": "b@example.com",
            }
            sh("git", "init", "-q", "-b", "master", str(work))
            sh("git", "init", "-q", "--bare", "-b", "master", str(bare))
            (work / "requirements.txt").write_text(requirements)
            (work / "fatman.yaml").write_text(MANIFEST.format(remote=f"file://{bare}"))

            def commit(rev: int) -> None:
                (work / "adder.py").write_text(ENTRY.format(rev=rev))
                sh("git", "add", "-A", cwd=work, env=env)
                sh("git", "commit", "-q", "-m", f"rev {rev}", cwd=work, env=env)
                sh("git", "push", "-q", str(bare), "master", cwd=work, env=env)
                hand.mkdir(exist_ok=True)
                for name in ("adder.py", "requirements.txt"):
                    shutil.copy2(work / name, hand / name)
                (hand / "Dockerfile").write_text(HAND_WRITTEN)
                (hand / "Dockerfile.checked").write_text(HAND_WRITTEN_CHECKED)

            manifest = str(work / "fatman.yaml")
            ours = [*cli, "build", manifest, "-q", "--network", "host", "--tag", "bench-adder:ours"]
            theirs = ["docker", "build", "-q", "--network", "host", "-t", "bench-adder:hand", str(hand)]
            checked = ["docker", "build", "-q", "--network", "host", "-t", "bench-adder:checked"]
            checked += ["-f", str(hand / "Dockerfile.checked"), str(hand)]
            classic = {"DOCKER_BUILDKIT": "0"}

            def rendered_build() -> list[str]:
                """`render -o` of the current commit, and the command it prints to build that
                context with the engine (BuildKit: its install step is a RUN --mount)."""
                context = tmp / f"rendered-{time.monotonic_ns()}"
                rendered = subprocess.run([*cli, "render", manifest, "-o", str(context)],
                                          capture_output=True, text=True, check=True)
                lines = rendered.stderr.splitlines()  # the command is printed for a human: on stderr
                command = lines[lines.index("Build it with:") + 1].split()
                # e.g. `DOCKER_BUILDKIT=1 docker build -t NAME:VERSION DIR`: its context and flags,
                # run with our tag (buildkit, below, sets the variable).
                command = [word for word in command if not word.startswith("DOCKER_BUILDKIT=")]
                assert command[:2] == ["docker", "build"], rendered.stderr
                return [args.buildkit_docker, "build", "-q", "--network", "host", *command[2:],
                        "-t", "bench-adder:rendered"]

            buildkit = {"DOCKER_BUILDKIT": "1"}
            commit(0)
            cold_ours, cold_hand = [], []
            for _ in range(min(args.runs, 3)):  # --no-cache builds are slow: three are enough
                cold_ours.append(timed(*ours, "--no-cache"))
                cold_hand.append(timed(*theirs, "--no-cache", env=classic))
            same_ours, same_hand, change_ours, change_local, change_hand = [], [], [], [], []
            change_checked: list[float] = []
            change_rendered: list[float] = []
            change_served: list[float] = []
            server = _BuildServer(cli, tmp / "runtime") if args.server else None
            timed(*checked, env=classic)  # its layers cached before the timed rebuilds
            timed(*rendered_build(), env=buildkit)  # and the rendered context's (its install step)
            for rev in range(1, args.runs + 1):
                same_ours.append(timed(*ours))
                same_hand.append(timed(*theirs, env=classic))
                commit(3 * rev)
                change_ours.append(timed(*ours))
                change_hand.append(timed(*theirs, env=classic))
                change_checked.append(timed(*checked, env=classic))
                # The engine building the context ours renders (issue 12's reference), for a commit
                # of its own: ours builds the same Dockerfile on the same BuildKit, so the commit
                # ours just built would be a cache hit, not a code change.
                commit(3 * rev + 1)
                change_rendered.append(timed(*rendered_build(), env=buildkit))
                # --local: the developer's loop, building the working tree as the hand-written build does
                commit(3 * rev + 2)
                change_local.append(timed(*ours, "--local"))
                if server is not None:
                    commit(3 * rev + 2 + 10_000)  # a commit of its own, as for the engine's
                    change_served.append(timed(*ours, "--local", env=server.env))
            if server is not None:
                server.close()

            base = image_size(BASE_IMAGE)
            result = {
                "runs": args.runs,
                "cold_build_s": {
                    "ours": round(statistics.median(cold_ours), 2),
                    "hand_written": round(statistics.median(cold_hand), 2),
                },
                "no_change_rebuild_s": {
                    "ours": round(statistics.median(same_ours), 2),
                    "hand_written": round(statistics.median(same_hand), 2),
                },
                "code_change_rebuild_s": {
                    "ours": round(statistics.median(change_ours), 2),
                    "ours_local": round(statistics.median(change_local), 2),
                    "hand_written": round(statistics.median(change_hand), 2),
                    "hand_written_with_import_check": round(statistics.median(change_checked), 2),
                    "engine_on_rendered_context": round(statistics.median(change_rendered), 2),
                },
                "image_added_bytes": {
                    "ours": image_size("bench-adder:ours") - base,
                    "hand_written": image_size("bench-adder:hand") - base,
                    "packages_plus_code": added_content("bench-adder:ours"),
                },
            }
            times = result["code_change_rebuild_s"]
            result["code_change_ratio"] = round(times["ours"] / times["hand_written"], 2)
            result["code_change_ratio_local"] = round(times["ours_local"] / times["hand_written"], 2)
            checked_time = times["hand_written_with_import_check"]
            result["code_change_ratio_vs_checked"] = round(times["ours"] / checked_time, 2)
            result["code_change_ratio_local_vs_checked"] = round(times["ours_local"] / checked_time, 2)
            rendered_time = times["engine_on_rendered_context"]
            result["code_change_ratio_vs_rendered"] = round(times["ours"] / rendered_time, 2)
            result["code_change_ratio_local_vs_rendered"] = round(times["ours_local"] / rendered_time, 2)
            if change_served:
                times["build_server_local"] = round(statistics.median(change_served), 2)
                result["code_change_ratio_build_server_vs_rendered"] = round(
                    times["build_server_local"] / rendered_time, 2)
            result["size_overhead_bytes"] = (
                result["image_added_bytes"]["ours"] - result["image_added_bytes"]["packages_plus_code"]
            )
            for variant in ("ours", "hand", "checked", "rendered", "1.0.0"):  # 1.0.0: render's own tag
                ref = f"bench-adder:{variant}"
                subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)

    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    verdicts = {
        "no-change rebuild < 3 s": result["no_change_rebuild_s"]["ours"] < 3.0,
        "code-change rebuild <= 1.3x hand-written (clone)": result["code_change_ratio"] <= 1.3,
        "code-change rebuild <= 1.3x hand-written (--local)": result["code_change_ratio_local"] <= 1.3,
        "image <= base + packages + code + 1 MB": result["size_overhead_bytes"] <= 1_000_000,
        "code-change rebuild <= 1.5x the engine on the rendered context (clone)":
            result["code_change_ratio_vs_rendered"] <= 1.5,
        "code-change rebuild <= 1.5x the engine on the rendered context (--local)":
            result["code_change_ratio_local_vs_rendered"] <= 1.5,
    }
    if "code_change_ratio_build_server_vs_rendered" in result:
        verdicts["code-change rebuild <= 1.5x the engine on the rendered context (--local, build server)"] = (
            result["code_change_ratio_build_server_vs_rendered"] <= 1.5)
    # Not what the 1.3x target is measured against, printed for context: against a hand-written
    # file that proves the import as ours does.
    print(
        f"info  code-change ratio against a hand-written file with the same import check: "
        f"{result['code_change_ratio_vs_checked']} (clone), "
        f"{result['code_change_ratio_local_vs_checked']} (--local)"
    )
    for name, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
