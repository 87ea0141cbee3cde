"""Prometheus metrics: requests, errors and durations per endpoint, plus the job's own ``metrics()``.

Under gunicorn every worker is a separate process, so the counters use prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set up by ``server.py`` before prometheus_client is
imported): each worker writes its values to files in that directory and ``/metrics`` sums the files
of all workers, so any worker's answer counts every worker's calls. Without that variable (the
Flask test client, a single process) the values live in memory in a registry private to the app.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Iterable
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
UP_METRIC = "fatman_custom_metrics_up"
# The sample names each metric type writes besides its family name (text format 0.0.4).
_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
}


def exposed_names(collectors: Iterable[Any]) -> frozenset[str]:
    """Every family and sample name the given prometheus_client collectors can write."""
    names: set[str] = set()
    for collector in collectors:
        for family in collector.describe():
            names.add(family.name)
            names.update(family.name + suffix for suffix in _SAMPLE_SUFFIXES.get(family.type, ()))
    return frozenset(names)


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode, if this process runs in it."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


class _JobMetricsCollector:
    """Turns the job's ``metrics()`` list into gauges at scrape time; never raises."""

    def __init__(
        self, provider: Callable[[], Callable[[], Any] | None], reserved: frozenset[str] = frozenset()
    ) -> None:
        self._provider = provider
        # Names the wrapper's own families write: a job gauge with one of them would give one name
        # two "# TYPE" lines (or a sample inside another family), which strict parsers refuse.
        self._reserved = reserved | {UP_METRIC}

    def describe(self) -> list[Any]:
        return []  # values come from user code at scrape time; do not call it on registration

    def collect(self) -> Iterable[Any]:
        metrics_fn = self._provider()
        if metrics_fn is None:
            return []
        ok = GaugeMetricFamily(
            UP_METRIC, "1 if the job's metrics() answered at the last scrape, 0 if it raised"
        )
        try:
            families = self._families(metrics_fn())
            ok.add_metric([], 1.0)
        except Exception:  # noqa: BLE001 - a broken metrics() must not break /metrics
            log.exception("the job's metrics() failed; /metrics is served without its values")
            families = []
            ok.add_metric([], 0.0)
        return families + [ok]

    def _families(self, items: Any) -> list[GaugeMetricFamily]:
        families: dict[str, tuple[GaugeMetricFamily, tuple[str, ...]]] = {}
        for item in items or []:
            if not isinstance(item, dict):
                log.warning("skipping metric %r: expected a dict with name and value", item)
                continue
            name = item.get("name")
            value: Any = item.get("value")  # anything float() takes; the rest is skipped below
            labels = item.get("labels") or {}
            if not isinstance(name, str) or not _METRIC_NAME.match(name):
                log.warning("skipping metric %r: the name must match %s", name, _METRIC_NAME.pattern)
                continue
            if name in self._reserved:
                log.warning(
                    "skipping metric %s: the wrapper exposes a metric of that name itself; "
                    "rename it in metrics(), e.g. with your job's own prefix",
                    name,
                )
                continue
            if not isinstance(labels, dict) or not all(
                isinstance(k, str) and _LABEL_NAME.match(k) for k in labels
            ):
                log.warning("skipping metric %s: labels must be a dict of valid label names", name)
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                log.warning("skipping metric %s: value %r is not a number", name, value)
                continue
            keys = tuple(sorted(labels))
            if name not in families:
                families[name] = (
                    GaugeMetricFamily(name, str(item.get("description") or name), labels=keys),
                    keys,
                )
            family, family_keys = families[name]
            if keys != family_keys:
                log.warning("skipping a sample of metric %s: its labels differ from the first sample's", name)
                continue
            family.add_metric([str(labels[k]) for k in keys], number)
        return [f for f, _ in families.values()]


class RequestMetrics:
    """Per-endpoint request counters and durations, shared across worker processes."""

    def __init__(self, job_metrics: Callable[[], Callable[[], Any] | None]) -> None:
        self._registry = CollectorRegistry()
        self.requests = Counter(
            "fatman_requests",
            "Requests answered, by endpoint and status code",
            ["endpoint", "status"],
            registry=self._registry,
        )
        self.errors = Counter(
            "fatman_request_errors",
            "Requests answered with a 5xx status (the job raised or is not ready)",
            ["endpoint"],
            registry=self._registry,
        )
        self.duration = Histogram(
            "fatman_request_duration_seconds",
            "Time to answer a request",
            ["endpoint"],
            registry=self._registry,
        )
        # Racetrack 2.x's: when the job last served a call (idle-job dashboards and alerts). "max":
        # the newest of all workers' values.
        self.last_call = Gauge(
            "last_call_timestamp",
            "Unix time of the last call of the job's perform or auxiliary endpoints",
            registry=self._registry,
            multiprocess_mode="max",
        )
        self._job_collector = _JobMetricsCollector(
            job_metrics, exposed_names([self.requests, self.errors, self.duration, self.last_call])
        )
        self._registry.register(self._job_collector)  # type: ignore[arg-type]
        # Label children looked up once per (endpoint, status), not on every request.
        self._children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (endpoint, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(endpoint, str(status)),
                self.errors.labels(endpoint) if status >= 500 else None,
                self.duration.labels(endpoint),
            )
            self._children[key] = children
        requests, errors, duration = children
        requests.inc()
        if errors is not None:
            errors.inc()
        duration.observe(seconds)

    def called(self) -> None:
        """Note a call of one of the job's endpoints (``last_call_timestamp``)."""
        self.last_call.set_to_current_time()

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker's counters and the job's metrics."""
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        registry.register(WorkerFiles(directory))  # type: ignore[arg-type]
        registry.register(self._job_collector)  # type: ignore[arg-type]
        return generate_latest(registry)


class WorkerFiles:
    """Every worker's values in multiprocess mode, as prometheus_client's ``MultiProcessCollector``
    merges them, less the files a worker is creating at this instant: prometheus_client opens a new
    one empty and only then sizes it, and reading it in between raises ``struct.error``, which made
    ``/metrics`` answer 500 (seen right after a worker's first request in another worker)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterable[Any]:
        from prometheus_client.multiprocess import MultiProcessCollector

        files = []
        for path in glob.glob(os.path.join(self.directory, "*.db")):
            try:
                if os.path.getsize(path) >= _DB_HEADER_BYTES:
                    files.append(path)
            except OSError:
                continue  # a dead worker's live gauge, removed since the glob
        return MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-any-return]


_DB_HEADER_BYTES = 8  # the used-bytes field a db file starts with, once sized


def mark_worker_dead(pid: int) -> None:
    """Gunicorn's child_exit hook: drop the live-gauge files of a worker that exited."""
    if multiprocess_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
