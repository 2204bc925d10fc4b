"""Finished gate runs are immutable; webhook delivery attempts are append-only."""

from django.db import migrations

from audit.immutability import protect_table_sql, unprotect_table_sql
from promotions.immutability import PROTECT_SQL, UNPROTECT_SQL


class Migration(migrations.Migration):
    dependencies = [
        ("promotions", "0003_webhooks_outbox_deployment_previous"),
        ("tenancy", "0002_refuse_mutation_function"),
    ]

    operations = [
        migrations.RunSQL(PROTECT_SQL, UNPROTECT_SQL),
        migrations.RunSQL(
            protect_table_sql("promotions_webhookdelivery"), unprotect_table_sql("promotions_webhookdelivery")
        ),
    ]
