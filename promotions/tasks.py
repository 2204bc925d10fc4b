"""Celery tasks of promotions: gate runs, notifications, and the periodic watch and sweep across tenants.

Tasks take ids and call one service. Tenant tasks run in the schema they were sent from; the watch and the
sweep are dispatchers that run in public and visit every tenant in turn.
"""

import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django_tenants.utils import get_tenant_model, tenant_context

from core.tasks import tenant_task
from promotions.conf import promotion_setting
from promotions.queue import (
    DELIVER_WEBHOOK,
    DISPATCH_EVENT,
    RUN_GATES,
    SEED_DEMO,
    SWEEP_TENANTS,
    WATCH_GATE_RUNS,
)
from promotions.services.gate_execution import (
    GateRunInterrupted,
    gate_run_execute,
    gate_run_retry_delay,
    gate_runs_watch,
)
from promotions.services.outbox import outbox_dispatch, outbox_redispatch_stale
from promotions.services.webhooks import webhook_deliver, webhook_retry_delay

logger = logging.getLogger(__name__)


@shared_task(
    name=RUN_GATES,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=promotion_setting("GATE_RUN_SOFT_TIME_LIMIT_SECONDS"),
    time_limit=promotion_setting("GATE_RUN_TIME_LIMIT_SECONDS"),
    max_retries=None,
)
@tenant_task
def run_gates(self, gate_run_id: int, attempt: int | None = None) -> dict | None:
    """Run every suite of a gate run's version and store the result; retry database errors with backoff.

    A retry carries the interrupted attempt's token so that it resumes that attempt. After the last retry the
    run is left to the watch, which re-dispatches it once its heartbeat is stale.
    """
    try:
        run = gate_run_execute(gate_run_id=gate_run_id, attempt=attempt)
    except GateRunInterrupted as interrupted:
        # The connection may be dead (terminated, server restarted): open a fresh one for the retry.
        connection.close()
        retries = self.request.retries
        if retries >= promotion_setting("GATE_RUN_DB_RETRIES"):
            logger.error("gate run %s: giving up after %s database retries", gate_run_id, retries)
            return None
        delay = gate_run_retry_delay(retries)
        logger.warning("%s; retry %s in %.1f s", interrupted, retries + 1, delay)
        raise self.retry(
            kwargs={"gate_run_id": gate_run_id, "attempt": interrupted.attempt}, countdown=delay
        ) from interrupted
    return {"id": run.pk, "status": run.status, "attempts": run.attempts} if run else None


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
    """In every tenant: re-dispatch stuck outbox events."""
    swept = {}
    for tenant in active_tenants():
        try:
            with tenant_context(tenant):
                events = outbox_redispatch_stale()
        except Exception:
            logger.exception("sweep of tenant %s failed", tenant.schema_name)
            continue
        if events:
            swept[tenant.schema_name] = {"events": events}
    return swept


@shared_task(name=WATCH_GATE_RUNS)
def watch_gate_runs() -> dict:
    """In every tenant: re-dispatch gate runs whose worker was lost, end those out of attempts or time."""
    watched = {}
    for tenant in active_tenants():
        try:
            with tenant_context(tenant):
                handled = gate_runs_watch()
        except Exception:
            logger.exception("gate-run watch of tenant %s failed", tenant.schema_name)
            connection.close()
            continue
        if any(handled.values()):
            watched[tenant.schema_name] = handled
    return watched


def active_tenants():
    """Return the active tenants (every schema but public)."""
    return get_tenant_model().objects.exclude(schema_name="public").filter(is_active=True)


@shared_task(name=SEED_DEMO)
@tenant_task
def seed_demo(user_ids: dict[str, int], rounds_left: int) -> bool:
    """Continue the demo's promotions once their gates passed (queued by the demo seeder)."""
    from promotions.demo import seed_promotions

    users = {role: get_user_model().objects.get(pk=pk) for role, pk in user_ids.items()}
    with transaction.atomic():
        return seed_promotions(tenant=None, users=users, stdout=LogWriter(), rounds_left=rounds_left)


class LogWriter:
    """A stdout for seeders run by the worker: each line goes to the log."""

    def write(self, text: str) -> None:
        logger.info(text.strip())
