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
(default 0.5, capped at 1). The benchmark starts this process with bench/runtime_settings.py instead.
"""

import os
from urllib.parse import quote, urlsplit, urlunsplit

import dj_database_url

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
# Persistent connections, checked once per request before first use (one `SELECT 1` round trip): after a
# database restart or failover a worker reconnects instead of failing its next request. A connection that
# dies during an execution still fails that execution closed (503, no output).
DATABASES = {
    "default": dj_database_url.parse(RUNTIME_DATABASE_URL, conn_max_age=600, conn_health_checks=True)
}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
# One `SET search_path` per request instead of one per query.
TENANT_LIMIT_SET_CALLS = True

CONTRACTOR = {
    **CONTRACTOR,
    "RUNTIME_MAX_BODY_BYTES": int(os.environ.get("RUNTIME_MAX_BODY_BYTES", str(256 * 1024))),
    "RUNTIME_CACHE_SECONDS": float(os.environ.get("RUNTIME_CACHE_SECONDS", "0.5")),
    "EGRESS_ALLOW": egress_allow(os.environ.get("CONTRACTOR_DEV_MODEL_URL", "")),
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
