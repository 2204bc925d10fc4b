"""Audit tasks: they run in the tenant schema they were sent from."""

import logging

from celery import shared_task
from django.db import connection
from django_tenants.utils import get_tenant_model, tenant_context

from audit.models import Record
from audit.selectors import first_tampered_record
from audit.verification import verification_run_execute, verification_runs_redispatch_stale
from core.tasks import tenant_task

logger = logging.getLogger(__name__)


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


@shared_task(name="audit.verify_log", acks_late=True, reject_on_worker_lost=True)
@tenant_task
def verify_log(run_id: int) -> dict | None:
    """Check every record of a verification run (resuming where an earlier worker stopped)."""
    run = verification_run_execute(run_id=run_id)
    return {"run": run.pk, "status": run.status, "checked": run.checked} if run else None


@shared_task(name="audit.sweep_verification_runs")
def sweep_verification_runs() -> dict:
    """In every tenant: send again the verification runs whose worker stopped."""
    swept = {}
    for tenant in get_tenant_model().objects.exclude(schema_name="public").filter(is_active=True):
        try:
            with tenant_context(tenant):
                runs = verification_runs_redispatch_stale()
        except Exception:
            logger.exception("verification sweep of tenant %s failed", tenant.schema_name)
            continue
        if runs:
            swept[tenant.schema_name] = runs
    return swept
