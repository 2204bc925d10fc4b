"""Create, once in the public schema, the trigger function that append-only tenant tables use."""

from django.db import migrations

from audit.immutability import CREATE_REFUSE_FUNCTION_SQL, DROP_REFUSE_FUNCTION_SQL


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]

    operations = [migrations.RunSQL(CREATE_REFUSE_FUNCTION_SQL, DROP_REFUSE_FUNCTION_SQL)]
