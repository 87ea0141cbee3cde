"""Settings read from the environment, once, with the defaults documented in README.md."""

from __future__ import annotations

import dataclasses
import os
import re
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
DEFAULT_HOME_PAGE = "/docs"
# The HTTP servers ``run`` can serve with (FATMAN_SERVER); the default is chosen in server.py.
SERVERS = ("granian", "gunicorn")
DEFAULT_TRACING_HEADER = "X-Request-Tracing-Id"
DEFAULT_CALLER_HEADER = "X-Caller-Name"
# The two gateway prefixes a job answers under: Racetrack 2.x's and the fatman era's.
JOB_PREFIX = "/pub/job"
FATMAN_PREFIX = "/pub/fatman"
# FATMAN_CONTRACT: whose answers the wrapper gives where the fatman era and Racetrack 2.x differ
# ("/" redirect code, a job's ValueError, /health's status and code). Images built from a job.yaml
# set 2; anything else (fatman.yaml images, a developer's machine) is the fatman era's, 1.
FATMAN_CONTRACT = 1
RACETRACK2_CONTRACT = 2
# What Racetrack 2.x reads as true in LOG_STRUCTURED / LOG_CALLER_NAME.
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
# A home page: a path of this server (letters, digits and URL punctuation, an optional query), never
# a URL, "//host", a backslash, a percent-escape (%2e%2e) or a dot segment; checked in _home_page.
_HOME_PAGE = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*(\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*)?")
# An HTTP header name (RFC 9110 token characters).
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$&'*+.^_`|~-]+")


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


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in TRUE_WORDS


