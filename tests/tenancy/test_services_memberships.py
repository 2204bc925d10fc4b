"""Roles change only by a tenant's admins (or platform staff, or the system): the service says so itself, and
the console answers a refusal with its 403 page, never a server error."""

import pytest
from django.contrib.auth import get_user_model

from tenancy.exceptions import MISSING_CAPABILITY, MissingCapability, NotAMember
from tenancy.models import Membership
from tenancy.roles import Role
from tenancy.services import membership_deactivate, membership_set
from tests.conftest import session_client


def roles_of(user, tenant) -> list[str]:
    return Membership.objects.get(user=user, tenant=tenant).roles


def test_an_author_cannot_make_themselves_admin_through_the_service(tenant_a, make_member):
    author = make_member(tenant_a, "ms-author", [Role.AUTHOR])
    with pytest.raises(MissingCapability) as refused:
        membership_set(actor=author, tenant=tenant_a, user=author, roles=[Role.ADMIN])
    assert refused.value.message == MISSING_CAPABILITY.format(capability="manage_memberships")
    with pytest.raises(MissingCapability):
        membership_deactivate(actor=author, tenant=tenant_a, user=author)
    assert roles_of(author, tenant_a) == [Role.AUTHOR]


def test_an_admin_of_another_tenant_cannot_change_this_tenants_members(tenant_a, tenant_b, make_member):
    outsider = make_member(tenant_b, "ms-outsider", [Role.ADMIN])
    member = make_member(tenant_a, "ms-member", [Role.AUTHOR])
    with pytest.raises(NotAMember):
        membership_set(actor=outsider, tenant=tenant_a, user=outsider, roles=[Role.ADMIN])
    with pytest.raises(NotAMember):
        membership_set(actor=outsider, tenant=tenant_a, user=member, roles=[])
    assert not Membership.objects.filter(user=outsider, tenant=tenant_a).exists()
    assert roles_of(member, tenant_a) == [Role.AUTHOR]


def test_the_tenants_admin_and_platform_staff_change_roles(tenant_a, make_member):
    admin = make_member(tenant_a, "ms-admin", [Role.ADMIN])
    member = make_member(tenant_a, "ms-member", [Role.AUTHOR])
    membership_set(actor=admin, tenant=tenant_a, user=member, roles=[Role.REVIEWER])
    assert roles_of(member, tenant_a) == [Role.REVIEWER]
    staff = get_user_model().objects.create_user(
        username="ms-staff", password="pw-for-tests-1", is_staff=True, is_superuser=True
    )
    membership_set(actor=staff, tenant=tenant_a, user=member, roles=[Role.AUDITOR])
    assert roles_of(member, tenant_a) == [Role.AUDITOR]


def test_a_console_role_change_by_a_non_admin_is_a_403_page_not_a_server_error(tenant_a, make_member):
    author = make_member(tenant_a, "ms-author", [Role.AUTHOR])
    page = session_client(tenant_a, author)
    page.raise_request_exception = False
    response = page.post("/members/", {"username": "ms-author", "roles": [Role.ADMIN]})
    assert response.status_code == 403
    assert MISSING_CAPABILITY.format(capability="manage_memberships") in response.content.decode()
    assert roles_of(author, tenant_a) == [Role.AUTHOR]
