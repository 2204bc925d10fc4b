"""The API base: tokens, identity, the error shape everywhere, the OpenAPI schema."""

from rest_framework.test import APIClient

from core.api import ROUTE_NOT_FOUND_MESSAGE
from tenancy.apis import INVALID_CREDENTIALS
from tenancy.roles import Role
from tests.conftest import host_of, session_client, token_client


def test_an_anonymous_request_gets_401_in_the_error_shape(tenant_a):
    response = APIClient(HTTP_HOST=host_of(tenant_a)).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
            "details": [],
        }
    }


def test_a_member_exchanges_username_and_password_for_a_token(tenant_a, make_member):
    make_member(tenant_a, "tok", [Role.AUTHOR])
    client = APIClient(HTTP_HOST=host_of(tenant_a))
    response = client.post(
        "/api/v1/auth/token/", {"username": "tok", "password": "pw-for-tests-1"}, format="json"
    )
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/v1/me/").json()["user"] == "tok"


def test_a_wrong_password_gets_401_invalid_credentials(tenant_a, make_member):
    make_member(tenant_a, "tok2", [Role.AUTHOR])
    response = APIClient(HTTP_HOST=host_of(tenant_a)).post(
        "/api/v1/auth/token/", {"username": "tok2", "password": "nope"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "invalid_credentials",
        "message": INVALID_CREDENTIALS,
        "details": [],
    }


def test_a_token_request_without_fields_lists_each_missing_field(tenant_a):
    response = APIClient(HTTP_HOST=host_of(tenant_a)).post("/api/v1/auth/token/", {}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_failed"
    assert {d["field"] for d in body["details"]} == {"username", "password"}


def test_me_returns_user_tenant_and_roles(tenant_a, make_member):
    user = make_member(tenant_a, "me-user", [Role.REVIEWER, Role.AUDITOR])
    body = token_client(tenant_a, user).get("/api/v1/me/").json()
    assert body["user"] == "me-user"
    assert body["tenant"] == "alpha"
    assert body["roles"] == ["auditor", "reviewer"]
    assert "view_audit" in body["capabilities"]


def test_an_unknown_api_route_answers_json_404(tenant_a, make_member):
    user = make_member(tenant_a, "lost", [Role.AUTHOR])
    response = token_client(tenant_a, user).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == {
        "code": "route_not_found",
        "message": ROUTE_NOT_FOUND_MESSAGE,
        "details": [],
    }


def test_malformed_json_gets_a_parse_error_not_a_stack_trace(tenant_a, make_member):
    user = make_member(tenant_a, "badjson", [Role.ADMIN])
    response = token_client(tenant_a, user).generic(
        "PUT", "/api/v1/memberships/badjson/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_member_without_the_capability_gets_403_missing_role(tenant_a, make_member):
    user = make_member(tenant_a, "plain-author", [Role.AUTHOR])
    response = token_client(tenant_a, user).put(
        "/api/v1/memberships/plain-author/", {"roles": ["admin"]}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_role"


def test_an_admin_sets_roles_and_the_change_is_audited(tenant_a, make_member, in_tenant):
    admin = make_member(tenant_a, "the-admin", [Role.ADMIN])
    make_member(tenant_a, "promoted-user", [Role.AUTHOR])
    response = token_client(tenant_a, admin).put(
        "/api/v1/memberships/promoted-user/", {"roles": ["author", "reviewer"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["roles"] == ["author", "reviewer"]
    from audit.models import Record

    in_tenant(tenant_a)
    entry = Record.objects.filter(action="membership.changed", target_id="promoted-user").latest("id")
    assert entry.actor_name == "the-admin"
    assert entry.data == {
        "user": "promoted-user",
        "roles_before": ["author"],
        "roles_after": ["author", "reviewer"],
    }


def test_an_unknown_role_is_refused_with_the_valid_roles_listed(tenant_a, make_member):
    admin = make_member(tenant_a, "admin-2", [Role.ADMIN])
    response = token_client(tenant_a, admin).put(
        "/api/v1/memberships/admin-2/", {"roles": ["wizard"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_role"
    assert "author" in response.json()["error"]["message"]


def test_the_openapi_schema_and_docs_are_served_to_members(tenant_a, make_member):
    client = token_client(tenant_a, make_member(tenant_a, "reader", [Role.AUDITOR]))
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/me/" in schema.json()["paths"]
    assert (
        session_client(tenant_a, make_member(tenant_a, "reader", [Role.AUDITOR]))
        .get("/api/docs/")
        .status_code
        == 200
    )


def test_the_probes_answer_without_login(tenant_a):
    client = APIClient(HTTP_HOST=host_of(tenant_a))
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_the_public_host_serves_login_and_the_admin_only(db):
    client = APIClient(HTTP_HOST="localhost")
    assert client.get("/login/").status_code == 200
    assert client.get("/admin/").status_code == 302
    assert client.get("/api/v1/me/").status_code == 404


def test_readiness_answers_503_naming_the_broker_when_redis_is_unreachable(tenant_a, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = APIClient(HTTP_HOST=host_of(tenant_a)).get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "problems": ["broker: ConnectionError"]}


def test_an_api_path_on_an_unknown_host_answers_json_404(db):
    response = APIClient(HTTP_HOST="nobody.localhost").get("/api/v1/me/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] in {"not_found", "route_not_found"}
