"""The other paths: the platform's Django admin on the public host and the management commands. A platform
operator changing a tenant's memberships makes a governance change of that tenant like anyone else."""

import io

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils.html import escape
from django_tenants.utils import schema_context

from governance.models import GovernanceChangeRequest
from governance.services import change_approve
from tenancy.admin import ADMIN_CHANGE_PENDING
from tenancy.middleware import SESSION_TENANT_KEY
from tenancy.models import Membership


@pytest.fixture
def operator(db):
    """Platform staff allowed into the admin on the public host."""
    return get_user_model().objects.create_user(
        username="platform-op", password="pw-for-tests-1", is_staff=True, is_superuser=True
    )


def admin_client(operator) -> Client:
    """A signed-in session of the public host (bound to the public schema, as the sign-in there binds it)."""
    client = Client(HTTP_HOST=settings.CONTRACTOR["BASE_DOMAIN"])
    client.force_login(operator)
    session = client.session
    session[SESSION_TENANT_KEY] = "public"
    session.save()
    return client


def change_form(membership, roles: list[str]) -> dict:
    return {
        "user": membership.user_id,
        "tenant": membership.tenant_id,
        "roles": ",".join(roles),
        "is_active": "on",
    }


def test_an_operator_giving_a_member_roles_in_the_admin_makes_a_change_request_of_that_tenant(
    team, tenant_a, operator
):
    membership = Membership.objects.get(user=team.auditor, tenant=tenant_a)
    connection.set_schema_to_public()
    client = admin_client(operator)
    url = f"/admin/tenancy/membership/{membership.pk}/change/"
    response = client.post(url, change_form(membership, ["auditor", "reviewer"]), follow=True)
    assert response.status_code == 200
    membership.refresh_from_db()
    assert membership.roles == ["auditor"]
    with schema_context(tenant_a.schema_name):
        change = GovernanceChangeRequest.objects.get()
        assert (change.kind, change.status, change.requested_by) == ("membership.roles", "pending", operator)
        assert change.proposed == {"roles": ["auditor", "reviewer"]}
    assert escape(ADMIN_CHANGE_PENDING.format(id=change.pk)) in response.content.decode()
    # A tenant admin approves it in the tenant; then it applies.
    connection.set_tenant(tenant_a)
    change_approve(actor=team.admin, change=change)
    membership.refresh_from_db()
    assert membership.roles == ["auditor", "reviewer"]


def test_an_operator_removing_a_role_in_the_admin_applies_at_once(team, tenant_a, operator):
    membership = Membership.objects.get(user=team.operator, tenant=tenant_a)
    membership.roles = ["auditor", "operator"]
    membership.save(update_fields=["roles"])
    connection.set_schema_to_public()
    url = f"/admin/tenancy/membership/{membership.pk}/change/"
    response = admin_client(operator).post(url, change_form(membership, ["auditor"]))
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.roles == ["auditor"]
    with schema_context(tenant_a.schema_name):
        assert not GovernanceChangeRequest.objects.exists()


def test_the_demo_seed_command_does_not_loosen_a_governed_tenant_alone(team, tenant_a, monkeypatch):
    """seed_demo on a tenant with two admins: the roles it would add become change requests."""
    monkeypatch.setitem(settings.CONTRACTOR, "DEMO_TENANT", tenant_a.schema_name)
    from tenancy.management.commands import seed_demo

    monkeypatch.setattr(seed_demo.Command, "seed_tenant_content", lambda self, tenant, users: None)
    connection.set_schema_to_public()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "waits for another admin's approval" in out.getvalue()
    assert not Membership.objects.filter(user__username="admin", tenant=tenant_a, is_active=True).exists()
    with schema_context(tenant_a.schema_name):
        kinds = set(GovernanceChangeRequest.objects.values_list("kind", flat=True))
        requesters = set(GovernanceChangeRequest.objects.values_list("requested_by", flat=True))
    assert kinds == {"membership.roles"}
    assert requesters == {None}  # the system asked; any tenant admin may approve
