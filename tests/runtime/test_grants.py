"""Creating the runtime role and granting it access: idempotent, and graceful without CREATEROLE."""

import io
import logging
import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from runtime.grants import GRANTS_SKIPPED, ROLE_NOT_CREATED, ensure_runtime_role, grant_runtime_access
from tests.runtime.conftest import RUNTIME_ROLE, database_address, owner_connection


@pytest.fixture
def unprivileged_cursor(db):
    """A cursor of a LOGIN role without CREATEROLE (created for the test, dropped after)."""
    role = f"contractor_test_{uuid.uuid4().hex[:8]}"
    with owner_connection() as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN NOCREATEROLE")
    host, port, name = database_address()
    try:
        with psycopg.connect(host=host, port=port, dbname=name, user=role) as unprivileged:
            yield unprivileged.cursor()
    finally:
        with owner_connection() as owner:
            owner.execute(f"DROP ROLE {role}")


def role_exists(name: str) -> bool:
    with owner_connection() as owner:
        return owner.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone() is not None


def test_without_createrole_the_role_is_not_created_and_the_migration_says_how(
    unprivileged_cursor, settings, caplog
):
    missing = f"contractor_runtime_{uuid.uuid4().hex[:6]}"
    settings.CONTRACTOR = {**settings.CONTRACTOR, "RUNTIME_DB_ROLE": missing}
    with caplog.at_level(logging.WARNING, logger="runtime.grants"):
        assert ensure_runtime_role(unprivileged_cursor) is False
        assert grant_runtime_access(unprivileged_cursor, "alpha") is False
    assert not role_exists(missing)
    assert caplog.messages == [
        ROLE_NOT_CREATED.format(role=missing),
        GRANTS_SKIPPED.format(role=missing, schema="alpha"),
    ]


def test_an_existing_role_is_left_as_it_is(unprivileged_cursor):
    assert ensure_runtime_role(unprivileged_cursor) is True  # exists: nothing to create, no privilege needed


def test_a_role_creating_migration_creates_a_plain_login_role(db, settings):
    created = f"contractor_runtime_{uuid.uuid4().hex[:6]}"
    settings.CONTRACTOR = {**settings.CONTRACTOR, "RUNTIME_DB_ROLE": created}
    with connection.cursor() as cursor:  # in the test's transaction: the role goes with its rollback
        assert ensure_runtime_role(cursor) is True
        cursor.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolinherit FROM pg_roles WHERE rolname = %s",
            [created],
        )
        assert cursor.fetchone() == (True, False, False, False)


def test_the_grants_command_is_idempotent(db, tenant_a):
    def privileges() -> tuple:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT has_table_privilege(%(role)s, 'alpha.runtime_released_version', 'SELECT'), "
                "has_any_column_privilege(%(role)s, 'alpha.audit_record', 'INSERT'), "
                "has_table_privilege(%(role)s, 'alpha.audit_record', 'UPDATE'), "
                "has_table_privilege(%(role)s, 'alpha.bundles_bundleversion', 'SELECT')",
                {"role": RUNTIME_ROLE},
            )
            return cursor.fetchone()

    with connection.cursor() as cursor:
        cursor.execute(f"REVOKE INSERT ON alpha.audit_record FROM {RUNTIME_ROLE}")
    assert privileges() == (True, False, False, False)
    output = io.StringIO()
    call_command("runtime_grants", stdout=output)
    call_command("runtime_grants", stdout=output)
    assert f"granted {RUNTIME_ROLE} its access to alpha" in output.getvalue()
    assert privileges() == (True, True, False, False)
