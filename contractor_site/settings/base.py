"""Control-plane settings: read from the environment, with development defaults."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.egress import EgressPolicy, url_entries
from core.timebudget import timeout_budget_problem

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEVELOPMENT_SECRET_KEY = "contractor-development-secret-key-not-for-production"


def env_bool(name: str, default: bool) -> bool:
    """Return the boolean value of environment variable `name`."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Return the comma-separated environment variable `name` as a list."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,.localhost,127.0.0.1,testserver,.testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://localhost:8000,http://*.localhost:8000")


def egress_allow(default_url: str) -> list[str]:
    """Return CONTRACTOR_EGRESS_ALLOW's entries, or when it is unset those opening `default_url`'s address."""
    if "CONTRACTOR_EGRESS_ALLOW" in os.environ:
        entries = env_list("CONTRACTOR_EGRESS_ALLOW", "")
    else:
        entries = url_entries(default_url)
    try:
        EgressPolicy.from_entries(entries)
    except ValueError as error:
        raise ImproperlyConfigured(str(error)) from None
    return entries


DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/contractor")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

SHARED_APPS = [
    "django_tenants",
    "core",
    "tenancy",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
]
TENANT_APPS = [
    "guardian",
    "simple_history",
    "audit",
    "bundles",
    "promotions",
    "governance",
    "runtime",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenancy.Tenant"
TENANT_DOMAIN_MODEL = "tenancy.Domain"
PUBLIC_SCHEMA_NAME = "public"
PUBLIC_SCHEMA_URLCONF = "contractor_site.urls_public"
ROOT_URLCONF = "contractor_site.urls_tenant"
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False

MIDDLEWARE = [
    # First, so that API errors raised by any middleware below (an unknown tenant host, a database outage in
    # tenant routing) are answered as JSON too.
    "core.api.ApiErrorMiddleware",
    "tenancy.middleware.TenantHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenancy.middleware.TenantMembershipMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row (it would live in a tenant schema)
GUARDIAN_MONKEY_PATCH_USER = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenancy.context_processors.membership",
                "governance.context_processors.governance",
            ],
        },
    },
]

