"""System checks of the settings gate runs depend on (run by `manage.py check` and at Celery start-up)."""

from django.conf import settings
from django.core.checks import Error, register

from promotions.conf import promotion_setting

CELERY_CHECKS = "celery"
VISIBILITY_TOO_SHORT = (
    "CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'] ({visibility} s) must exceed the gate task's "
    "hard time limit GATE_RUN_TIME_LIMIT_SECONDS ({limit} s), or the broker hands a running gate to another "
    "worker."
)
SOFT_LIMIT_NOT_BELOW_HARD = (
    "GATE_RUN_SOFT_TIME_LIMIT_SECONDS ({soft} s) must be below GATE_RUN_TIME_LIMIT_SECONDS ({hard} s), so "
    "that a run too long ends in error instead of its worker being killed."
)
HEARTBEAT_NOT_BELOW_STALE = (
    "GATE_RUN_HEARTBEAT_SECONDS ({heartbeat} s) must be well below GATE_RUN_STALE_SECONDS ({stale} s, at "
    "least three heartbeats), or healthy runs are taken for lost."
)


def gate_settings_errors() -> list[Error]:
    """Return an error for each inconsistency between Celery's settings and the gate runs' limits."""
    errors = []
    visibility = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get(
        "visibility_timeout", 3600
    )
    soft = promotion_setting("GATE_RUN_SOFT_TIME_LIMIT_SECONDS")
    hard = promotion_setting("GATE_RUN_TIME_LIMIT_SECONDS")
    heartbeat = promotion_setting("GATE_RUN_HEARTBEAT_SECONDS")
    stale = promotion_setting("GATE_RUN_STALE_SECONDS")
    if visibility <= hard:
        errors.append(
            Error(VISIBILITY_TOO_SHORT.format(visibility=visibility, limit=hard), id="promotions.E001")
        )
    if soft >= hard:
        errors.append(Error(SOFT_LIMIT_NOT_BELOW_HARD.format(soft=soft, hard=hard), id="promotions.E002"))
    if heartbeat * 3 > stale:
        errors.append(
            Error(HEARTBEAT_NOT_BELOW_STALE.format(heartbeat=heartbeat, stale=stale), id="promotions.E003")
        )
    return errors


@register(CELERY_CHECKS)
def check_gate_settings(app_configs=None, **kwargs) -> list[Error]:
    """Django system check wrapping gate_settings_errors()."""
    return gate_settings_errors()
