"""Production settings: secure defaults; refuse to start with the development secret key or an unsafe egress.

Database: a psycopg pool per process (core/dbpool.py), sized by DB_POOL_MIN_SIZE, DB_POOL_MAX_SIZE and
DB_POOL_TIMEOUT; see README, "Database connections", for the sum against PostgreSQL's max_connections.

Egress: CONTRACTOR_EGRESS_ALLOW (default: empty, public addresses only) may open private networks for model
servers or webhook receivers; an entry that opens loopback, link-local (cloud metadata) or unspecified
addresses is refused unless CONTRACTOR_EGRESS_ALLOW_UNSAFE=1 says it is meant.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from core.dbpool import pooled
from core.egress import UNSAFE_ALLOW, unsafe_entries

from .base import *  # noqa: F403
from .base import CONTRACTOR, DATABASES, DEVELOPMENT_SECRET_KEY, SECRET_KEY, egress_allow, env_bool

if not os.environ.get("SECRET_KEY") or SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters in production"
    )

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# A connection pool per process (core/dbpool.py): DB_POOL_MAX_SIZE (default 4, the console's threads per
# worker), DB_POOL_MIN_SIZE (1), DB_POOL_TIMEOUT (10 s). The runtime pools too (settings/runtime.py).
DATABASES = {**DATABASES, "default": pooled(DATABASES["default"], "DB", max_size=4)}

CONTRACTOR = {**CONTRACTOR, "EGRESS_ALLOW": egress_allow("")}
_unsafe_egress = unsafe_entries(CONTRACTOR["EGRESS_ALLOW"])
if _unsafe_egress and not env_bool("CONTRACTOR_EGRESS_ALLOW_UNSAFE", False):
    raise ImproperlyConfigured(UNSAFE_ALLOW.format(entries=", ".join(_unsafe_egress)))
