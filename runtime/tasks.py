"""Celery tasks of the runtime's control-plane side: decision rollups (runtime.rollups)."""

import logging

from celery import shared_task
from django_tenants.utils import get_tenant_model, tenant_context

from runtime.rollups import decision_rollups_catch_up

logger = logging.getLogger(__name__)

ROLL_UP_DECISIONS = "runtime.roll_up_decisions"


@shared_task(name=ROLL_UP_DECISIONS)
def roll_up_decisions(seconds_per_tenant: float = 20.0) -> dict:
    """In every tenant: roll up the decisions that settled since the last run."""
    rolled = {}
    for tenant in get_tenant_model().objects.exclude(schema_name="public").filter(is_active=True):
        try:
            with tenant_context(tenant):
                decisions = decision_rollups_catch_up(seconds=seconds_per_tenant)
        except Exception:
            logger.exception("decision rollup of tenant %s failed", tenant.schema_name)
            continue
        if decisions:
            rolled[tenant.schema_name] = decisions
    return rolled