WSGI_APPLICATION = "contractor_site.wsgi.application"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG  # development serves static files without collectstatic
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.IsTenantMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.api.ApiSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CONTRACTOR API",
    "DESCRIPTION": "Control plane for governed AI systems: bundles, gates, promotions, audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["tenancy.permissions.IsTenantMember"],
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery (tenant-schemas-celery carries the schema in a message header).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "contractor")
# A task's message is acknowledged only when it finished, and put back when its worker process dies; the
# gate task claims its run atomically, so a redelivery never runs a gate twice (README, "Gate runs").
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis gives an unacknowledged message to another worker after the visibility timeout: it must exceed the
# longest task (the gate task's hard time limit, checked at start-up by contractor_site/celery.py), or a
# running task would be delivered twice. A worker lost mid-run is found sooner by the heartbeat watch.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "900"))
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Product settings, one namespace (read through each app's conf.py).
CONTRACTOR = {
    "DEMO_TENANT": "acme",
    "BASE_DOMAIN": os.environ.get("CONTRACTOR_BASE_DOMAIN", "localhost"),
}

# --- egress (core/egress.py) ---
# Model endpoints and webhooks reach public addresses only, plus CONTRACTOR_EGRESS_ALLOW: comma-separated IP
# addresses or networks, each with an optional port. Development allows the dev model's address
# (CONTRACTOR_DEV_MODEL_URL, which `make run` sets); production allows nothing more unless told.
DEV_MODEL_URL = os.environ.get("CONTRACTOR_DEV_MODEL_URL", "http://127.0.0.1:8002/v1")
CONTRACTOR["EGRESS_ALLOW"] = egress_allow(DEV_MODEL_URL)

# --- tenancy: personal API tokens, sign-in lockout, fresh authentication (defaults in tenancy/conf.py) ---
CONTRACTOR.update(
    {
        "TOKEN_DEFAULT_DAYS": int(os.environ.get("CONTRACTOR_TOKEN_DEFAULT_DAYS", "90")),
        "TOKEN_MAX_DAYS": int(os.environ.get("CONTRACTOR_TOKEN_MAX_DAYS", "365")),
        "LOCKOUT_USERNAME_FAILURES": int(os.environ.get("CONTRACTOR_LOCKOUT_USERNAME_FAILURES", "5")),
        "LOCKOUT_ADDRESS_FAILURES": int(os.environ.get("CONTRACTOR_LOCKOUT_ADDRESS_FAILURES", "20")),
        "LOCKOUT_WINDOW_SECONDS": int(os.environ.get("CONTRACTOR_LOCKOUT_WINDOW_SECONDS", "900")),
        "LOCKOUT_SECONDS": int(os.environ.get("CONTRACTOR_LOCKOUT_SECONDS", "900")),
        "FRESH_AUTHENTICATION_MINUTES": int(os.environ.get("CONTRACTOR_FRESH_AUTHENTICATION_MINUTES", "15")),
    }
)

# --- single sign-on (tenancy/sso/; defaults in tenancy/conf.py) ---
# Issuers, and every provider endpoint, are reached through the egress policy above. Client secrets are read
# from the environment variables that the configurations name (matching SSO_CLIENT_SECRET_ENV_PATTERN).
CONTRACTOR.update(
    {
        "SSO_CLIENT_SECRET_ENV_PATTERN": os.environ.get(
            "CONTRACTOR_SSO_CLIENT_SECRET_ENV_PATTERN", r"\A[A-Z][A-Z0-9_]{0,80}_CLIENT_SECRET\Z"
        ),
        "SSO_DISCOVERY_CACHE_SECONDS": int(os.environ.get("CONTRACTOR_SSO_DISCOVERY_CACHE_SECONDS", "300")),
        "SSO_CLOCK_SKEW_SECONDS": int(os.environ.get("CONTRACTOR_SSO_CLOCK_SKEW_SECONDS", "60")),
        "SSO_REQUIRE_HTTPS": env_bool("CONTRACTOR_SSO_REQUIRE_HTTPS", True),
    }
)

# --- promotions ---
CONTRACTOR.update(
    {
        # Gate runs (README, "Gate runs"). A worker running a gate writes a heartbeat every HEARTBEAT seconds;
        # the watch (beat, every WATCH seconds) finds a running run without one for STALE seconds, marks it
        # `stale` and sends it to the workers again; after MAX_ATTEMPTS claims it ends in `error`. A run no
        # worker picks up (queued or stale) for TIMEOUT seconds ends in `error`.
        "GATE_RUN_HEARTBEAT_SECONDS": float(os.environ.get("CONTRACTOR_GATE_RUN_HEARTBEAT_SECONDS", "5")),
        "GATE_RUN_STALE_SECONDS": float(os.environ.get("CONTRACTOR_GATE_RUN_STALE_SECONDS", "45")),
        "GATE_RUN_WATCH_SECONDS": float(os.environ.get("CONTRACTOR_GATE_RUN_WATCH_SECONDS", "10")),
        "GATE_RUN_MAX_ATTEMPTS": int(os.environ.get("CONTRACTOR_GATE_RUN_MAX_ATTEMPTS", "3")),
        "GATE_RUN_TIMEOUT_SECONDS": int(os.environ.get("CONTRACTOR_GATE_RUN_TIMEOUT_SECONDS", "900")),
        # The gate task's time limits: at the soft one the run ends in `error`, at the hard one the worker
        # process is killed (and the watch re-dispatches the run).
        "GATE_RUN_SOFT_TIME_LIMIT_SECONDS": int(
            os.environ.get("CONTRACTOR_GATE_RUN_SOFT_TIME_LIMIT_SECONDS", "240")
        ),
        "GATE_RUN_TIME_LIMIT_SECONDS": int(os.environ.get("CONTRACTOR_GATE_RUN_TIME_LIMIT_SECONDS", "300")),
        # A database error at any step of a gate run retries the task: delay BASE * 2**n, at most MAX seconds.
        "GATE_RUN_DB_RETRIES": int(os.environ.get("CONTRACTOR_GATE_RUN_DB_RETRIES", "6")),
        "GATE_RUN_DB_RETRY_BASE_SECONDS": float(
            os.environ.get("CONTRACTOR_GATE_RUN_DB_RETRY_BASE_SECONDS", "1")
        ),
        "GATE_RUN_DB_RETRY_MAX_SECONDS": float(
            os.environ.get("CONTRACTOR_GATE_RUN_DB_RETRY_MAX_SECONDS", "30")
        ),
        # A pending request whose gate run ended in `error` re-runs the gates this many times, then fails.
        "GATE_RUN_AUTO_RERUNS": int(os.environ.get("CONTRACTOR_GATE_RUN_AUTO_RERUNS", "2")),
        # Webhook deliveries: attempts per event and webhook, exponential backoff base, HTTP timeout.
        "WEBHOOK_MAX_ATTEMPTS": int(os.environ.get("CONTRACTOR_WEBHOOK_MAX_ATTEMPTS", "6")),
        "WEBHOOK_RETRY_BASE_SECONDS": float(os.environ.get("CONTRACTOR_WEBHOOK_RETRY_BASE_SECONDS", "2")),
        "WEBHOOK_TIMEOUT_SECONDS": float(os.environ.get("CONTRACTOR_WEBHOOK_TIMEOUT_SECONDS", "10")),
        # Outbox events not dispatched after this long are dispatched again by the sweep (broker hiccups).
        "OUTBOX_REDISPATCH_SECONDS": int(os.environ.get("CONTRACTOR_OUTBOX_REDISPATCH_SECONDS", "60")),
    }
)
CELERY_BEAT_SCHEDULE["promotions.sweep_tenants"] = {"task": "promotions.sweep_tenants", "schedule": 60.0}
# Verification runs whose worker stopped go on (audit/verification.py).
CELERY_BEAT_SCHEDULE["audit.sweep_verification_runs"] = {
    "task": "audit.sweep_verification_runs",
    "schedule": 30.0,
    "options": {"expires": 30.0},
}
# Decision rollups (runtime/rollups.py): coverage and the dashboard lag the log by at most ~20 s.
CELERY_BEAT_SCHEDULE["runtime.roll_up_decisions"] = {
    "task": "runtime.roll_up_decisions",
    "schedule": 5.0,
    "options": {"expires": 5.0},
}
CELERY_BEAT_SCHEDULE["promotions.watch_gate_runs"] = {
    "task": "promotions.watch_gate_runs",
    "schedule": CONTRACTOR["GATE_RUN_WATCH_SECONDS"],
}
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "GateStatusEnum": "promotions.models.GateStatus",
        "PromotionStatusEnum": "promotions.models.PromotionStatus",
    }
)

