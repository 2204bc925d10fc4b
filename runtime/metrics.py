"""Prometheus metrics of the runtime process, exposed at GET /metrics.

Each process has its own registry. Under gunicorn with several workers a scrape reaches one worker and shows
that worker's counts, unless PROMETHEUS_MULTIPROC_DIR names an empty directory writable by every worker
before they start: prometheus_client then keeps the values in files there and /metrics aggregates all
workers (add `child_exit = runtime.gunicorn_hooks.child_exit` to the gunicorn config so dead workers'
gauges are dropped; counters and histograms keep their totals).
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REGISTRY = CollectorRegistry(auto_describe=True)

EXECUTIONS = Counter(
    "contractor_runtime_executions",
    "Executions recorded, by tenant, bundle and decision status.",
    ["tenant", "bundle", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "contractor_runtime_execution_seconds",
    "Time from receiving an execution request to its recorded decision.",
    ["tenant", "bundle"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
DENIALS = Counter(
    "contractor_runtime_denials",
    "Denied executions, by the policy that denied them.",
    ["tenant", "bundle", "policy"],
    registry=REGISTRY,
)
UNRECORDED = Counter(
    "contractor_runtime_unrecorded",
    "Executions refused because their decision could not be recorded (fail closed).",
    ["tenant"],
    registry=REGISTRY,
)

BUSY = Counter(
    "contractor_runtime_busy",
    "Model calls refused (429 tenant_busy, recorded) because the tenant or endpoint had no free slot.",
    ["tenant"],
    registry=REGISTRY,
)
KEY_FAILURES = Counter(
    "contractor_runtime_key_failures",
    "Requests with an invalid runtime key (invalid), and refused by the per-source throttle (throttled).",
    ["outcome"],
    registry=REGISTRY,
)


def observe_busy(*, tenant: str) -> None:
    """Count one model call refused as busy."""
    BUSY.labels(tenant).inc()


def observe_key_failure(*, throttled: bool) -> None:
    """Count one invalid runtime key, or one request refused by the key-failure throttle."""
    KEY_FAILURES.labels("throttled" if throttled else "invalid").inc()


def observe_decision(*, tenant: str, bundle: str, status: str, denied_by: str | None, seconds: float) -> None:
    """Count one recorded decision."""
    EXECUTIONS.labels(tenant, bundle, status).inc()
    LATENCY.labels(tenant, bundle).observe(seconds)
    if denied_by:
        DENIALS.labels(tenant, bundle, denied_by).inc()


def observe_unrecorded(*, tenant: str) -> None:
    """Count one execution whose decision could not be recorded."""
    UNRECORDED.labels(tenant).inc()


def exposition() -> tuple[bytes, str]:
    """Return the metrics in the Prometheus text format and its content type."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
