"""Production settings: secure defaults; refuse to start with the development secret key or an unsafe egress.

Egress: CONTRACTOR_EGRESS_ALLOW (default: empty, public addresses only) may open private networks for model
servers or webhook receivers; an entry that opens loopback, link-local (cloud metadata) or unspecified
addresses is refused unless CONTRACTOR_EGRESS_ALLOW_UNSAFE=1 says it is meant.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from core.egress import UNSAFE_ALLOW, unsafe_entries

from .base import *  # noqa: F403
from .base import CONTRACTOR, DEVELOPMENT_SECRET_KEY, SECRET_KEY, egress_allow, env_bool

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

CONTRACTOR = {**CONTRACTOR, "EGRESS_ALLOW": egress_allow("")}
_unsafe_egress = unsafe_entries(CONTRACTOR["EGRESS_ALLOW"])
if _unsafe_egress and not env_bool("CONTRACTOR_EGRESS_ALLOW_UNSAFE", False):
    raise ImproperlyConfigured(UNSAFE_ALLOW.format(entries=", ".join(_unsafe_egress)))
