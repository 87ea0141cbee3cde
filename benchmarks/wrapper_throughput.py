"""Throughput of the python3 wrapper against a bare Flask app, under the same gunicorn settings.

The wrapper runs with FATMAN_SERVER=gunicorn here; benchmarks/wrapper_servers.py compares the
servers, granian (the default) included.

Both servers run on 127.0.0.1 with the wrapper's gunicorn settings (gthread workers, same workers,
threads, keep-alive); wrk drives ``POST /api/v1/perform`` with 16 connections. Rounds alternate
between the two so drift on the machine hits both alike. Then the wrapper alone answers at least
100,000 more requests while the resident memory of its process tree is sampled.

Usage (from the repository root, needs `wrk`)::

    .venv/bin/python benchmarks/wrapper_throughput.py [--duration 10] [--rounds 3] [--connections 16]

Exit status 0 when the targets hold (throughput ratio >= 0.9, p99 ratio <= 1.5, memory growth
under the limit), 1 otherwise. Every request loop is bounded by wrk's duration.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "base-images" / "python3" / "tests"))

from fatman_wrapper.config import Settings  # noqa: E402
from fatman_wrapper.server import gunicorn_options  # noqa: E402
from wrapper_server import free_port, running_server, wait_for  # noqa: E402
from wrapper_support import job_path, server_env  # noqa: E402

sys.path.insert(0, str(HERE))
from loadgen import run_wrk, tree_cpu_seconds, tree_rss_kib  # noqa: E402

PERFORM = "/api/v1/perform"


def start_bare(settings: Settings, port: int) -> subprocess.Popen:
    """The bare Flask app under gunicorn with exactly the wrapper's options."""
    options = gunicorn_options(settings, "127.0.0.1", port)
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(HERE),
        "-b",
        options["bind"],
        "-w",
        str(options["workers"]),
        "--threads",
        str(options["threads"]),
        "-k",
        options["worker_class"],
        "--keep-alive",
        str(options["keepalive"]),
        "-t",
        str(options["timeout"]),
        "--log-level",
        "warning",
    ]
    if options.get("worker_tmp_dir"):
        args += ["--worker-tmp-dir", options["worker_tmp_dir"]]
    args.append("wrapper_throughput_bare:create_app()")
    return subprocess.Popen(
        args, env=server_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per app")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads (1 leaves the other cores to the servers)"
    )
    parser.add_argument("--memory-requests", type=int, default=100_000)
    parser.add_argument(
        "--memory-limit-mib",
        type=float,
        default=10.0,
        help="largest RSS growth of the wrapper's process tree counted as flat",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2

    settings = Settings.from_env({})  # the wrapper's defaults, as in a container
    print(
        f"settings: {settings.workers} gthread worker(s) x {settings.threads} thread(s), "
        f"{args.connections} connections, {args.rounds} x {args.duration} s per app, cpus={os.cpu_count()}"
    )
    results: dict[str, list[dict[str, float]]] = {"bare": [], "wrapper": []}
    bare_port = free_port()
    bare = start_bare(settings, bare_port)
    bare_url = f"http://127.0.0.1:{bare_port}"
    try:
        with running_server(
            job_path("adder"),
            # gunicorn for both: this compares the wrapper with a bare app under one server's settings
            # (wrapper_servers.py compares the servers).
            env={
                "FATMAN_WORKERS": str(settings.workers),
                "FATMAN_THREADS": str(settings.threads),
                "FATMAN_SERVER": "gunicorn",
            },
        ) as wrapper:
            wait_for(bare_url + "/api/v1/perform", status=405, timeout=30, proc=bare)
            for url in (bare_url, wrapper.url):  # warm up: imports, caches, connection pools
                run_wrk(url + PERFORM, 2, args.connections, threads=args.wrk_threads)
            servers = {"bare": (bare_url, bare.pid), "wrapper": (wrapper.url, wrapper.proc.pid)}
            for round_no in range(args.rounds):
                # ABBA order, so a trend in the machine's load does not favour either app.
                order = ("bare", "wrapper") if round_no % 2 == 0 else ("wrapper", "bare")
                for name in order:
                    url, pid = servers[name]
                    cpu_before = tree_cpu_seconds(pid)
                    result = run_wrk(url + PERFORM, args.duration, args.connections, threads=args.wrk_threads)
                    result["cpu_us"] = (tree_cpu_seconds(pid) - cpu_before) / max(result["requests"], 1) * 1e6
                    results[name].append(result)
                    print(
                        f"  {name:8s} {result['rps']:9.0f} req/s  p50 {result['p50'] * 1e3:6.2f} ms  "
                        f"p99 {result['p99'] * 1e3:6.2f} ms  server CPU {result['cpu_us']:5.0f} us/req  "
                        f"({result['requests']} requests, {result['failures']} failures)"
                    )
            bare.terminate()
            bare.wait(timeout=30)
            time.sleep(1)

            rss_before = tree_rss_kib(wrapper.proc.pid)
            served, samples = 0, [rss_before]
            deadline = time.monotonic() + 600
            while served < args.memory_requests and time.monotonic() < deadline:
                run = run_wrk(wrapper.url + PERFORM, 10, args.connections, threads=args.wrk_threads)
                served += run["requests"]
                results["wrapper"][-1]["failures"] += run["failures"]
                samples.append(tree_rss_kib(wrapper.proc.pid))
            rss_after = samples[-1]
    finally:
        if bare.poll() is None:
            bare.kill()
            bare.wait()

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    ratio = median("wrapper", "rps") / median("bare", "rps")
    p99_ratio = median("wrapper", "p99") / median("bare", "p99")
    growth_mib = (rss_after - rss_before) / 1024
    failures = sum(r["failures"] for rs in results.values() for r in rs)
    summary = {
        "bare_rps": round(median("bare", "rps")),
        "wrapper_rps": round(median("wrapper", "rps")),
        "throughput_ratio": round(ratio, 3),
        "bare_p99_ms": round(median("bare", "p99") * 1e3, 2),
        "wrapper_p99_ms": round(median("wrapper", "p99") * 1e3, 2),
        "p99_ratio": round(p99_ratio, 3),
        "bare_cpu_us_per_request": round(median("bare", "cpu_us")),
        "wrapper_cpu_us_per_request": round(median("wrapper", "cpu_us")),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "memory_requests": served,
        "rss_before_mib": round(rss_before / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
        "rss_growth_mib": round(growth_mib, 2),
        "rss_samples_mib": [round(s / 1024, 1) for s in samples],
        "failed_requests": failures,
    }
    print(json.dumps(summary, indent=2))
    ok = (
        ratio >= 0.9
        and p99_ratio <= 1.5
        and growth_mib <= args.memory_limit_mib
        and failures == 0
        and served >= args.memory_requests
    )
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