# --- runtime ---
CONTRACTOR.update(
    {
        # The restricted database role of the runtime process (DESIGN §7), created by runtime's migrations
        # when the migrating role may create roles. The password default is for development only.
        "RUNTIME_DB_ROLE": "contractor_runtime",
        "RUNTIME_DB_PASSWORD": os.environ.get("RUNTIME_DB_PASSWORD", "contractor-runtime-dev"),
        # The time budget of one execution (runtime/conf.py): the control plane refuses model endpoint
        # timeouts above the cap, the runtime clamps older ones, and gunicorn (runtime/gunicorn_runtime.py)
        # reads the same RUNTIME_WORKER_TIMEOUT.
        "RUNTIME_WORKER_TIMEOUT": float(os.environ.get("RUNTIME_WORKER_TIMEOUT", "30")),
        "MODEL_TIMEOUT_CAP": float(os.environ.get("MODEL_TIMEOUT_CAP", "20")),
        "RUNTIME_RECORD_MARGIN": float(os.environ.get("RUNTIME_RECORD_MARGIN", "5")),
    }
)
_timeout_problem = timeout_budget_problem(
    worker=CONTRACTOR["RUNTIME_WORKER_TIMEOUT"],
    cap=CONTRACTOR["MODEL_TIMEOUT_CAP"],
    margin=CONTRACTOR["RUNTIME_RECORD_MARGIN"],
)
if _timeout_problem:
    raise ImproperlyConfigured(_timeout_problem)
