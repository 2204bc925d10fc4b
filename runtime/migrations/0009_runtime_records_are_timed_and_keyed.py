"""The database checks every record the runtime role appends: its time is the database's present (no
back-dated records), and a decision names an existing, unrevoked runtime key of its schema. See
runtime/grants.py (`runtime_decision_guard`). A new endpoint's default timeout fits MODEL_TIMEOUT_CAP.
"""

from django.db import migrations, models

from runtime.grants import install_decision_guard, remove_decision_guard


def install(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        install_decision_guard(cursor, schema_editor.connection.schema_name)


def remove(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        remove_decision_guard(cursor, schema_editor.connection.schema_name)


class Migration(migrations.Migration):
    dependencies = [("runtime", "0008_daily_rollups_and_bundles")]

    operations = [
        migrations.RunPython(install, remove),
        migrations.AlterField(
            model_name="historicalmodelendpoint",
            name="timeout_seconds",
            field=models.FloatField(default=10.0),
        ),
        migrations.AlterField(
            model_name="modelendpoint",
            name="timeout_seconds",
            field=models.FloatField(default=10.0),
        ),
    ]