def _header(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not _HEADER_NAME.fullmatch(raw):
        raise JobLoadError(f"{name}={raw!r} is not an HTTP header name", hint=f"set {name} to e.g. {default}")
    return raw


def _home_page(env: Mapping[str, str]) -> str:
    """``FATMAN_HOME_PAGE`` (the manifest's ``jobtype_extra.home_page``): where ``/`` redirects, a
    path under the job's own prefix such as ``/docs`` or ``/api/v1/webview/``."""
    raw = env.get("FATMAN_HOME_PAGE", "").strip()
    if not raw:
        return DEFAULT_HOME_PAGE
    page = raw if raw.startswith("/") else "/" + raw
    segments = page.partition("?")[0].split("/")[1:]
    # Every segment but a last (trailing-slash) one is a name; "/" itself would redirect to itself.
    bad_segment = any(s in ("", ".", "..") for s in segments[:-1]) or segments[-1] in (".", "..")
    if not _HOME_PAGE.fullmatch(page) or bad_segment or page == "/" or page.startswith("/?"):
        raise JobLoadError(
            f"FATMAN_HOME_PAGE={raw!r} is not a path of this job",
            hint="set it to a path such as /docs or /api/v1/webview/ (no URL, '..', '//' or %-escapes)",
        )
    return page


def workers_sharing(workers: int, concurrency: int, queue: int) -> int:
    """How many of ``workers`` run, so that the overload limit is the server's in all: each worker
    runs ``concurrency / n`` calls and lets ``queue / n`` wait, so ``n`` must divide both (workers
    share no memory to count calls together). ``max_concurrency: 1`` is then one call at a time,
    in one worker, as 2.x's job runs it. No limit: ``workers``."""
    if concurrency <= 0:
        return workers
    return max(n for n in range(1, workers + 1) if concurrency % n == 0 and queue % n == 0)


def _contract(env: Mapping[str, str]) -> int:
    """``FATMAN_CONTRACT``: 1 (the fatman era's answers, the default) or 2 (Racetrack 2.x's)."""
    raw = env.get("FATMAN_CONTRACT", "").strip()
    if not raw:
        return FATMAN_CONTRACT
    if raw not in ("1", "2"):
        raise JobLoadError(
            f"FATMAN_CONTRACT={raw!r} is neither 1 nor 2",
            hint="set it to 2 for Racetrack 2.x's answers (job.yaml images do), 1 or nothing for the "
            "fatman era's",
        )
    return int(raw)


def _server(env: Mapping[str, str]) -> str:
    """``FATMAN_SERVER``: ``granian`` or ``gunicorn``; "" leaves the choice to ``server.py``."""
    raw = env.get("FATMAN_SERVER", "").strip().lower()
    if raw and raw not in SERVERS:
        raise JobLoadError(
            f"FATMAN_SERVER={raw!r} is neither granian nor gunicorn",
            hint="unset it (granian where it runs, Python 3.10+; gunicorn on 3.9) or set granian or gunicorn",
        )
    return raw


def _first(env: Mapping[str, str], *names: str) -> str:
    """The first of ``names`` set to a non-empty value (stripped), else ""."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return ""


def _pub_family(env: Mapping[str, str]) -> str:
    """The prefix the job names itself with (the webview's ``base_url``): ``FATMAN_PUB_PREFIX`` if
    given; else the fatman era's while ``FATMAN_NAME`` is set (as in every image built so far, and
    a 2.x gateway takes it too), Racetrack 2.x's when only ``JOB_NAME`` is."""
    raw = env.get("FATMAN_PUB_PREFIX", "").strip().rstrip("/")
    if raw:
        if raw not in (JOB_PREFIX, FATMAN_PREFIX):
            raise JobLoadError(
                f"FATMAN_PUB_PREFIX={raw!r} is neither {JOB_PREFIX} nor {FATMAN_PREFIX}",
                hint=f"set it to {JOB_PREFIX} (Racetrack 2.x) or {FATMAN_PREFIX}",
            )
        return raw
    if not env.get("FATMAN_NAME", "").strip() and env.get("JOB_NAME", "").strip():
        return JOB_PREFIX
    return FATMAN_PREFIX


def name_conflicts(env: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for a JOB_* and a FATMAN_* variable set to different values (the JOB_* one wins)."""
    env = os.environ if env is None else env
    found = []
    for new, old in (("JOB_NAME", "FATMAN_NAME"), ("JOB_VERSION", "FATMAN_VERSION")):
        a, b = env.get(new, "").strip(), env.get(old, "").strip()
        if a and b and a != b:
            found.append(f"{new}={a!r} and {old}={b!r} differ: serving as {a!r}")
    return found


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
    workers_asked: int = 0  # FATMAN_WORKERS (or its default), before the overload limit's share
    threads: int = DEFAULT_THREADS
    timeout: int = DEFAULT_TIMEOUT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Overload protection, each worker's share of FATMAN_MAX_CONCURRENCY and FATMAN_MAX_QUEUE
    # (workers_sharing); 0 turns the limit off (the default).
    max_concurrency: int = 0
    max_queue: int = 0
    queue_timeout: float = DEFAULT_QUEUE_TIMEOUT
    # Seconds a perform/auxiliary call may take before the client gets 504; 0 = no limit.
    request_timeout: float = 0.0
    graceful_timeout: int = DEFAULT_GRACEFUL_TIMEOUT
    # FATMAN_SERVER: "granian", "gunicorn", or "" for server.default_server().
    server: str = ""
    # Where "/" redirects, under the prefix the client came through.
    home_page: str = DEFAULT_HOME_PAGE
    # The gateway prefix the job names itself with (the webview's base_url); both are served.
    pub_family: str = FATMAN_PREFIX
    # Whose answers differ where the eras do (FATMAN_CONTRACT): 1 the fatman era's, 2 Racetrack 2.x's.
    contract: int = FATMAN_CONTRACT
    # Racetrack 2.x: headers of the request's tracing id and of its caller, and how logs look.
    tracing_header: str = DEFAULT_TRACING_HEADER
    caller_header: str = DEFAULT_CALLER_HEADER
    log_structured: bool = False
    log_caller_name: bool = False
    access_log: bool = True
    # Reported by /health (and /live), as the image and the infrastructure set them.
    job_type_version: str = ""
    git_version: str = ""
    deployed_by_racetrack_version: str = ""
    deployment_timestamp: str = ""

    @property
    def worker_threads(self) -> int:
        """Threads per worker (gunicorn's; granian's blocking threads): ``threads``, raised to fit the
        overload limit when one is set.

        Every admitted or queued request holds a thread; without spare ones a full queue would leave
        none to answer the probes or to refuse the next request with 429 at once.
        """
        if self.max_concurrency <= 0:
            return self.threads
        return max(self.threads, self.max_concurrency + self.max_queue + SPARE_THREADS)

    @property
    def v2(self) -> bool:
        """Racetrack 2.x's answers (``FATMAN_CONTRACT=2``, set by job.yaml images): ``/`` is 307, a
        job's ``ValueError`` is 400, ``/health`` has ``status: pass/fail`` and is 500 unless ready."""
        return self.contract == RACETRACK2_CONTRACT

    @property
    def pub_prefix(self) -> str:
        """``/pub/fatman/<name>/<version>`` (or ``/pub/job/...``, see ``pub_family``): the prefix the
        job names itself with, in the webview's ``base_url``; "" if unnamed."""
        if self.name and self.version:
            return f"{self.pub_family}/{self.name}/{self.version}"
        return ""

    @property
    def pub_prefixes(self) -> tuple[str, ...]:
        """Every path prefix a Racetrack gateway may forward a request under, Racetrack 2.x's
        ``/pub/job/<name>/<version>`` and the fatman era's ``/pub/fatman/<name>/<version>``, each
        also with ``latest`` for the version (a chain call straight to this job, not through a
        gateway that resolves it); none if unnamed."""
        if not (self.name and self.version):
            return ()
        versions = (self.version,) if self.version == "latest" else (self.version, "latest")
        return tuple(f"{family}/{self.name}/{v}" for family in (JOB_PREFIX, FATMAN_PREFIX) for v in versions)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``FATMAN_*`` variables (and Racetrack 2.x's ``JOB_*``, ``LOG_*``...); raises
        ``JobLoadError`` for malformed values. The name and the version are ``JOB_NAME`` and
        ``JOB_VERSION`` when set, else ``FATMAN_NAME`` and ``FATMAN_VERSION`` (each on its own)."""
        env = os.environ if env is None else env
        concurrency = _int(env, "FATMAN_MAX_CONCURRENCY", 0, 0)
        # By default a burst as large again as the limit may wait for a slot.
        queue = _int(env, "FATMAN_MAX_QUEUE", concurrency, 0)
        asked = _int(env, "FATMAN_WORKERS", min(available_cpus(), MAX_DEFAULT_WORKERS), 1)
        workers = workers_sharing(asked, concurrency, queue)
        return cls(
            name=_first(env, "JOB_NAME", "FATMAN_NAME"),
            version=_first(env, "JOB_VERSION", "FATMAN_VERSION"),
            auth_token=env.get("FATMAN_AUTH_TOKEN", ""),
            public_endpoints=parse_public_endpoints(env.get("FATMAN_PUBLIC_ENDPOINTS", "")),
            host=env.get("FATMAN_HOST", "").strip() or DEFAULT_HOST,
            port=_int(env, "FATMAN_PORT", DEFAULT_PORT, 1),
            workers=workers,
            workers_asked=asked,
            threads=_int(env, "FATMAN_THREADS", DEFAULT_THREADS, 1),
            timeout=_int(env, "FATMAN_TIMEOUT", DEFAULT_TIMEOUT, 0),
            max_body_bytes=_int(env, "FATMAN_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1),
            max_concurrency=concurrency // workers,
            max_queue=queue // workers,
            queue_timeout=_float(env, "FATMAN_QUEUE_TIMEOUT", DEFAULT_QUEUE_TIMEOUT, 0),
            request_timeout=_float(env, "FATMAN_REQUEST_TIMEOUT", 0.0, 0),
            graceful_timeout=_int(env, "FATMAN_GRACEFUL_TIMEOUT", DEFAULT_GRACEFUL_TIMEOUT, 0),
            server=_server(env),
            home_page=_home_page(env),
            pub_family=_pub_family(env),
            contract=_contract(env),
            tracing_header=_header(env, "REQUEST_TRACING_HEADER", DEFAULT_TRACING_HEADER),
            caller_header=_header(env, "CALLER_NAME_HEADER", DEFAULT_CALLER_HEADER),
            log_structured=_flag(env, "LOG_STRUCTURED"),
            log_caller_name=_flag(env, "LOG_CALLER_NAME"),
            access_log=env.get("FATMAN_ACCESS_LOG", "").strip().lower() not in ("false", "f", "no", "n", "0"),
            job_type_version=env.get("JOB_TYPE_VERSION", "").strip(),
            git_version=env.get("GIT_VERSION", "").strip(),
            deployed_by_racetrack_version=env.get("DEPLOYED_BY_RACETRACK_VERSION", "").strip(),
            deployment_timestamp=env.get("JOB_DEPLOYMENT_TIMESTAMP", "").strip(),
        )
