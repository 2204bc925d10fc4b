"""Tenant isolation: a user of tenant A gets nothing from any route of tenant B, by session or token."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tenancy.exceptions import NOT_A_MEMBER
from tenancy.roles import Role
from tests.conftest import host_of, session_client, token_client

# Probes and sign-in are open by design (the token endpoint refuses non-members itself: tested below; single
# sign-on refuses them itself: tests/browser/test_sso.py); the API catch-all only says "no such route".
OPEN_ROUTES = {"healthz", "readyz", "login", "logout", "api-token", "api-route-not-found", "sso-login"}
OPEN_ROUTES |= {"sso-callback"}
SAMPLE_ARGUMENTS = {
    "int": "1",
    "str": "sample",
    "slug": "sample",
    "uuid": "00000000-0000-0000-0000-000000000001",
    "path": "a/b",
}


def tenant_routes(resolver=None, prefix: str = ""):
    """Yield (name, concrete path) for every URL pattern of the tenant URLconf."""
    resolver = resolver or get_resolver("contractor_site.urls_tenant")
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from tenant_routes(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield pattern.name or route, "/" + concrete_path(route)


def concrete_path(route: str) -> str:
    """Return `route` with each converter replaced by a sample value and regex anchors removed."""
    path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE_ARGUMENTS.get(m.group(1) or "str", "sample"), route)
    path = path.replace("^", "").replace("$", "").replace(".*", "anything")
    return re.sub(r"\(\?P<\w+>[^)]*\)", "sample", path)


ROUTES = sorted(set(tenant_routes()))
GUARDED_ROUTES = [(name, path) for name, path in ROUTES if name not in OPEN_ROUTES]


def test_the_route_list_covers_the_api_and_the_console():
    paths = {path for _, path in GUARDED_ROUTES}
    assert "/api/v1/me/" in paths
    assert "/" in paths
    assert len(GUARDED_ROUTES) >= 6


@pytest.fixture
def outsider(tenant_a, make_member):
    """A user who is an admin of tenant A and nothing in tenant B."""
    return make_member(tenant_a, "outsider", [Role.ADMIN, Role.AUTHOR, Role.OPERATOR, Role.REVIEWER])


@pytest.mark.parametrize(("name", "path"), GUARDED_ROUTES, ids=[name for name, _ in GUARDED_ROUTES])
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_a_member_of_tenant_a_is_refused_on_every_tenant_b_route_by_token(
    name, path, method, tenant_b, outsider
):
    client = token_client(tenant_b, outsider)
    response = getattr(client, method)(path, {}, format="json")
    assert response.status_code == 403, (path, method, response.status_code)
    if response["Content-Type"] == "application/json":
        assert response.json()["error"]["code"] == "not_a_member"


@pytest.mark.parametrize(("name", "path"), GUARDED_ROUTES, ids=[name for name, _ in GUARDED_ROUTES])
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_member_of_tenant_a_is_refused_on_every_tenant_b_route_by_session(
    name, path, method, tenant_b, outsider
):
    client = session_client(tenant_b, outsider)
    response = getattr(client, method)(path, {}, format="json")
    assert response.status_code == 403, (path, method, response.status_code)
    if response["Content-Type"] == "application/json":
        assert response.json()["error"]["message"] == NOT_A_MEMBER
    else:
        assert NOT_A_MEMBER in response.content.decode()


def test_a_session_from_one_tenant_host_is_not_valid_on_another(tenant_a, tenant_b, make_member):
    both = make_member(tenant_a, "both-tenants", [Role.AUDITOR])
    make_member(tenant_b, "both-tenants", [Role.AUDITOR])
    client = session_client(tenant_a, both)
    assert client.get("/api/v1/me/").status_code == 200
    response = client.get("/api/v1/me/", HTTP_HOST=host_of(tenant_b))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert client.get("/", HTTP_HOST=host_of(tenant_b)).status_code == 302


def test_a_token_of_tenant_a_member_cannot_be_obtained_on_tenant_b(tenant_a, tenant_b, make_member):
    make_member(tenant_a, "token-seeker", [Role.AUTHOR])
    client = token_client(tenant_b, make_member(tenant_a, "token-seeker", [Role.AUTHOR]))
    client.credentials()
    response = client.post("/api/v1/auth/token/", {"username": "token-seeker", "password": "pw-for-tests-1"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"


def test_a_deactivated_membership_loses_access_at_once(tenant_a, make_member):
    user = make_member(tenant_a, "leaver", [Role.AUTHOR])
    client = token_client(tenant_a, user)
    assert client.get("/api/v1/me/").status_code == 200
    make_member(tenant_a, "leaver", [])
    assert token_client(tenant_a, user).get("/api/v1/me/").status_code == 403
