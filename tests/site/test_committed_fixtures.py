"""The committed-data fixtures: writes made through run_committed are visible outside the test transaction."""

import psycopg
from django.db import connection, transaction
from psycopg import sql

from audit.models import Record
from audit.services import record
from tests.conftest import run_committed


def write_marker(marker: str) -> int:
    with transaction.atomic():
        return record(actor=None, action="test.committed", data={"marker": marker}).pk


def test_run_committed_writes_are_visible_to_another_connection(committed_tenant, db):
    record_id = run_committed(write_marker, "visible", tenant=committed_tenant)
    settings = connection.settings_dict
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    with psycopg.connect(
        f"host={host} port={port} user={settings['USER']} dbname={settings['NAME']}"
    ) as other:
        other.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(committed_tenant.schema_name)))
        row = other.execute("SELECT data->>'marker' FROM audit_record WHERE id = %s", [record_id]).fetchone()
    assert row == ("visible",)
    connection.set_tenant(committed_tenant)
    assert Record.objects.filter(pk=record_id).exists()
    connection.set_schema_to_public()
