"""Cold build of a data-science job (numpy, pandas, scikit-learn, libgomp1) against the Dockerfile a
user would write by hand, in one run; then the rebuild after adding one small requirement, and the
rebuild after a change to the code alone.

    .venv/bin/python benchmarks/cold_build.py [--rounds 2] [--json out.json]

Needs a Docker engine and the base image racetrack/python3:latest (`racetrack-build base`). The
packages are downloaded once by the host's pip and served to both builds from a find-links server on
127.0.0.1 (host networking), so the figures measure installing, not the internet.

The hand-written reference is what the job type's users write: FROM the same base image, apt for
the system package, `pip install -r requirements.txt`, `COPY .` (docker build, classic builder, as
docker-py drives it). Rounds alternate the two, so machine noise hits both alike; each cold build
runs with --no-cache. Target (issue: real jobs): ours at most 0.6x the hand-written cold build.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

# The same runners and package server as the other build benchmark (run from benchmarks/ or the
# repository root: this folder is the script's own, first on sys.path).
from build_times import find_links_server, sh, timed

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = "racetrack/python3:latest"
REQUIREMENTS = ["numpy==2.2.6", "pandas==2.3.3", "scikit-learn==1.7.2"]
SMALL_REQUIREMENT = "six==1.17.0"
SYSTEM_PACKAGE = "libgomp1"
ENTRY = '''\
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression


class Model:
    def perform(self, x: float) -> float:
        """Predict y for x (revision {rev})."""
        frame = pd.DataFrame({{"x": [0.0, 1.0, 2.0], "y": [1.0, 3.0, 5.0]}})
        model = LinearRegression().fit(frame[["x"]], frame["y"])
        return float(model.predict(np.array([[x]]))[0])
'''
HAND_WRITTEN = f"""\
FROM {BASE_IMAGE}
USER root
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
RUN apt-get update && apt-get install -y --no-install-recommends {SYSTEM_PACKAGE} \\
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --prefix /opt/fatman/job-prefix -r /tmp/requirements.txt \\
    && mv /opt/fatman/job-prefix/lib/python3*/site-packages/* /opt/fatman/job/site-packages/ \\
    && rm -rf /opt/fatman/job-prefix /tmp/requirements.txt
COPY --chown=10001:10001 . /src/fatman/
USER fatman
CMD ["/opt/fatman/venv/bin/fatman-wrapper", "run", "entrypoint.py"]
"""


def _step_used_cache(log: str, marker: str) -> bool:
    """Whether every build step whose instruction holds ``marker`` was a cache hit in a -v log."""
    verdicts: list[bool] = []
    current: bool | None = None
    for line in log.splitlines():
        if " step " in line and "/" in line.split(" step ", 1)[1][:8]:
            if current is not None:
                verdicts.append(current)
            current = False if marker in line else None
        elif current is not None and ("Using cache" in line or line.strip() == "CACHED"):
            current = True  # the classic builder's words, or BuildKit's
    if current is not None:
        verdicts.append(current)
    return bool(verdicts) and all(verdicts)


def git(*args: str, cwd: Path) -> None:
    sh("git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args, cwd=cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--ca-cert", type=Path, default=Path("/etc/ssl/certs/ca-certificates.crt"),
                        help="CA bundle for making the base image current first (TLS-intercepting networks)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "racetrack_builder"]
    # The base image first, so no timed build rebuilds it (both builds start FROM it).
    ca = ["--ca-cert", str(args.ca_cert)] if args.ca_cert.is_file() else []
    sh(*cli, "base", "--network", "host", *ca, "-q")
    run_id = uuid.uuid4().hex[:8]
    tags: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cold-build-") as tmp_name:
        tmp = Path(tmp_name)
        wheels = tmp / "wheels"
        sh(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "-d", str(wheels),
           *REQUIREMENTS, SMALL_REQUIREMENT)
        with find_links_server(wheels) as links:
            job = tmp / "job"
            job.mkdir()
            (job / "entrypoint.py").write_text(ENTRY.format(rev=0))
            (job / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
            (job / "Dockerfile.hand").write_text(HAND_WRITTEN)
            (job / ".dockerignore").write_text("Dockerfile.hand\n.git\nfatman.yaml\n")
            (job / "fatman.yaml").write_text(
                "name: cold-bench\nowner_email: bench@example.com\nlang: python3:latest\n"
                "git:\n  remote: .\npython:\n  entrypoint_path: entrypoint.py\n"
                "  requirements_path: requirements.txt\n"
                f"system_dependencies: [{SYSTEM_PACKAGE}]\n"
                f"build_env:\n  PIP_FIND_LINKS: '{links}'\n  PIP_NO_INDEX: '1'\n"
            )
            sh("git", "init", "-q", "-b", "master", str(job))
            git("add", "-A", cwd=job)
            git("commit", "-q", "-m", "job", cwd=job)
            ours_tag = f"racetrack-bench/cold-ours:{run_id}"
            hand_tag = f"racetrack-bench/cold-hand:{run_id}"
            tags += [ours_tag, hand_tag]
            ours_cmd = [*cli, "build", "--local", str(job / "fatman.yaml"), "--network", "host",
                        "--tag", ours_tag, "-q"]
            hand_cmd = ["docker", "build", "-q", "--network", "host", "-f", str(job / "Dockerfile.hand"),
                        "--build-arg", f"PIP_FIND_LINKS={links}", "--build-arg", "PIP_NO_INDEX=1",
                        "-t", hand_tag, str(job)]
            # The hand-written file on the classic builder, as docker-py drives it; ours as users
            # run it (DOCKER_BUILDKIT=0 would keep its own steps off BuildKit too).
            classic = {**os.environ, "DOCKER_BUILDKIT": "0"}
            env = {name: value for name, value in os.environ.items() if name != "DOCKER_BUILDKIT"}
            ours, hand = [], []
            for _ in range(args.rounds):
                ours.append(timed(*ours_cmd, "--no-cache", env=env))
                hand.append(timed(*hand_cmd[:2], "--no-cache", *hand_cmd[2:], env=classic))
            ratios = [o / h for o, h in zip(ours, hand, strict=True)]
            # One small requirement added: the install step re-runs, the apt layer comes from the cache.
            (job / "requirements.txt").write_text("\n".join([*REQUIREMENTS, SMALL_REQUIREMENT]) + "\n")
            git("commit", "-q", "-am", "one more requirement", cwd=job)
            added = timed(*ours_cmd, env=env)
            # The code alone changed: every dependency layer must come from the cache.
            (job / "entrypoint.py").write_text(ENTRY.format(rev=1))
            git("commit", "-q", "-am", "code", cwd=job)
            verbose = subprocess.run([*ours_cmd[:-1], "-v"], env=env, capture_output=True, text=True)
            # The install step: a BuildKit step of the build (this job has no secrets), or the
            # install container (install.py) on engines without BuildKit; reused when its inputs match.
            install_cached = verbose.returncode == 0 and (
                "reusing the packages installed" in verbose.stderr
                or _step_used_cache(verbose.stderr, "install the job's requirements"))
            apt_cached = verbose.returncode == 0 and _step_used_cache(verbose.stderr, "apt-get")
    for tag in tags:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
    result = {
        "cold_ours_s": [round(x, 1) for x in ours],
        "cold_hand_written_s": [round(x, 1) for x in hand],
        "cold_ratio": [round(r, 2) for r in ratios],
        "cold_ratio_median": round(statistics.median(ratios), 2),
        "add_one_requirement_s": round(added, 1),
        "add_one_requirement_vs_cold": round(added / statistics.median(ours), 2),
        "code_only_rebuild_reuses_install": install_cached,
        "code_only_rebuild_reuses_apt": apt_cached,
    }
    print(json.dumps(result, indent=2))
    print(f"{'met' if result['cold_ratio_median'] <= 0.6 else 'NOT met'}: cold build ratio "
          f"{result['cold_ratio_median']} (target <= 0.6x the hand-written Dockerfile)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
