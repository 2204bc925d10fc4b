"""The runtime's idempotency lookup reads the idempotency index through a SECURITY DEFINER function.

Through the security-barrier view the lookup was a scan of every decision (see runtime/grants.py); the
function is created and granted by grant_runtime_access, re-applied here in every tenant schema.
"""

from django.db import migrations

from runtime.grants import ensure_runtime_role, grant_runtime_access, idempotent_decision_function_create


def grant(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if ensure_runtime_role(cursor):
            grant_runtime_access(cursor, connection.schema_name)
        else:
            idempotent_decision_function_create(cursor, connection.schema_name)


def drop(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(
            'DROP FUNCTION IF EXISTS "{}".runtime_idempotent_decision(text, text)'.format(connection.schema_name)
        )


class Migration(migrations.Migration):
    dependencies = [("runtime", "0004_runtime_admits_no_benchmark_records")]

    operations = [migrations.RunPython(grant, drop)]
