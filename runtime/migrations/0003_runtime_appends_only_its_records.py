"""Narrow the runtime role's INSERT on the audit log to its own records (DESIGN §7: it may only append
decision records): every column but `id`, and row-level security admitting only `runtime.decision` records
by a runtime key (at the time also the benchmark's `bench.bare`, see 0004). See runtime/grants.py.
"""

from django.db import migrations

from runtime.grants import ensure_runtime_role, grant_runtime_access


def grant(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if ensure_runtime_role(cursor):
            grant_runtime_access(cursor, connection.schema_name)


class Migration(migrations.Migration):
    dependencies = [("runtime", "0002_runtime_access")]

    # Going back leaves the narrower grants in place (0002's reverse removes them all).
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
