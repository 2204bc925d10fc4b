"""Provisioning a tenant from the command line."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import Record
from tenancy.models import Domain, Membership, Tenant
from tenancy.roles import Role


def test_tenant_create_refuses_an_invalid_slug(db):
    with pytest.raises(CommandError, match="invalid_slug"):
        call_command("tenant_create", "Bad_Slug!", "--admin", "someone")


def test_tenant_create_refuses_an_existing_tenant(tenant_a):
    with pytest.raises(CommandError, match="tenant_exists"):
        call_command("tenant_create", "alpha", "--admin", "someone")


def test_tenant_create_makes_schema_host_admin_and_first_audit_records(db, capsys):
    call_command("tenant_create", "globex", "--admin", "alice", "--name", "Globex")
    output = capsys.readouterr().out
    tenant = Tenant.objects.get(schema_name="globex")
    assert Domain.objects.get(tenant=tenant).domain == "globex.localhost"
    assert Membership.objects.get(tenant=tenant, user__username="alice").roles == [Role.ADMIN]
    assert "New user 'alice' created with password:" in output
    connection.set_tenant(tenant)
    try:
        actions = list(Record.objects.order_by("id").values_list("action", flat=True))
    finally:
        connection.set_schema_to_public()
    assert actions == ["tenant.created", "membership.changed"]
