"""Settings of the runtime process (`gunicorn runtime.wsgi`): execution API only, as the restricted DB role.

No admin, console, sessions, auth middleware or DRF: the runtime serves runtime.service_urls on every host and
authenticates runtime keys itself. It connects as `contractor_runtime` (DESIGN §7):

- RUNTIME_DATABASE_URL, when set, is used as is;
- otherwise DATABASE_URL with the user replaced by `contractor_runtime` and the password by
  RUNTIME_DB_PASSWORD (development default `contractor-runtime-dev`, the password the migration creates the
  role with).

Egress: the runtime runs in production with these settings too, so by default it reaches public addresses
only; CONTRACTOR_EGRESS_ALLOW opens more, and CONTRACTOR_DEV_MODEL_URL (`make run` sets it) opens the dev
model.

Environment: RUNTIME_DEBUG (default off), RUNTIME_MAX_BODY_BYTES (default 262144), RUNTIME_CACHE_SECONDS
(default 0.5, capped at 1), RUNTIME_TENANT_CONCURRENCY (6) and RUNTIME_ENDPOINT_CONCURRENCY (4) model calls in
flight per process, RUNTIME_BUSY_RETRY_AFTER (2 s), RUNTIME_KEY_FAILURE_LIMIT (20) invalid keys per source
within RUNTIME_KEY_FAILURE_WINDOW (60 s); the time budget (RUNTIME_WORKER_TIMEOUT, MODEL_TIMEOUT_CAP,
RUNTIME_RECORD_MARGIN) is read by base.py, since the control plane validates endpoints against it;
RUNTIME_DB_POOL_MAX_SIZE (RUNTIME_THREADS), RUNTIME_DB_POOL_MIN_SIZE (1), RUNTIME_DB_POOL_TIMEOUT (2 s).
The benchmark starts this process with bench/runtime_settings.py instead.
"""

import os
from urllib.parse import quote, urlsplit, urlunsplit

import dj_database_url

from core.dbpool import pooled

from .base import *  # noqa: F403
from .base import CONTRACTOR, DATABASE_URL, egress_allow, env_bool

DEVELOPMENT_RUNTIME_DB_PASSWORD = "contractor-runtime-dev"
RUNTIME_DB_ROLE = CONTRACTOR["RUNTIME_DB_ROLE"]


def runtime_database_url(owner_url: str, role: str, password: str) -> str:
    """Return `owner_url` with its credentials replaced by the runtime role's."""
    parts = urlsplit(owner_url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


DEBUG = env_bool("RUNTIME_DEBUG", False)

ROOT_URLCONF = "runtime.service_urls"
PUBLIC_SCHEMA_URLCONF = "runtime.service_urls"
WSGI_APPLICATION = "runtime.wsgi.application"

# What the runtime's models need (keys and endpoints reference environments, users, versions), nothing more.
SHARED_APPS = [
    "django_tenants",
    "tenancy",
    "django.contrib.contenttypes",
    "django.contrib.auth",
]
TENANT_APPS = ["simple_history", "audit", "bundles", "promotions", "governance", "runtime"]
INSTALLED_APPS = SHARED_APPS + TENANT_APPS

MIDDLEWARE = ["runtime.middleware.RuntimeTenantMiddleware"]
TEMPLATES = []
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]

RUNTIME_DATABASE_URL = os.environ.get("RUNTIME_DATABASE_URL") or runtime_database_url(
    DATABASE_URL, RUNTIME_DB_ROLE, os.environ.get("RUNTIME_DB_PASSWORD", DEVELOPMENT_RUNTIME_DB_PASSWORD)
)
# A connection pool per worker process (core/dbpool.py), in development and production alike: each request
# checks out a connection the pool has checked (after a database restart or failover a worker reconnects
# instead of failing its next request) and gives it back when it ends. RUNTIME_DB_POOL_MAX_SIZE defaults to
# the worker's threads (RUNTIME_THREADS), since an execution keeps its connection while the model answers (its
# idempotency lock lives in the session). A connection that dies during an execution still fails that
# execution closed (503, no output).
DATABASES = {
    "default": pooled(
        {**dj_database_url.parse(RUNTIME_DATABASE_URL), "ENGINE": "django_tenants.postgresql_backend"},
        "RUNTIME_DB",
        max_size=int(os.environ.get("RUNTIME_THREADS", "8")),
        timeout=2.0,  # waiting only happens when the database is unreachable: answer 503 soon
    )
}
# No statement and no idle transaction of the runtime lasts longer than this: decision rollups rely on it to
# know when every decision with a lower id has committed or never will (runtime/rollups.py).
RUNTIME_DB_TIMEOUT_MS = int(os.environ.get("RUNTIME_DB_TIMEOUT_MS", "5000"))
DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
    f"-c statement_timeout={RUNTIME_DB_TIMEOUT_MS} "
    f"-c idle_in_transaction_session_timeout={RUNTIME_DB_TIMEOUT_MS}"
)
# One `SET search_path` per request instead of one per query.
TENANT_LIMIT_SET_CALLS = True

CONTRACTOR = {
    **CONTRACTOR,
    "RUNTIME_MAX_BODY_BYTES": int(os.environ.get("RUNTIME_MAX_BODY_BYTES", str(256 * 1024))),
    "RUNTIME_CACHE_SECONDS": float(os.environ.get("RUNTIME_CACHE_SECONDS", "0.5")),
    "EGRESS_ALLOW": egress_allow(os.environ.get("CONTRACTOR_DEV_MODEL_URL", "")),
    # Bounds of one process (runtime/limits.py).
    "RUNTIME_TENANT_CONCURRENCY": int(os.environ.get("RUNTIME_TENANT_CONCURRENCY", "6")),
    "RUNTIME_ENDPOINT_CONCURRENCY": int(os.environ.get("RUNTIME_ENDPOINT_CONCURRENCY", "4")),
    "RUNTIME_BUSY_RETRY_AFTER": int(os.environ.get("RUNTIME_BUSY_RETRY_AFTER", "2")),
    "RUNTIME_KEY_FAILURE_LIMIT": int(os.environ.get("RUNTIME_KEY_FAILURE_LIMIT", "20")),
    "RUNTIME_KEY_FAILURE_WINDOW": int(os.environ.get("RUNTIME_KEY_FAILURE_WINDOW", "60")),
}
DATA_UPLOAD_MAX_MEMORY_SIZE = CONTRACTOR["RUNTIME_MAX_BODY_BYTES"]

CELERY_BEAT_SCHEDULE = {}

# One log line per model call would cost more than the call: keep the HTTP client quiet.
LOGGING = {
    **LOGGING,  # noqa: F405
    "loggers": {
        **LOGGING["loggers"],  # noqa: F405
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
