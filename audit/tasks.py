"""Audit tasks: they run in the tenant schema they were sent from."""

from celery import shared_task
from django.db import connection

from audit.models import Record
from audit.selectors import first_tampered_record
from core.tasks import tenant_task


@shared_task(name="audit.verify_records")
@tenant_task
def verify_records() -> dict:
    """Recompute every record hash of this tenant; return the schema, the count and the first bad id."""
    tampered = first_tampered_record()
    return {
        "schema": connection.schema_name,
        "records": Record.objects.count(),
        "first_tampered": tampered.pk if tampered else None,
    }
