"""The runtime's database access in every tenant schema: its views, the decision indexes, its role and grants.

See runtime/grants.py. Creating the role needs CREATEROLE; without it this migration logs how to create the
role and continues (the grants are then applied later by `manage.py runtime_grants`).

The released-versions view is promotions' (promotions/release_view.py, promotions 0006); it is created here
too, from the same statement, because the grants below are given on it and this migration came first.
"""

from django.db import migrations

from promotions.release_view import RELEASED_VIEW_SQL
from runtime.grants import (
    DECISION_TIME_INDEX_SQL,
    DECISION_VIEW_SQL,
    DROP_DECISION_VIEW_SQL,
    DROP_INDEXES_SQL,
    IDEMPOTENCY_INDEX_SQL,
    ensure_runtime_role,
    grant_runtime_access,
    revoke_runtime_access,
)


def grant(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if ensure_runtime_role(cursor):
            grant_runtime_access(cursor, connection.schema_name)


def revoke(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        revoke_runtime_access(cursor, connection.schema_name)


class Migration(migrations.Migration):
    dependencies = [
        ("runtime", "0001_initial"),
        ("audit", "0002_protect_record"),
        ("bundles", "0002_protect_versions"),
        ("promotions", "0005_default_environments"),
    ]

    operations = [
        migrations.RunSQL(RELEASED_VIEW_SQL + DECISION_VIEW_SQL, DROP_DECISION_VIEW_SQL),
        migrations.RunSQL(IDEMPOTENCY_INDEX_SQL + DECISION_TIME_INDEX_SQL, DROP_INDEXES_SQL),
        migrations.RunPython(grant, revoke),
    ]
