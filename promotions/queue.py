"""Queue promotions tasks by name: the services cannot import the task module, which imports them."""

from celery import current_app

from core.tasks import enqueue_on_commit

RUN_GATES = "promotions.run_gates"
DISPATCH_EVENT = "promotions.dispatch_event"
DELIVER_WEBHOOK = "promotions.deliver_webhook"
SWEEP_TENANTS = "promotions.sweep_tenants"
WATCH_GATE_RUNS = "promotions.watch_gate_runs"
SEED_DEMO = "promotions.seed_demo"


def enqueue_task(name: str, *, countdown: float | None = None, **kwargs) -> None:
    """Send task `name` with `kwargs` once the current transaction commits, to the current tenant's schema."""
    signature = current_app.signature(name)
    if countdown is not None:
        signature = signature.set(countdown=countdown)
    enqueue_on_commit(signature, **kwargs)
