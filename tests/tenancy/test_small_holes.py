"""Small holes closed on the way: usernames do not leak through PUT /memberships/{user}; runtime key and
model endpoint names refuse bidirectional controls, invisible and mixed-script characters; tenant hosts
match in any case."""

import pytest
from rest_framework.test import APIClient

from core.text import unsafe_name
from runtime.exceptions import UNSAFE_NAME
from tenancy.exceptions import MEMBER_NOT_FOUND
from tenancy.models import Membership
from tenancy.roles import Role
from tests.conftest import host_of, token_client

BIDI_NAME = "invoice\u202egpj.exe"
ZERO_WIDTH_NAME = "prod\u200bkey"
MIXED_SCRIPT_NAME = "\u0440\u0430ypal-key"  # two Cyrillic letters, then Latin ones


def test_an_unknown_user_and_a_non_member_get_the_same_answer(tenant_a, tenant_b, make_member):
    admin = make_member(tenant_a, "leak-admin", [Role.ADMIN])
    make_member(tenant_b, "elsewhere-only", [Role.AUTHOR])
    client = token_client(tenant_a, admin)
    unknown = client.put("/api/v1/memberships/nobody-at-all/", {"roles": []}, format="json")
    existing = client.put("/api/v1/memberships/elsewhere-only/", {"roles": []}, format="json")
    assert unknown.status_code == existing.status_code == 404
    assert unknown.json()["error"]["code"] == existing.json()["error"]["code"] == "member_not_found"
    assert unknown.json()["error"]["message"] == MEMBER_NOT_FOUND.format(username="nobody-at-all")
    assert existing.json()["error"]["message"] == MEMBER_NOT_FOUND.format(username="elsewhere-only")
    assert not Membership.objects.filter(tenant=tenant_a, user__username="elsewhere-only").exists()


def test_a_deactivated_user_is_answered_like_an_unknown_one(tenant_a, make_member):
    admin = make_member(tenant_a, "leak-admin-2", [Role.ADMIN])
    gone = make_member(tenant_a, "gone-user", [Role.AUTHOR])
    gone.is_active = False
    gone.save()
    response = token_client(tenant_a, admin).put(
        "/api/v1/memberships/gone-user/", {"roles": ["author"]}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == MEMBER_NOT_FOUND.format(username="gone-user")


def test_an_admin_still_adds_an_existing_user_and_removes_a_member(tenant_a, tenant_b, make_member):
    admin = make_member(tenant_a, "leak-admin-3", [Role.ADMIN])
    make_member(tenant_b, "joining", [Role.AUTHOR])
    client = token_client(tenant_a, admin)
    assert client.put("/api/v1/memberships/joining/", {"roles": ["author"]}, format="json").status_code == 200
    removed = client.put("/api/v1/memberships/joining/", {"roles": []}, format="json")
    assert removed.status_code == 200
    assert removed.json()["is_active"] is False


@pytest.mark.parametrize("name", [BIDI_NAME, ZERO_WIDTH_NAME, MIXED_SCRIPT_NAME])
def test_a_runtime_key_name_refuses_confusable_and_invisible_characters(
    in_tenant_a, tenant_a, make_member, name
):
    client = token_client(tenant_a, make_member(tenant_a, "names-operator", [Role.OPERATOR]))
    response = client.post("/api/v1/runtime-keys/", {"name": name}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid_key_name"
    assert body["details"] == [
        {"field": "name", "code": "unsafe_name", "message": UNSAFE_NAME.format(reason=unsafe_name(name))}
    ]


def test_plain_names_in_any_one_script_are_accepted(in_tenant_a, tenant_a, make_member):
    client = token_client(tenant_a, make_member(tenant_a, "names-operator-2", [Role.OPERATOR]))
    for name in ("ci pipeline", "Zürich nightly", "\u043a\u043b\u044e\u0447 2"):  # Latin, Latin, Cyrillic
        assert client.post("/api/v1/runtime-keys/", {"name": name}, format="json").status_code == 201


@pytest.mark.parametrize("name", [BIDI_NAME.lower(), "openai\u200d", "\u043epenai"])
def test_a_model_endpoint_name_refuses_confusable_and_invisible_characters(
    in_tenant_a, tenant_a, make_member, name
):
    client = token_client(tenant_a, make_member(tenant_a, "names-operator-3", [Role.OPERATOR]))
    endpoint = {
        "name": name,
        "base_url": "https://api.example.com/v1",
        "allowed_models": ["m"],
        "api_key_env": "OPENAI_API_KEY",
    }
    response = client.post("/api/v1/model-endpoints/", endpoint, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert [detail["field"] for detail in details] == ["name"]
    assert details[0]["message"] == UNSAFE_NAME.format(reason=unsafe_name(name))


def test_a_tenant_host_matches_in_any_case(tenant_a, make_member):
    user = make_member(tenant_a, "case-user", [Role.AUDITOR])
    client = token_client(tenant_a, user)
    response = client.get("/api/v1/me/", HTTP_HOST=host_of(tenant_a).upper())
    assert response.status_code == 200
    assert response.json()["tenant"] == "alpha"
    assert APIClient(HTTP_HOST="ALPHA.Localhost.").get("/login/").status_code == 200
