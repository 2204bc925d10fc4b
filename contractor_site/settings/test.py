"""Test settings: the development settings with fast hashing and an isolated Celery queue."""

import os

from .base import *  # noqa: F403
from .base import CONTRACTOR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", f"contractor-test-{os.getpid()}")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = None  # whitenoise serves from the finders in tests; no collectstatic needed
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Test servers (the dev model, webhook receivers) listen on loopback; tests/core/test_egress_*.py run with
# the production default instead.
CONTRACTOR = {**CONTRACTOR, "EGRESS_ALLOW": ["127.0.0.0/8", "::1"]}
# The test OpenID provider (devtools/oidc/) serves plain http on loopback.
CONTRACTOR["SSO_REQUIRE_HTTPS"] = False
# Fault tests slow each suite case down in the worker they start (never in base or production settings).
CONTRACTOR["GATE_RUN_CASE_DELAY_SECONDS"] = float(
    os.environ.get("CONTRACTOR_GATE_RUN_CASE_DELAY_SECONDS", "0")
)
