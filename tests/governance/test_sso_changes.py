"""Single sign-on decides who may sign in and with which roles: a platform operator's loosening of a tenant's
configuration (admin, command, service) is a governance change of that tenant, approved by its admins."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.utils.html import escape
from django_tenants.utils import schema_context

from audit.models import Record
from governance.models import GovernanceChangeRequest
from governance.services import change_approve
from tenancy.admin import ADMIN_CHANGE_PENDING
from tenancy.models import SsoConfig
from tenancy.sso.exceptions import NotPlatformOperator
from tenancy.sso.services import SSO_CONFIG_KIND, sso_config_apply, sso_config_change
from tests.governance.test_admin_and_commands import admin_client

ISSUER = "http://127.0.0.1:9"
NEW_PROVIDER = {
    "issuer": ISSUER,
    "client_id": "contractor-alpha",
    "enabled": True,
    "role_mapping": {"engineering": ["author", "reviewer"]},
}


@pytest.fixture
def operator(db):
    """Platform staff allowed to change SSO configurations (superuser: every admin permission)."""
    return get_user_model().objects.create_user(
        username="sso-op", password="pw-for-tests-1", is_staff=True, is_superuser=True
    )


def pending_sso_changes(tenant) -> list[GovernanceChangeRequest]:
    with schema_context(tenant.schema_name):
        return list(GovernanceChangeRequest.objects.filter(kind=SSO_CONFIG_KIND, status="pending"))


def test_a_new_provider_waits_for_a_tenant_admin_and_applies_on_approval(team, tenant_a, operator):
    result = sso_config_change(actor=operator, tenant=tenant_a, changes=NEW_PROVIDER)
    assert isinstance(result, GovernanceChangeRequest)
    assert not SsoConfig.objects.filter(tenant=tenant_a).exists()
    connection.set_tenant(tenant_a)
    change_approve(actor=team.admin2, change=result, comment="our IdP")
    config = SsoConfig.objects.get(tenant=tenant_a)
    assert (config.issuer, config.enabled, config.role_mapping) == (
        ISSUER,
        True,
        {"engineering": ["author", "reviewer"]},
    )
    written = Record.objects.filter(action="sso.config_changed").latest("id")
    assert written.actor_name == team.admin2.username
    assert written.data["approved_by"] == [team.admin2.username]


def test_tightening_applies_at_once(team, tenant_a, operator):
    sso_config_apply(actor=None, tenant=tenant_a, changes={"issuer": ISSUER, "client_id": "c"})
    result = sso_config_change(actor=operator, tenant=tenant_a, changes={"sso_only": True})
    assert isinstance(result, SsoConfig) and result.sso_only is True
    assert pending_sso_changes(tenant_a) == []


def test_a_mapping_that_grants_admin_waits_and_the_operator_cannot_approve_it(team, tenant_a, operator):
    sso_config_apply(
        actor=None, tenant=tenant_a, changes={"issuer": ISSUER, "client_id": "c", "enabled": True}
    )
    change = sso_config_change(
        actor=operator, tenant=tenant_a, changes={"role_mapping": {"everyone": ["admin"]}}
    )
    assert isinstance(change, GovernanceChangeRequest)
    assert SsoConfig.objects.get(tenant=tenant_a).role_mapping == {}
    connection.set_tenant(tenant_a)
    with pytest.raises(Exception) as refused:
        change_approve(actor=operator, change=change, comment="myself")
    assert getattr(refused.value, "status", None) in (403, 404)
    assert SsoConfig.objects.get(tenant=tenant_a).role_mapping == {}


def test_the_admin_page_turns_a_loosening_into_a_change_request(team, tenant_a, operator):
    connection.set_schema_to_public()
    client = admin_client(operator)
    form = {
        "tenant": tenant_a.pk,
        "issuer": ISSUER,
        "client_id": "contractor-alpha",
        "client_secret_env": "",
        "scopes": "openid,email",
        "username_claim": "preferred_username",
        "email_claim": "email",
        "groups_claim": "groups",
        "role_mapping": '{"engineering": ["author"]}',
        "group_mapping": "{}",
        "enabled": "on",
    }
    response = client.post("/admin/tenancy/ssoconfig/add/", form, follow=True)
    assert response.status_code == 200
    pending = pending_sso_changes(tenant_a)
    assert len(pending) == 1
    assert escape(ADMIN_CHANGE_PENDING.format(id=pending[0].pk)) in response.content.decode()
    assert not SsoConfig.objects.filter(tenant=tenant_a).exists()


def test_the_command_reports_the_change_request_instead_of_saving(team, tenant_a):
    connection.set_schema_to_public()
    out = io.StringIO()
    call_command(
        "sso_config", "alpha", "--issuer", ISSUER, "--client-id", "cli", "--enabled", "on", stdout=out
    )
    pending = pending_sso_changes(tenant_a)
    assert len(pending) == 1
    assert f"governance change #{pending[0].pk}" in out.getvalue()
    assert not SsoConfig.objects.filter(tenant=tenant_a).exists()


def test_no_person_writes_a_configuration_directly(team, tenant_a, operator):
    with pytest.raises(NotPlatformOperator):
        sso_config_apply(actor=operator, tenant=tenant_a, changes={"sso_only": False})
