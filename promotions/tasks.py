"""Celery tasks of promotions: gate runs, notifications, and the periodic sweep across tenants.

Tasks take ids and call one service. Tenant tasks run in the schema they were sent from; the sweep is a
dispatcher that runs in public and visits every tenant in turn.
"""

import logging

from celery import shared_task
from django_tenants.utils import get_tenant_model, tenant_context

from core.tasks import tenant_task
from promotions.conf import promotion_setting
from promotions.queue import DELIVER_WEBHOOK, DISPATCH_EVENT, RUN_GATES, SWEEP_TENANTS
from promotions.services.gates import gate_run_execute, gate_runs_sweep_stale
from promotions.services.outbox import outbox_dispatch, outbox_redispatch_stale
from promotions.services.webhooks import webhook_deliver, webhook_retry_delay

logger = logging.getLogger(__name__)


@shared_task(name=RUN_GATES, acks_late=True, reject_on_worker_lost=True)
@tenant_task
def run_gates(gate_run_id: int) -> dict | None:
    """Run every suite of a gate run's version and store the result."""
    run = gate_run_execute(gate_run_id=gate_run_id)
    return {"id": run.pk, "status": run.status} if run else None


@shared_task(name=DISPATCH_EVENT, acks_late=True, reject_on_worker_lost=True)
@tenant_task
def dispatch_event(event_id: int) -> list[int]:
    """Queue a delivery of an outbox event to every subscribed webhook."""
    return outbox_dispatch(event_id=event_id)


@shared_task(name=DELIVER_WEBHOOK, bind=True, acks_late=True, reject_on_worker_lost=True)
@tenant_task
def deliver_webhook(self, event_id: int, webhook_id: int) -> dict | None:
    """POST one event to one webhook; retry with exponential backoff until a 2xx or the last attempt."""
    attempt = self.request.retries + 1
    delivery = webhook_deliver(event_id=event_id, webhook_id=webhook_id, attempt=attempt)
    if delivery is None:
        return None
    max_attempts = promotion_setting("WEBHOOK_MAX_ATTEMPTS")
    if not delivery.succeeded and attempt < max_attempts:
        raise self.retry(countdown=webhook_retry_delay(attempt), max_retries=max_attempts - 1)
    return {"delivery": delivery.pk, "attempt": delivery.attempt, "succeeded": delivery.succeeded}


@shared_task(name=SWEEP_TENANTS)
def sweep_tenants() -> dict:
    """In every tenant: end gate runs whose worker was lost and re-dispatch stuck outbox events."""
    swept = {}
    for tenant in get_tenant_model().objects.exclude(schema_name="public").filter(is_active=True):
        try:
            with tenant_context(tenant):
                runs = gate_runs_sweep_stale()
                events = outbox_redispatch_stale()
        except Exception:
            logger.exception("sweep of tenant %s failed", tenant.schema_name)
            continue
        if runs or events:
            swept[tenant.schema_name] = {"gate_runs": runs, "events": events}
    return swept
