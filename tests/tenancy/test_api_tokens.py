"""Personal API tokens: named, shown once, scoped, expiring, revocable, bound to one tenant."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import Record
from tenancy.exceptions import (
    INVALID_TOKEN,
    MISSING_SCOPE,
    READ_ONLY_TOKEN,
    TOKEN_EXPIRED,
    TOKEN_REVOKED,
)
from tenancy.models import ApiToken
from tenancy.roles import Role
from tenancy.tokens import RevokeReason
from tests.conftest import host_of, token_client

PASSWORD = "pw-for-tests-1"
TOKEN_SHAPE = re.compile(r"\Act_[0-9a-f]{8}_[A-Za-z0-9_-]{43}\Z")


def obtain(tenant, username: str, **extra) -> tuple[APIClient, str]:
    """Return an API client on `tenant`'s host carrying a token obtained by password, and the token."""
    client = APIClient(HTTP_HOST=host_of(tenant))
    response = client.post(
        "/api/v1/auth/token/", {"username": username, "password": PASSWORD, **extra}, format="json"
    )
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client, token


def stored(token: str) -> ApiToken:
    """Return the stored token of the full `token` string."""
    return ApiToken.objects.get(prefix=token.split("_")[1])


def test_a_token_of_one_tenant_is_refused_on_another_tenants_host(tenant_a, tenant_b, make_member):
    make_member(tenant_a, "two-hosts", [Role.AUTHOR])
    make_member(tenant_b, "two-hosts", [Role.AUTHOR])
    _, token = obtain(tenant_a, "two-hosts")
    response = APIClient(HTTP_HOST=host_of(tenant_b)).get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "authentication_failed",
        "message": INVALID_TOKEN,
        "details": [],
    }


