"""Settings of promotions, read from settings.CONTRACTOR with defaults."""

from django.conf import settings

DEFAULTS = {
    "GATE_RUN_TIMEOUT_SECONDS": 900,
    "GATE_RUN_MAX_ATTEMPTS": 3,
    "GATE_RUN_HEARTBEAT_SECONDS": 5.0,
    "GATE_RUN_STALE_SECONDS": 45.0,
    "GATE_RUN_WATCH_SECONDS": 10.0,
    "GATE_RUN_SOFT_TIME_LIMIT_SECONDS": 240,
    "GATE_RUN_TIME_LIMIT_SECONDS": 300,
    "GATE_RUN_DB_RETRIES": 6,
    "GATE_RUN_DB_RETRY_BASE_SECONDS": 1.0,
    "GATE_RUN_DB_RETRY_MAX_SECONDS": 30.0,
    "GATE_RUN_AUTO_RERUNS": 2,
    "GATE_RUN_CASE_DELAY_SECONDS": 0.0,
    "WEBHOOK_MAX_ATTEMPTS": 6,
    "WEBHOOK_RETRY_BASE_SECONDS": 2.0,
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    "OUTBOX_REDISPATCH_SECONDS": 60,
}


def promotion_setting(name: str):
    """Return setting `name` from settings.CONTRACTOR, or its default."""
    return getattr(settings, "CONTRACTOR", {}).get(name, DEFAULTS[name])
