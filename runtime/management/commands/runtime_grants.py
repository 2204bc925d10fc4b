"""Create the runtime's database role if missing and (re)apply its grants in every tenant schema."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from runtime.grants import ensure_runtime_role, grant_runtime_access, runtime_role
from tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Create the runtime's database role (needs CREATEROLE) unless it exists, then grant it exactly its "
        "access in every tenant schema. Idempotent."
    )

    def handle(self, *args, **options):
        connection.set_schema_to_public()
        schemas = list(Tenant.objects.exclude(schema_name="public").values_list("schema_name", flat=True))
        with connection.cursor() as cursor:
            if not ensure_runtime_role(cursor):
                raise CommandError(
                    f"The database role {runtime_role()} does not exist and cannot be created."
                )
            cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [schemas])
            existing = {row[0] for row in cursor.fetchall()}
            for schema in schemas:
                if schema not in existing:
                    self.stderr.write(f"skipped {schema}: the tenant has no schema")
                    continue
                grant_runtime_access(cursor, schema)
                self.stdout.write(f"granted {runtime_role()} its access to {schema}")
        self.stdout.write(self.style.SUCCESS(f"{len(schemas)} tenant schema(s) granted."))
