"""The tenant-aware Celery app: a task runs in the schema it was sent from."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contractor_site.settings.base")

app = CeleryApp("contractor_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
