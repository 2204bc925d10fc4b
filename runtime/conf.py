"""Settings of runtime, read from settings.CONTRACTOR with defaults."""

from django.conf import settings

DEFAULTS = {
    # The restricted PostgreSQL role of the runtime process and the password it is created with.
    "RUNTIME_DB_ROLE": "contractor_runtime",
    "RUNTIME_DB_PASSWORD": "contractor-runtime-dev",
    # Request bodies larger than this are refused (413) before they are parsed.
    "RUNTIME_MAX_BODY_BYTES": 256 * 1024,
    # How long a worker may reuse a key, a release pointer, a model endpoint or a tenant it read; revocations,
    # promotions and rollbacks take effect within this time (at most 1 s, DESIGN §7).
    "RUNTIME_CACHE_SECONDS": 0.5,
    # The environment a new runtime key is scoped to when none is given.
    "RUNTIME_DEFAULT_ENVIRONMENT": "current",
    # Benchmark only: expose POST /v1/bench/bare/<bundle>/<pipeline> (no governance, one audit INSERT).
    "RUNTIME_BENCH_BARE_ENDPOINT": False,
}

MAX_CACHE_SECONDS = 1.0


def runtime_setting(name: str):
    """Return setting `name` from settings.CONTRACTOR, or its default."""
    return getattr(settings, "CONTRACTOR", {}).get(name, DEFAULTS[name])


def cache_seconds() -> float:
    """Return the cache lifetime, capped so that revocations and rollbacks apply within one second."""
    return min(float(runtime_setting("RUNTIME_CACHE_SECONDS")), MAX_CACHE_SECONDS)
