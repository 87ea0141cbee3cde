"""The load generator and the process measurements the wrapper benchmarks share.

``run_wrk`` runs wrk once and parses its report; ``tree_cpu_seconds`` and ``tree_rss_kib`` read
/proc for a server process and everything it forked (a master and its workers), never wrk's own
usage; ``connections_per_process`` says how a server's workers share the load generator's
connections. One copy, so every benchmark table is read the same way.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADDER_LUA = HERE / "wrapper_throughput.lua"  # POST /api/v1/perform {"a": .., "b": ..}
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(url: str, duration: int, connections: int, *, threads: int = 1, lua: Path = ADDER_LUA,
            timeout: str | None = None) -> dict[str, float]:
    """One wrk run against ``url`` (the full URL the script posts to); returns requests/s, p50 and
    p99 latency (s), the request count and the failures (non-2xx/3xx plus socket errors).
    ``timeout`` is wrk's per-request timeout (``"10s"``); wrk's own default is 2 s."""
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua)]
    if timeout:
        args += ["--timeout", timeout]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=duration + 60,
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _seconds(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return {"rps": rps, "p50": p50, "p99": p99, "requests": total, "failures": failures}


def connections_per_process(port: int) -> list[int] | None:
    """How many established connections to ``port`` each process holds, fewest first (a worker
    holding none is not listed); ``None`` without ``ss`` (iproute2)."""
    if shutil.which("ss") is None:
        return None
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(collections.Counter(re.findall(r"pid=(\d+)", out)).values())


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KiB."""
    total = 0
    for child in _tree(pid):
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` and its descendants that are alive."""
    total = 0
    for child in _tree(pid):
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(pid: int, timeout: float = 15.0, step: float = 0.2) -> float:
    """Wait until ``pid``'s process tree uses less than a tenth of a core; returns the seconds waited.

    A warm-up wrk that ends leaves its last requests running on the server (a WSGI server cannot
    see that their client has gone): 16 calls of 50 ms are 0.8 s of CPU, which a measured run
    started at once would pay for without a client waiting for them, 4 % of a 10 s run."""
    started = time.monotonic()
    last = tree_cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(step)
        now = tree_cpu_seconds(pid)
        if now - last < 0.1 * step:
            break
        last = now
    return time.monotonic() - started


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found
