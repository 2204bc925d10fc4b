"""Console sign-in: only members sign in on a tenant host, only platform staff on the public host; the session
cookie is bound to the host it was set on, and the form needs its CSRF token."""

from django.test import Client

from tenancy.exceptions import NOT_A_MEMBER
from tenancy.middleware import SESSION_TENANT_KEY
from tenancy.roles import Role
from tests.conftest import host_of

PASSWORD = "pw-for-tests-1"


def sign_in(host: str, username: str, *, enforce_csrf: bool = False) -> tuple[Client, object]:
    client = Client(HTTP_HOST=host, enforce_csrf_checks=enforce_csrf)
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    return client, response


def test_a_member_of_another_tenant_cannot_sign_in_on_this_tenants_host(tenant_a, tenant_b, make_member):
    make_member(tenant_b, "login-stranger", [Role.ADMIN, Role.AUDITOR])
    client, response = sign_in(host_of(tenant_a), "login-stranger")
    assert response.status_code == 200
    assert NOT_A_MEMBER in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302  # still anonymous: sent to sign in


def test_a_member_who_is_not_staff_cannot_sign_in_on_the_public_host(tenant_a, make_member):
    make_member(tenant_a, "login-member", [Role.ADMIN])
    client, response = sign_in("localhost", "login-member")
    assert response.status_code == 200
    assert "Only platform administrators sign in here." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_members_session_cookie_is_host_only_http_only_and_bound_to_the_tenant(tenant_a, make_member):
    make_member(tenant_a, "login-author", [Role.AUTHOR])
    client = Client(HTTP_HOST=host_of(tenant_a))
    form = client.get("/login/")
    response = client.post("/login/", {"username": "login-author", "password": PASSWORD})
    assert response.status_code == 302
    cookie = response.cookies["sessionid"]
    assert cookie["domain"] == ""  # no Domain attribute: never sent to another tenant's host
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert client.session[SESSION_TENANT_KEY] == tenant_a.schema_name
    csrf_cookie = form.cookies["csrftoken"]  # the sign-in form sets it
    assert csrf_cookie.value
    assert csrf_cookie["domain"] == ""


def test_the_sign_in_form_needs_its_csrf_token(tenant_a, make_member):
    make_member(tenant_a, "login-csrf", [Role.AUTHOR])
    client, response = sign_in(host_of(tenant_a), "login-csrf", enforce_csrf=True)
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
