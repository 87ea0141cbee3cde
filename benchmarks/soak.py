"""Soak a running python3 job: many mixed requests, every answer checked, memory sampled.

Sends REQUESTS requests over keep-alive connections from THREADS client threads, cycling through a
valid call, an invalid body (400), malformed JSON (400) and, when the job has one, a call that
raises (500 with the job's exception type). Every answer is checked against what that request must
get; connection errors are counted as dropped. The resident memory of the server (a local process
tree, or a container's cgroup) is sampled after each tenth of the run; after the first tenth (the
warm-up) it must stay within 10 %.

    # the wrapper run locally on a scenario job (the faults job raises on {"mode": "raise"})
    .venv/bin/python benchmarks/soak.py --local base-images/python3/tests/jobs/faults --requests 100000
    # a job image: started here on 127.0.0.1 and removed afterwards (adder-shaped bodies by default)
    .venv/bin/python benchmarks/soak.py --image soak-adder:1 --no-raising --requests 100000
    # the faults job built as an image: give its bodies
    .venv/bin/python benchmarks/soak.py --image soak-faults:1.0.0 --valid '{"mode": "ok", "x": 2}' \
        --raising '{"mode": "raise"}' --requests 100000

Exit status 0 when nothing unexpected happened, 1 otherwise; the figures are printed as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the job on 127.0.0.1:{port} did not become ready within {timeout} s")


def process_tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (gunicorn's arbiter and workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


_RSS_SCRIPT = (
    "import glob\n"
    "total = 0\n"
    "for status in glob.glob('/proc/[0-9]*/status'):\n"
    "    try:\n"
    "        for line in open(status):\n"
    "            if line.startswith('VmRSS:'):\n"
    "                total += int(line.split()[1]) * 1024\n"
    "    except OSError:\n"
    "        pass\n"
    "print(total)\n"
)


def container_rss(container: str) -> int:
    """The resident memory of every process in the container (VmRSS summed inside it).

    Not ``docker stats``: on cgroup v1 it counts active page cache too (the metrics files every
    worker maps, logs), which grows with traffic without being the server's memory.
    """
    out = subprocess.run(
        ["docker", "exec", container, "python", "-c", _RSS_SCRIPT],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    # The probe's own python is one of the processes it sums: a constant, the same in every sample.
    return int(out.strip())


def request_kinds(raising: dict | None, valid: dict) -> list[tuple[str, bytes, int, str | None]]:
    """(name, body, expected status, expected error type) of each kind of request."""
    kinds = [
        ("valid", json.dumps(valid).encode(), 200, None),
        ("invalid", json.dumps({"x": "not a number"}).encode(), 400, "ValidationError"),
        ("malformed", b'{"x": 1,', 400, "MalformedJSON"),
    ]
    if raising is not None:
        kinds.append(("raising", json.dumps(raising).encode(), 500, "ValueError"))
    return kinds


class Load:
    """Client threads sending a fixed number of requests, tallying what came back."""

    def __init__(self, port: int, kinds: list[tuple[str, bytes, int, str | None]], threads: int) -> None:
        self.port = port
        self.kinds = kinds
        self.threads = threads
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.dropped = 0
        self.sent = 0

    def _worker(self, count: int, offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        statuses: Counter[str] = Counter()
        unexpected: list[str] = []
        dropped = 0
        for i in range(count):
            name, body, status, error_type = self.kinds[(i + offset) % len(self.kinds)]
            try:
                conn.request("POST", "/api/v1/perform", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                dropped += 1
                unexpected.append(f"{name}: connection error {exc!r}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            statuses[f"{name} {response.status}"] += 1
            if response.status != status:
                unexpected.append(f"{name}: {response.status} {data[:200]!r}")
            elif error_type is not None and json.loads(data).get("type") != error_type:
                unexpected.append(f"{name}: type {json.loads(data).get('type')} not {error_type}")
        conn.close()
        with self.lock:
            self.statuses.update(statuses)
            self.unexpected.extend(unexpected)
            self.dropped += dropped
            self.sent += count

    def run(self, total: int) -> None:
        """Send ``total`` requests spread over the threads, and wait for every answer."""
        share = [total // self.threads + (1 if i < total % self.threads else 0) for i in range(self.threads)]
        workers = [
            threading.Thread(target=self._worker, args=(n, i), daemon=True) for i, n in enumerate(share)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=3600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--local", type=Path, help="a job folder to serve with the wrapper here")
    target.add_argument("--image", help="a job image to run with docker on 127.0.0.1")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=8, help="client threads (one connection each)")
    parser.add_argument("--workers", default="2", help="FATMAN_WORKERS of the server")
    parser.add_argument("--no-raising", action="store_true", help="the job has no input that raises")
    parser.add_argument("--valid", type=json.loads, help="JSON body of a valid call (default: per mode)")
    parser.add_argument("--raising", type=json.loads, help="JSON body of a call that raises ValueError")
    args = parser.parse_args(argv)

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATMAN_")}
    env["FATMAN_WORKERS"] = args.workers
    proc = None
    container = None
    if args.local:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fatman_wrapper", "run", "fatman_entrypoint.py", "--root", str(args.local),
             "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        memory = lambda: process_tree_rss(proc.pid)  # noqa: E731
        valid, raising = {"mode": "ok", "x": 2}, {"mode": "raise"}
    else:
        container = f"soak-{os.getpid()}"
        subprocess.run(
            ["docker", "run", "-d", "--rm", "--name", container, "-e", f"FATMAN_WORKERS={args.workers}",
             "-p", f"127.0.0.1:{port}:7000", args.image],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        memory = lambda: container_rss(container)  # noqa: E731
        valid, raising = {"x": 2, "y": 3}, {"x": 2, "y": 3, "mode": "raise"}
    valid = args.valid if args.valid is not None else valid
    raising = args.raising if args.raising is not None else raising
    try:
        wait_ready(port)
        kinds = request_kinds(None if args.no_raising else raising, valid)
        load = Load(port, kinds, args.threads)
        tenth = max(1, args.requests // 10)
        samples = []
        started = time.monotonic()
        for _ in range(10):
            load.run(tenth)
            samples.append(memory())
        elapsed = time.monotonic() - started
        baseline = samples[0]
        drift = max(abs(s - baseline) for s in samples[1:]) / baseline
        report = {
            "requests": load.sent,
            "seconds": round(elapsed, 1),
            "requests_per_second": round(load.sent / elapsed),
            "statuses": dict(sorted(load.statuses.items())),
            "unexpected": len(load.unexpected),
            "unexpected_examples": load.unexpected[:5],
            "dropped_connections": load.dropped,
            "rss_mib_after_each_tenth": [round(s / 2**20, 1) for s in samples],
            "rss_drift_after_warmup_percent": round(100 * drift, 1),
        }
        print(json.dumps(report, indent=2))
        ok = not load.unexpected and load.dropped == 0 and drift <= 0.10 and load.sent == tenth * 10
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        if container is not None:
            subprocess.run(["docker", "stop", "-t", "30", container], capture_output=True, timeout=90)


if __name__ == "__main__":
    sys.exit(main())
