"""Make the release pointer history (deployments) and approvals append-only."""

from django.db import migrations

from audit.immutability import protect_table_sql, unprotect_table_sql

TABLES = ["promotions_deployment", "promotions_approval"]


class Migration(migrations.Migration):
    dependencies = [("promotions", "0001_initial"), ("tenancy", "0002_refuse_mutation_function")]

    operations = [migrations.RunSQL(protect_table_sql(table), unprotect_table_sql(table)) for table in TABLES]