def test_a_token_without_the_approve_scope_cannot_approve_whatever_the_roles(tenant_a, make_member):
    make_member(tenant_a, "scoped-reviewer", [Role.REVIEWER])
    client, _ = obtain(tenant_a, "scoped-reviewer", scopes=["read"])
    response = client.post("/api/v1/promotions/1/approve/", {"comment": "ok"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "missing_scope",
        "message": MISSING_SCOPE.format(capability="approve_promotion", scopes="read"),
        "details": [],
    }


def test_a_read_only_token_changes_nothing_even_where_the_view_declares_view(tenant_a, make_member):
    make_member(tenant_a, "read-only-author", [Role.AUTHOR])
    client, _ = obtain(tenant_a, "read-only-author", scopes=["read"])
    response = client.post("/api/v1/bundles/anything/versions/", {"files": {}}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == READ_ONLY_TOKEN.format(scopes="read")
    assert client.get("/api/v1/bundles/").status_code == 200


def test_a_scope_never_adds_what_the_roles_lack(tenant_a, make_member):
    make_member(tenant_a, "scope-no-role", [Role.AUTHOR])
    client, _ = obtain(tenant_a, "scope-no-role", scopes=["admin"])
    response = client.put("/api/v1/memberships/scope-no-role/", {"roles": ["admin"]}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_role"


def test_the_token_endpoint_gives_a_new_named_token_every_time(tenant_a, make_member):
    user = make_member(tenant_a, "many-tokens", [Role.AUTHOR])
    first_client, first = obtain(tenant_a, "many-tokens", name="CI deploy job")
    _, second = obtain(tenant_a, "many-tokens")
    assert first != second
    assert TOKEN_SHAPE.match(first) and TOKEN_SHAPE.match(second)
    assert stored(first).name == "CI deploy job"
    assert stored(first).user == user
    assert first_client.get("/api/v1/me/").json()["user"] == "many-tokens"


def test_a_new_token_has_the_scopes_of_the_members_roles_and_expires_in_90_days(tenant_a, make_member):
    make_member(tenant_a, "default-scopes", [Role.AUTHOR])
    _, token = obtain(tenant_a, "default-scopes")
    saved = stored(token)
    assert saved.scopes == ["read", "push", "promote"]
    lifetime = saved.expires_at - saved.created_at
    assert timedelta(days=90) - timedelta(minutes=1) < lifetime <= timedelta(days=90)


def test_a_bearer_header_works_like_a_token_header(tenant_a, make_member):
    make_member(tenant_a, "bearer-user", [Role.AUDITOR])
    _, token = obtain(tenant_a, "bearer-user")
    response = APIClient(HTTP_HOST=host_of(tenant_a)).get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["user"] == "bearer-user"


def test_a_lifetime_beyond_the_maximum_is_refused_naming_the_field(tenant_a, make_member, settings):
    settings.CONTRACTOR = {**settings.CONTRACTOR, "TOKEN_MAX_DAYS": 30}
    make_member(tenant_a, "long-lived", [Role.AUTHOR])
    response = APIClient(HTTP_HOST=host_of(tenant_a)).post(
        "/api/v1/auth/token/",
        {"username": "long-lived", "password": PASSWORD, "expires_in_days": 31},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid_token_request"
    assert [(d["field"], d["code"]) for d in body["details"]] == [("expires_in_days", "too_long")]
    assert not ApiToken.objects.filter(user__username="long-lived").exists()


def test_an_expired_token_is_refused_with_its_expiry(tenant_a, make_member):
    make_member(tenant_a, "expiring", [Role.AUTHOR])
    client, token = obtain(tenant_a, "expiring")
    saved = stored(token)
    saved.expires_at = timezone.now() - timedelta(seconds=1)
    saved.save(update_fields=["expires_at"])
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == TOKEN_EXPIRED.format(at=saved.expires_at.isoformat())


def test_use_is_noted_as_last_used(tenant_a, make_member):
    make_member(tenant_a, "last-used", [Role.AUTHOR])
    client, token = obtain(tenant_a, "last-used")
    assert stored(token).last_used_at is None
    before = timezone.now()
    assert client.get("/api/v1/me/").status_code == 200
    assert stored(token).last_used_at >= before


def test_another_member_cannot_see_or_revoke_my_token(tenant_a, make_member):
    make_member(tenant_a, "token-owner", [Role.AUTHOR])
    make_member(tenant_a, "token-neighbour", [Role.AUTHOR, Role.OPERATOR])
    _, token = obtain(tenant_a, "token-owner")
    neighbour, _ = obtain(tenant_a, "token-neighbour")
    token_id = stored(token).pk
    assert neighbour.delete(f"/api/v1/tokens/{token_id}/").status_code == 404
    assert neighbour.get(f"/api/v1/tokens/{token_id}/").status_code == 404
    assert token_id not in [row["id"] for row in neighbour.get("/api/v1/tokens/").json()]
    assert stored(token).revoked_at is None


def test_a_member_lists_and_revokes_their_token_and_it_stops_working_audited(
    tenant_a, make_member, in_tenant
):
    make_member(tenant_a, "revoker", [Role.AUTHOR])
    client, token = obtain(tenant_a, "revoker", name="laptop")
    other, _ = obtain(tenant_a, "revoker", name="ci")
    listed = other.get("/api/v1/tokens/").json()
    assert {row["name"] for row in listed} == {"laptop", "ci"}
    assert all(token not in str(row) for row in listed)
    token_id = stored(token).pk
    response = other.delete(f"/api/v1/tokens/{token_id}/")
    assert response.status_code == 200
    assert response.json()["revoked_reason"] == RevokeReason.REVOKED
    refused = client.get("/api/v1/me/")
    assert refused.status_code == 401
    revoked_at = stored(token).revoked_at
    assert refused.json()["error"]["message"] == TOKEN_REVOKED.format(at=revoked_at.isoformat())
    assert other.delete(f"/api/v1/tokens/{token_id}/").status_code == 409
    in_tenant(tenant_a)
    entry = Record.objects.filter(action="token.revoked", target_id=str(token_id)).get()
    assert entry.actor_name == "revoker"
    assert entry.data["name"] == "laptop"


def test_an_admin_revokes_a_members_token(tenant_a, make_member):
    make_member(tenant_a, "plain-member", [Role.AUTHOR])
    admin = make_member(tenant_a, "token-admin", [Role.ADMIN])
    member_client, token = obtain(tenant_a, "plain-member")
    admin_client = token_client(tenant_a, admin)
    assert stored(token).pk in [row["id"] for row in admin_client.get("/api/v1/tokens/?all=true").json()]
    assert admin_client.delete(f"/api/v1/tokens/{stored(token).pk}/").status_code == 200
    assert member_client.get("/api/v1/me/").status_code == 401


def test_listing_every_members_tokens_needs_the_admin_role(tenant_a, make_member):
    client, _ = obtain(tenant_a, make_member(tenant_a, "not-admin", [Role.AUTHOR]).username)
    response = client.get("/api/v1/tokens/?all=true")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_role"


def test_a_token_creates_tokens_only_within_its_own_scopes(tenant_a, make_member):
    make_member(tenant_a, "minting", [Role.AUTHOR])
    client, _ = obtain(tenant_a, "minting", scopes=["read", "push"])
    refused = client.post("/api/v1/tokens/", {"name": "wider", "scopes": ["promote"]}, format="json")
    assert refused.status_code == 400
    assert [d["code"] for d in refused.json()["error"]["details"]] == ["scope_not_held"]
    created = client.post("/api/v1/tokens/", {"name": "narrower", "scopes": ["read"]}, format="json")
    assert created.status_code == 201
    assert created.json()["scopes"] == ["read"]
    assert TOKEN_SHAPE.match(created.json()["token"])


@pytest.mark.parametrize("name", ["", "x" * 101, "deploy\u202egnp.exe", "\u0440\u0430ypal"])
def test_a_token_name_must_be_plain(tenant_a, make_member, name):
    client, _ = obtain(tenant_a, make_member(tenant_a, "namer", [Role.AUTHOR]).username)
    response = client.post("/api/v1/tokens/", {"name": name}, format="json")
    assert response.status_code == 400
    assert [d["field"] for d in response.json()["error"]["details"]] == ["name"]


def test_ending_the_membership_revokes_the_members_tokens_of_that_tenant_only(
    tenant_a, tenant_b, make_member
):
    user = make_member(tenant_a, "leaving", [Role.AUTHOR])
    make_member(tenant_b, "leaving", [Role.AUTHOR])
    _, in_a = obtain(tenant_a, "leaving")
    b_client, in_b = obtain(tenant_b, "leaving")
    make_member(tenant_a, "leaving", [])
    assert stored(in_a).revoked_at is not None
    assert stored(in_a).revoked_reason == RevokeReason.MEMBERSHIP_ENDED
    assert stored(in_b).revoked_at is None
    assert b_client.get("/api/v1/me/").status_code == 200
    assert user.api_tokens.filter(revoked_at__isnull=True).count() == 1


def test_deactivating_the_user_revokes_every_token(tenant_a, tenant_b, make_member):
    user = make_member(tenant_a, "deactivated", [Role.AUTHOR])
    make_member(tenant_b, "deactivated", [Role.AUTHOR])
    client, _ = obtain(tenant_a, "deactivated")
    obtain(tenant_b, "deactivated")
    user.is_active = False
    user.save()
    assert set(user.api_tokens.values_list("revoked_reason", flat=True)) == {RevokeReason.USER_DEACTIVATED}
    assert client.get("/api/v1/me/").status_code == 401


def test_creating_a_token_is_audited_without_its_secret(tenant_a, make_member, in_tenant):
    make_member(tenant_a, "audited-token", [Role.AUTHOR])
    _, token = obtain(tenant_a, "audited-token", name="release bot")
    in_tenant(tenant_a)
    entry = Record.objects.filter(action="token.created", target_id=str(stored(token).pk)).get()
    assert entry.actor_name == "audited-token"
    assert entry.data["name"] == "release bot"
    assert entry.data["prefix"] == token.split("_")[1]
    assert token.split("_", 2)[2] not in str(entry.data)
