"""seed_demo: only adds what is missing, never changes an existing member's roles, never runs a gate."""

import io

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from promotions.models import GateRun
from tenancy.services import membership_set

DEMO_IN_ALPHA = {**settings.CONTRACTOR, "DEMO_TENANT": "alpha"}


def gate_statuses(tenant) -> set[str]:
    connection.set_tenant(tenant)
    try:
        return set(GateRun.objects.values_list("status", flat=True))
    finally:
        connection.set_schema_to_public()


@override_settings(CONTRACTOR=DEMO_IN_ALPHA)
def test_seeding_again_keeps_the_roles_an_admin_gave_and_queues_gates_without_running_them(tenant_a):
    call_command("seed_demo", stdout=io.StringIO())
    author = get_user_model().objects.get(username="author")
    membership_set(actor=None, tenant=tenant_a, user=author, roles=["auditor"])
    call_command("seed_demo", stdout=io.StringIO())
    assert tenant_a.memberships.get(user=author).roles == ["auditor"]
    assert tenant_a.memberships.get(user__username="reviewer").roles == ["reviewer"]
    assert gate_statuses(tenant_a) == {"queued"}
