"""Every change of a tracked model writes a history row."""

from tenancy.models import Membership
from tenancy.roles import Role


def test_changing_a_membership_writes_history_rows(tenant_a, make_member):
    user = make_member(tenant_a, "historic", [Role.AUTHOR])
    make_member(tenant_a, "historic", [Role.AUTHOR, Role.REVIEWER])
    membership = Membership.objects.get(user=user, tenant=tenant_a)
    rows = list(membership.history.order_by("history_id"))
    assert [row.history_type for row in rows] == ["+", "~"]
    assert rows[-1].roles == ["author", "reviewer"]


def test_a_membership_changed_through_the_console_names_the_user_in_history(tenant_a, make_member):
    from tests.conftest import session_client

    admin = make_member(tenant_a, "console-admin", [Role.ADMIN])
    make_member(tenant_a, "target-user", [Role.AUTHOR])
    client = session_client(tenant_a, admin)
    response = client.post("/members/", {"username": "target-user", "roles": ["auditor"]})
    assert response.status_code == 302
    row = Membership.objects.get(user__username="target-user", tenant=tenant_a).history.latest("history_id")
    assert row.roles == ["auditor"]
    assert row.history_user_id == admin.pk
