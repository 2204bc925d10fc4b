"""The audit log is append-only in the database itself, and every record hash covers its content."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.exceptions import AuditOutsideTransaction
from audit.hashing import record_hash
from audit.models import Record
from audit.selectors import first_tampered_record, record_is_intact
from audit.services import canonical_form, record


@pytest.fixture
def entry(in_tenant_a):
    with transaction.atomic():
        return record(
            actor=None, action="test.recorded", target=("thing", "1"), data={"n": 1, "text": "héllo"}
        )


def test_recording_outside_a_transaction_is_refused(in_tenant_a):
    with pytest.raises(AuditOutsideTransaction):
        record(actor=None, action="test.loose")


def test_a_record_hash_verifies_its_content(entry):
    stored = Record.objects.get(pk=entry.pk)
    assert len(stored.record_hash) == 64
    assert record_is_intact(stored)


def test_the_database_refuses_update_of_a_record(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Record.objects.filter(pk=entry.pk).update(action="test.rewritten")


def test_the_database_refuses_delete_of_a_record(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Record.objects.filter(pk=entry.pk).delete()


def test_the_database_refuses_raw_sql_update_and_truncate(entry):
    for statement in ("UPDATE audit_record SET data = '{}'::jsonb", "TRUNCATE audit_record"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)


def test_a_record_changed_behind_the_triggers_is_detected(entry):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_record DISABLE TRIGGER audit_record_refuse_update_delete")
        cursor.execute("UPDATE audit_record SET data = '{\"n\": 2}'::jsonb WHERE id = %s", [entry.pk])
        cursor.execute("ALTER TABLE audit_record ENABLE TRIGGER audit_record_refuse_update_delete")
        assert first_tampered_record().pk == entry.pk


def test_the_same_content_in_another_tenant_has_another_hash(entry, in_tenant, tenant_a, tenant_b):
    in_tenant(tenant_b)
    with transaction.atomic():
        twin = record(
            actor=None, action="test.recorded", target=("thing", "1"), data={"n": 1, "text": "héllo"}
        )
    # Everything but the tenant is the same as tenant A's record: only the tenant can tell their hashes apart.
    twin.created_at = entry.created_at
    as_in_a = record_hash(canonical_form(twin, tenant=tenant_a.schema_name))
    as_in_b = record_hash(canonical_form(twin, tenant=tenant_b.schema_name))
    assert as_in_a == entry.record_hash
    assert as_in_b != as_in_a


def test_the_log_keeps_no_pattern_copy_and_no_index_on_the_record_hash(in_tenant_a):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'audit_record'",
            [connection.schema_name],
        )
        indexes = dict(cursor.fetchall())
    assert not [name for name, definition in indexes.items() if "pattern_ops" in definition], indexes
    assert not [name for name, definition in indexes.items() if "record_hash" in definition], indexes
    assert "audit_record_action" in indexes
