"""The 50 ms CPU job on the wrapper, one fresh server per run: throughput against what the cores
allow, and how wrk's keep-alive connections are split between the worker processes.

    .venv/bin/python benchmarks/cpu_job_balance.py [--runs 4] [--threads 4] [--workers 2]

Each run starts `fatman-wrapper run` (granian, the images' default) on tests/jobs/cpu_burn (or, with
`--server raw-granian-burn`, the same call in plain WSGI on granian: the server's floor), warms
it up with 2 s of wrk, then measures `--duration` seconds with 16 connections. The split is read
with `ss` (iproute2) a few seconds into the measured run: one worker holding every connection
leaves the other cores idle, which is what this script is for (benchmarks/README-wrapper.md, "The
50 ms CPU job"). `wrapper_servers.py` gives the issue's figure; this one explains it. Before the
runs, the job's own perform is called back to back in one process per worker, without a server,
for the same duration: what the cores allow on this machine at that moment (``reference_rps``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "base-images" / "python3" / "tests"))
sys.path.insert(0, str(HERE))

from loadgen import wait_until_quiet  # noqa: E402
from wrapper_servers import BURN_LUA, BURN_MS, measure, started, wrk  # noqa: E402
from wrapper_support import job_path  # noqa: E402


def _burn_back_to_back(seconds: float, out: multiprocessing.Queue) -> None:
    sys.path.insert(0, str(job_path("cpu_burn")))
    from fatman_entrypoint import CpuBurnEntrypoint

    job, calls, started = CpuBurnEntrypoint(), 0, time.monotonic()
    while time.monotonic() - started < seconds:
        job.perform(BURN_MS)
        calls += 1
    out.put(calls / (time.monotonic() - started))


def reference_rps(processes: int, seconds: float) -> float:
    """The job's own perform called back to back in ``processes`` processes, no server: what the
    cores allow on this machine now (the nominal figure ignores the machine's other load)."""
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_burn_back_to_back, args=(seconds, out))
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    rates = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    return sum(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=12, help="seconds measured per run")
    parser.add_argument("--server", choices=("wrapper-granian", "raw-granian-burn"),
                        default="wrapper-granian",
                        help="raw-granian-burn: the same call in plain WSGI on granian, the server's "
                             "own floor (--threads is then its blocking threads; the wrapper's pool "
                             "is --threads + 64)")
    args = parser.parse_args()
    capacity = min(args.workers, os.cpu_count() or 1) * 1000.0 / BURN_MS
    rows = []
    reference = reference_rps(min(args.workers, os.cpu_count() or 1), args.duration)
    print(json.dumps({"reference_rps": round(reference, 2),
                      "share_of_capacity": round(reference / capacity, 3)}), flush=True)
    for run in range(args.runs):
        job = job_path("cpu_burn")
        with tempfile.TemporaryDirectory(prefix="cpu-balance-") as metrics_dir, \
                started(args.server, args.workers, args.threads, job, metrics_dir) as (url, pid):
            wrk(url, 2, args.connections, BURN_LUA)
            wait_until_quiet(pid)  # the warm-up's last calls are not the measured run's
            result = measure(url, pid, args.duration, args.connections, BURN_LUA)
            cores = result["cpu_us"] * result["requests"] / 1e6 / args.duration
        row = {
            "run": run,
            "rps": round(result["rps"], 1),
            "share_of_capacity": round(result["rps"] / capacity, 3),
            "share_of_reference": round(result["rps"] / reference, 3),
            "failures": result["failures"],
            "server_cores": round(cores, 2),
            "server_cpu_ms_per_request": round(cores * 1000 / max(result["rps"], 1e-9), 1),
            "connections_per_worker": result["split"] or [],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        time.sleep(1)
    balanced = [r for r in rows if len(r["connections_per_worker"]) == args.workers]
    print(json.dumps({
        "capacity_rps": capacity,
        "reference_rps": round(reference, 2),
        "runs": len(rows),
        "runs_with_every_worker_connected": len(balanced),
        "median_share": sorted(r["share_of_capacity"] for r in rows)[len(rows) // 2],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
