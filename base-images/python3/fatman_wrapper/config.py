"""Settings read from the environment, once, with the defaults documented in README.md."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from .errors import JobLoadError

DEFAULT_PORT = 7000
DEFAULT_HOST = "0.0.0.0"
DEFAULT_THREADS = 8
MAX_DEFAULT_WORKERS = 8
DEFAULT_TIMEOUT = 300
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_GRACEFUL_TIMEOUT = 30
DEFAULT_QUEUE_TIMEOUT = 30.0
# Threads kept beyond max_concurrency + max_queue so probes, /metrics and 429 answers always find one.
SPARE_THREADS = 2


def available_cpus() -> int:
    """CPUs this process may use: its affinity, further limited by a cgroup CPU quota if any.

    ``os.cpu_count()`` reports the host's cores, which in a container limited to 2 CPUs would start
    far too many workers.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    quota: float | None = None
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:  # cgroup v2: "max 100000" or "200000 100000"
            limit, period = f.read().split()[:2]
            if limit != "max":
                quota = int(limit) / int(period)
    except (OSError, ValueError):
        try:
            with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
                limit_us = int(f.read())
            with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
                period_us = int(f.read())
            if limit_us > 0:
                quota = limit_us / period_us
        except (OSError, ValueError):
            pass
    if quota is not None:
        cpus = min(cpus, max(1, int(quota + 0.5)))
    return max(1, cpus)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise JobLoadError(
            f"{name}={raw!r} is not a whole number", hint=f"set {name} to e.g. {default}"
        ) from None
    if value < minimum:
        raise JobLoadError(f"{name}={value} is below {minimum}", hint=f"set {name} to e.g. {default}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise JobLoadError(
            f"{name}={raw!r} is not a number", hint=f"set {name} to e.g. {default:g}"
        ) from None
    if not value >= minimum or value == float("inf"):  # also refuses nan
        raise JobLoadError(
            f"{name}={raw} is not a finite number of at least {minimum:g}",
            hint=f"set {name} to e.g. {default:g}",
        )
    return value


def parse_public_endpoints(raw: str) -> tuple[str, ...]:
    """``"/api/v1/perform, /api/v1/webview/"`` -> ``("/api/v1/perform", "/api/v1/webview")``."""
    paths: list[str] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        path = "/" + item.strip("/")
        paths.append(path)
    return tuple(paths)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the wrapper reads from the environment (names as in README.md)."""

    name: str = ""
    version: str = ""
    auth_token: str = ""
    public_endpoints: tuple[str, ...] = ()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    threads: int = DEFAULT_THREADS
    timeout: int = DEFAULT_TIMEOUT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Overload protection, per worker process; 0 turns the limit off (the default).
    max_concurrency: int = 0
    max_queue: int = 0
    queue_timeout: float = DEFAULT_QUEUE_TIMEOUT
    # Seconds a perform/auxiliary call may take before the client gets 504; 0 = no limit.
    request_timeout: float = 0.0
    graceful_timeout: int = DEFAULT_GRACEFUL_TIMEOUT

    @property
    def worker_threads(self) -> int:
        """gunicorn threads per worker: ``threads``, raised to fit the overload limit when one is set.

        Every admitted or queued request holds a thread; without spare ones a full queue would leave
        none to answer the probes or to refuse the next request with 429 at once.
        """
        if self.max_concurrency <= 0:
            return self.threads
        return max(self.threads, self.max_concurrency + self.max_queue + SPARE_THREADS)

    @property
    def pub_prefix(self) -> str:
        """``/pub/fatman/<name>/<version>``, the path a Racetrack gateway forwards; "" if unnamed."""
        if self.name and self.version:
            return f"/pub/fatman/{self.name}/{self.version}"
        return ""

    @property
    def pub_prefixes(self) -> tuple[str, ...]:
        """Every path prefix a Racetrack gateway may forward a request under; none if unnamed."""
        return (self.pub_prefix,) if self.pub_prefix else ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``FATMAN_*`` variables; raises ``JobLoadError`` for malformed numbers."""
        env = os.environ if env is None else env
        concurrency = _int(env, "FATMAN_MAX_CONCURRENCY", 0, 0)
        return cls(
            name=env.get("FATMAN_NAME", "").strip(),
            version=env.get("FATMAN_VERSION", "").strip(),
            auth_token=env.get("FATMAN_AUTH_TOKEN", ""),
            public_endpoints=parse_public_endpoints(env.get("FATMAN_PUBLIC_ENDPOINTS", "")),
            host=env.get("FATMAN_HOST", "").strip() or DEFAULT_HOST,
            port=_int(env, "FATMAN_PORT", DEFAULT_PORT, 1),
            workers=_int(env, "FATMAN_WORKERS", min(available_cpus(), MAX_DEFAULT_WORKERS), 1),
            threads=_int(env, "FATMAN_THREADS", DEFAULT_THREADS, 1),
            timeout=_int(env, "FATMAN_TIMEOUT", DEFAULT_TIMEOUT, 0),
            max_body_bytes=_int(env, "FATMAN_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1),
            max_concurrency=concurrency,
            # By default a burst as large again as the limit may wait for a slot.
            max_queue=_int(env, "FATMAN_MAX_QUEUE", concurrency, 0),
            queue_timeout=_float(env, "FATMAN_QUEUE_TIMEOUT", DEFAULT_QUEUE_TIMEOUT, 0),
            request_timeout=_float(env, "FATMAN_REQUEST_TIMEOUT", 0.0, 0),
            graceful_timeout=_int(env, "FATMAN_GRACEFUL_TIMEOUT", DEFAULT_GRACEFUL_TIMEOUT, 0),
        )
