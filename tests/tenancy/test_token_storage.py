"""No clear token anywhere: the database holds hashes only, logs and audit data never the secret; DRF's
former tokens are migrated hashed and keep working until they expire."""

import hashlib
import importlib
import logging
from datetime import timedelta
from types import SimpleNamespace

from django.apps import apps
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from tenancy.models import ApiToken
from tenancy.roles import Role
from tenancy.views import NEW_TOKEN_SESSION_KEY
from tests.conftest import host_of, session_client

PASSWORD = "pw-for-tests-1"
LEGACY_KEY = "0123456789abcdef0123456789abcdef01234567"
TEXT_TYPES = ("text", "character varying", "json", "jsonb", "ARRAY")

migration = importlib.import_module("tenancy.migrations.0004_migrate_drf_tokens_hashed")


def text_columns(schemas: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """Return (schema, table, column) of every text-like column of the tables in `schemas`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t "
            "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = ANY(%s) AND c.data_type = ANY(%s) AND t.table_type = 'BASE TABLE'",
            [list(schemas), list(TEXT_TYPES)],
        )
        return cursor.fetchall()


def places_holding(text: str, schemas: tuple[str, ...]) -> list[str]:
    """Return 'schema.table.column' of every column in `schemas` with a value containing `text`."""
    found = []
    with connection.cursor() as cursor:
        for schema, table, column in text_columns(schemas):
            cursor.execute(
                f'SELECT 1 FROM "{schema}"."{table}" WHERE "{column}"::text LIKE %s LIMIT 1',  # noqa: S608
                [f"%{text}%"],
            )
            if cursor.fetchone():
                found.append(f"{schema}.{table}.{column}")
    return found


def test_no_clear_token_is_in_the_database_or_the_logs(tenant_a, make_member, caplog):
    make_member(tenant_a, "no-clear", [Role.ADMIN])
    caplog.set_level(logging.DEBUG)
    client = APIClient(HTTP_HOST=host_of(tenant_a))
    response = client.post(
        "/api/v1/auth/token/",
        {"username": "no-clear", "password": PASSWORD, "name": "grep me"},
        format="json",
    )
    token = response.json()["token"]
    secret = token.split("_", 2)[2]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").status_code == 200
    created = client.post("/api/v1/tokens/", {"name": "second"}, format="json").json()["token"]
    assert client.delete(f"/api/v1/tokens/{ApiToken.objects.get(name='second').pk}/").status_code == 200
    connection.set_schema_to_public()
    schemas = ("public", tenant_a.schema_name)
    assert text_columns(schemas), "the check must look at some columns"
    for text in (token, secret, created, created.split("_", 2)[2]):
        assert places_holding(text, schemas) == []
        assert text not in caplog.text
    saved = ApiToken.objects.get(name="grep me")
    assert saved.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert places_holding(saved.secret_hash, ("public",)) == ["public.tenancy_apitoken.secret_hash"]


def test_the_console_shows_a_new_token_once_and_keeps_it_out_of_the_session_store(tenant_a, make_member):
    user = make_member(tenant_a, "console-token", [Role.AUTHOR])
    client = session_client(tenant_a, user)
    response = client.post("/tokens/", {"name": "from the console", "scopes": ["read"]})
    assert response.status_code == 302
    assert response["Location"] == "/tokens/created/"
    saved = ApiToken.objects.get(user=user, name="from the console")
    sealed = client.session[NEW_TOKEN_SESSION_KEY]["sealed"]
    shown = client.get("/tokens/created/")
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    text = shown.content.decode()
    start = text.index(f"ct_{saved.prefix}_")
    token = text[start : start + len(f"ct_{saved.prefix}_") + 43]
    assert hashlib.sha256(token.split("_", 2)[2].encode()).hexdigest() == saved.secret_hash
    assert token.split("_", 2)[2] not in sealed  # the session store held it encrypted
    assert places_holding(token.split("_", 2)[2], ("public",)) == []
    again = client.get("/tokens/created/")
    assert again.status_code == 302
    assert client.get("/tokens/").content.decode().count(token) == 0
    api = APIClient(HTTP_HOST=host_of(tenant_a), HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/me/").json()["user"] == "console-token"


def test_a_member_revokes_a_token_in_the_console(tenant_a, make_member):
    user = make_member(tenant_a, "console-revoker", [Role.AUTHOR])
    client = session_client(tenant_a, user)
    client.post("/tokens/", {"name": "to revoke"})
    saved = ApiToken.objects.get(user=user, name="to revoke")
    assert client.post(f"/tokens/{saved.pk}/revoke/").status_code == 302
    saved.refresh_from_db()
    assert saved.revoked_at is not None
    stranger = session_client(tenant_a, make_member(tenant_a, "console-stranger", [Role.OPERATOR]))
    other = ApiToken.objects.create(
        user=user,
        tenant=tenant_a,
        name="not yours",
        prefix="abcdef01",
        secret_hash="0" * 64,
        expires_at=timezone.now() + timedelta(days=1),
    )
    assert stranger.post(f"/tokens/{other.pk}/revoke/").status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None


def create_legacy_table(key: str, user_id: int) -> None:
    """Create DRF's token table as rest_framework.authtoken left it, holding one clear key."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE public.authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL, "
            "user_id integer NOT NULL UNIQUE REFERENCES public.auth_user(id))"
        )
        cursor.execute("INSERT INTO public.authtoken_token VALUES (%s, now(), %s)", [key, user_id])


def test_drf_tokens_are_migrated_hashed_and_keep_working_until_they_expire(tenant_a, tenant_b, make_member):
    user = make_member(tenant_a, "legacy-user", [Role.AUTHOR])
    make_member(tenant_b, "legacy-user", [Role.AUDITOR])
    connection.set_schema_to_public()
    create_legacy_table(LEGACY_KEY, user.pk)
    made = migration.migrate_legacy_tokens(apps, SimpleNamespace(connection=connection))
    assert made == 2
    assert not migration.legacy_table_exists(connection)
    assert places_holding(LEGACY_KEY, ("public",)) == []
    migrated = ApiToken.objects.filter(user=user)
    assert {token.tenant.schema_name for token in migrated} == {"alpha", "beta"}
    assert {token.secret_hash for token in migrated} == {hashlib.sha256(LEGACY_KEY.encode()).hexdigest()}
    expiry = migrated.first().expires_at - timezone.now()
    assert timedelta(days=89) < expiry <= timedelta(days=90)
    for tenant in (tenant_a, tenant_b):
        client = APIClient(HTTP_HOST=host_of(tenant), HTTP_AUTHORIZATION=f"Token {LEGACY_KEY}")
        assert client.get("/api/v1/me/").json()["user"] == "legacy-user"
    migrated.update(expires_at=timezone.now() - timedelta(seconds=1))
    client = APIClient(HTTP_HOST=host_of(tenant_a), HTTP_AUTHORIZATION=f"Token {LEGACY_KEY}")
    assert client.get("/api/v1/me/").status_code == 401


def test_without_the_old_table_the_migration_does_nothing(db):
    connection.set_schema_to_public()
    assert migration.migrate_legacy_tokens(apps, SimpleNamespace(connection=connection)) == 0
