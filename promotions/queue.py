"""Queue promotions tasks by name: the services cannot import the task module, which imports them."""

from celery import current_app

from core.tasks import enqueue_on_commit

RUN_GATES = "promotions.run_gates"
DISPATCH_EVENT = "promotions.dispatch_event"
DELIVER_WEBHOOK = "promotions.deliver_webhook"
SWEEP_TENANTS = "promotions.sweep_tenants"


def enqueue_task(name: str, **kwargs) -> None:
    """Send task `name` with `kwargs` once the current transaction commits, to the current tenant's schema."""
    enqueue_on_commit(current_app.signature(name), **kwargs)
