"""Re-apply the runtime role's grants, whose row-level security no longer admits the benchmark's `bench.bare`
records: only `runtime.decision` records by a runtime key. The benchmark adds its own policy in its own
throw-away tenant (bench/bare_runtime.py). See runtime/grants.py.
"""

from django.db import migrations

from runtime.grants import ensure_runtime_role, grant_runtime_access


def grant(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if ensure_runtime_role(cursor):
            grant_runtime_access(cursor, connection.schema_name)


class Migration(migrations.Migration):
    dependencies = [("runtime", "0003_runtime_appends_only_its_records")]

    # Going back leaves the narrower policies in place (0002's reverse removes them all).
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
