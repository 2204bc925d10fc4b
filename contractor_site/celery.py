"""The tenant-aware Celery app: a task runs in the schema it was sent from.

Every process that loads this app (worker, beat, web, commands) refuses to start when the broker's
visibility timeout, the gate task's time limits and the heartbeat settings do not fit together
(promotions/checks.py): a wrong pair would make the broker deliver a running gate twice.
"""

import os

from django.core.exceptions import ImproperlyConfigured
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contractor_site.settings.base")

app = CeleryApp("contractor_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def validate_celery_settings() -> None:
    """Raise ImproperlyConfigured when the gate runs' settings and Celery's do not fit together."""
    from promotions.checks import gate_settings_errors

    errors = gate_settings_errors()
    if errors:
        raise ImproperlyConfigured("; ".join(f"{error.id}: {error.msg}" for error in errors))


validate_celery_settings()
