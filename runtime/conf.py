"""Settings of runtime, read from settings.CONTRACTOR with defaults."""

import os
import re

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
    # The environment variables a model endpoint may name as holding its API key (a regular expression).
    # The runtime sends that variable's value to the endpoint's base_url, which tenant operators choose: any
    # other variable of the process (SECRET_KEY, DATABASE_URL, RUNTIME_DB_PASSWORD, ...) must never be
    # nameable. `{tenant}` stands for the tenant's schema name in upper case, so a platform that gives each
    # tenant its own keys can say e.g. r"\ACONTRACTOR_{tenant}_[A-Z0-9_]*API_KEY\Z".
    "MODEL_API_KEY_ENV_PATTERN": r"\A[A-Z][A-Z0-9_]{0,91}_API_KEY\Z",
    # The shared secret a Prometheus scraper sends (Authorization: Bearer ...) to read GET /metrics, which
    # shows every tenant's counters. Empty: only loopback clients that came through no proxy may read it.
    "RUNTIME_METRICS_TOKEN": os.environ.get("RUNTIME_METRICS_TOKEN", ""),
    # Time budget of one execution (seconds): a model call may last at most MODEL_TIMEOUT_CAP, and
    # RUNTIME_RECORD_MARGIN is kept for everything else (key, release, decision record), so that a request
    # always ends, with its recorded decision, before gunicorn's RUNTIME_WORKER_TIMEOUT. Checked at start-up
    # (runtime/checks.py): cap + margin < worker timeout.
    "RUNTIME_WORKER_TIMEOUT": 30.0,
    "MODEL_TIMEOUT_CAP": 20.0,
    "RUNTIME_RECORD_MARGIN": 5.0,
    # Model calls in flight at once in one runtime process, per tenant and per (tenant, endpoint); one more
    # is refused with 429 `tenant_busy` (a recorded decision) and Retry-After RUNTIME_BUSY_RETRY_AFTER.
    "RUNTIME_TENANT_CONCURRENCY": 6,
    "RUNTIME_ENDPOINT_CONCURRENCY": 4,
    "RUNTIME_BUSY_RETRY_AFTER": 2,
    # Invalid runtime keys from one source address (IPv6: its /64) within the window, counted in Redis;
    # past the limit, every request from that source gets 429 `too_many_key_failures` until the window ends.
    "RUNTIME_KEY_FAILURE_LIMIT": 20,
    "RUNTIME_KEY_FAILURE_WINDOW": 60,
}

MAX_CACHE_SECONDS = 1.0
DEFAULT_MODEL_TIMEOUT_SECONDS = 10.0


def runtime_setting(name: str):
    """Return setting `name` from settings.CONTRACTOR, or its default."""
    return getattr(settings, "CONTRACTOR", {}).get(name, DEFAULTS[name])


def api_key_variable_allowed(variable: str, tenant: str) -> bool:
    """Return whether a model endpoint of `tenant` (a schema name) may read its API key from `variable`."""
    pattern = str(runtime_setting("MODEL_API_KEY_ENV_PATTERN")).replace("{tenant}", re.escape(tenant.upper()))
    return re.match(pattern, variable or "") is not None


def model_timeout_cap() -> float:
    """Return the longest a model call may last (seconds): stored endpoint timeouts are clamped to it."""
    return float(runtime_setting("MODEL_TIMEOUT_CAP"))


def default_model_timeout() -> float:
    """Return the timeout of a model endpoint created without one: 10 s, or the cap when it is lower."""
    return min(DEFAULT_MODEL_TIMEOUT_SECONDS, model_timeout_cap())


def cache_seconds() -> float:
    """Return the cache lifetime, capped so that revocations and rollbacks apply within one second."""
    return min(float(runtime_setting("RUNTIME_CACHE_SECONDS")), MAX_CACHE_SECONDS)
