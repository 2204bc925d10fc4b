"""Make bundle versions immutable in every tenant schema."""

from django.db import migrations

from audit.immutability import protect_table_sql, unprotect_table_sql


class Migration(migrations.Migration):
    dependencies = [("bundles", "0001_initial"), ("tenancy", "0002_refuse_mutation_function")]

    operations = [
        migrations.RunSQL(protect_table_sql("bundles_bundleversion"), unprotect_table_sql("bundles_bundleversion"))
    ]
