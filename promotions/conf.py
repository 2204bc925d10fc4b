"""Settings of promotions, read from settings.CONTRACTOR with defaults."""

from django.conf import settings

DEFAULTS = {
    "GATE_RUN_TIMEOUT_SECONDS": 900,
    "GATE_RUN_MAX_ATTEMPTS": 3,
    "WEBHOOK_MAX_ATTEMPTS": 6,
    "WEBHOOK_RETRY_BASE_SECONDS": 2.0,
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    "OUTBOX_REDISPATCH_SECONDS": 60,
}


def promotion_setting(name: str):
    """Return setting `name` from settings.CONTRACTOR, or its default."""
    return getattr(settings, "CONTRACTOR", {}).get(name, DEFAULTS[name])
