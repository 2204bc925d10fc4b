"""Move DRF's authtoken tokens into personal API tokens, hashed, then drop the table of clear keys.

Each old token (40 hex digits, per user) becomes one token per active membership of its user: stored as the
SHA-256 of the whole key (no prefix; found by that hash), every scope (as before), named "migrated token",
expiring 90 days after this migration. Clients keep working until then. The old table is dropped so that no
clear token remains in the database (rest_framework.authtoken is no longer installed).
"""

import hashlib
from datetime import timedelta

from django.db import migrations
from django.utils import timezone

LEGACY_TABLE = "authtoken_token"
MIGRATED_NAME = "migrated token"
MIGRATED_LIFETIME = timedelta(days=90)
ALL_SCOPES = ["read", "push", "promote", "approve", "operate", "audit", "admin"]


def legacy_table_exists(connection) -> bool:
    """Return whether the public schema still has DRF's token table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'public' AND table_name = %s",
            [LEGACY_TABLE],
        )
        return cursor.fetchone() is not None


def migrate_legacy_tokens(apps, schema_editor) -> int:
    """Copy every DRF token as hashed personal tokens, drop the old table; return how many were made."""
    connection = schema_editor.connection
    if connection.schema_name != "public" or not legacy_table_exists(connection):
        return 0
    api_token = apps.get_model("tenancy", "ApiToken")
    membership = apps.get_model("tenancy", "Membership")
    expires_at = timezone.now() + MIGRATED_LIFETIME
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM public.{LEGACY_TABLE}")  # noqa: S608 (a constant)
        legacy = cursor.fetchall()
    made = 0
    for key, user_id in legacy:
        for tenant_id in membership.objects.filter(user_id=user_id, is_active=True).values_list(
            "tenant_id", flat=True
        ):
            api_token.objects.create(
                user_id=user_id,
                tenant_id=tenant_id,
                name=MIGRATED_NAME,
                prefix=None,
                secret_hash=hashlib.sha256(key.encode("ascii")).hexdigest(),
                scopes=ALL_SCOPES,
                expires_at=expires_at,
            )
            made += 1
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE public.{LEGACY_TABLE} CASCADE")
    return made


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0003_api_tokens_and_sign_in_lockout")]

    operations = [migrations.RunPython(migrate_legacy_tokens, migrations.RunPython.noop)]
