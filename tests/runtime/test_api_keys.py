"""Control-plane API of runtime keys: operators create (secret shown once) and revoke, audited."""

import hashlib

import pytest

from audit.models import Record
from promotions.exceptions import ENVIRONMENT_NOT_FOUND
from runtime.exceptions import KEY_ALREADY_REVOKED, RUNTIME_KEY_NOT_FOUND, UNKNOWN_SCOPE_BUNDLES
from runtime.keys import parse_key
from runtime.models import RuntimeKey
from tenancy.exceptions import MISSING_CAPABILITY
from tests.bundles.bundle_factories import push
from tests.conftest import token_client

URL = "/api/v1/runtime-keys/"


@pytest.fixture
def operator(in_tenant_a, tenant_a, make_member):
    return make_member(tenant_a, "rk-operator", ["operator"])


@pytest.fixture
def api(tenant_a, operator):
    return token_client(tenant_a, operator)


@pytest.mark.parametrize("roles", [["author"], ["reviewer"], ["auditor"], ["admin"]])
def test_only_operators_create_runtime_keys(in_tenant_a, tenant_a, make_member, roles):
    user = make_member(tenant_a, f"rk-{roles[0]}", roles)
    response = token_client(tenant_a, user).post(URL, {"name": "ci"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_role"
    assert response.json()["error"]["message"] == MISSING_CAPABILITY.format(capability="manage_runtime_keys")
    assert not RuntimeKey.objects.exists()


def test_a_non_member_cannot_list_keys(in_tenant_a, tenant_b, tenant_a, make_member):
    stranger = make_member(tenant_b, "rk-stranger", ["operator"])
    response = token_client(tenant_a, stranger).get(URL)
    assert response.status_code == 403


def test_an_operator_creates_a_key_shown_once_and_stored_hashed(api):
    response = api.post(URL, {"name": "ci pipeline"}, format="json")
    assert response.status_code == 201
    body = response.json()
    prefix, secret = parse_key(body["key"])
    assert (body["name"], body["environment"], body["bundles"], body["prefix"]) == (
        "ci pipeline",
        "current",
        [],
        prefix,
    )
    stored = RuntimeKey.objects.get(pk=body["id"])
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(RuntimeKey.objects.filter(pk=stored.pk).values().get())
    listed = api.get(URL).json()["results"]
    assert [key["prefix"] for key in listed] == [prefix]
    assert "key" not in listed[0]
    assert secret not in api.get(f"{URL}{stored.pk}/").content.decode()
    created = Record.objects.get(action="runtime_key.created")
    assert created.data == {"name": "ci pipeline", "prefix": prefix, "environment": "current", "bundles": []}
    assert secret not in str(created.data)


def test_a_key_is_scoped_to_an_environment_and_bundles(api, tenant_a, make_member):
    push(make_member(tenant_a, "rk-author", ["author"]))
    scope = {"name": "staging ci", "environment": "staging", "bundles": ["claims-triage"]}
    response = api.post(URL, scope, format="json")
    assert response.status_code == 201
    assert (response.json()["environment"], response.json()["bundles"]) == ("staging", ["claims-triage"])


def test_a_key_for_an_unknown_environment_or_bundle_is_refused(api):
    unknown_environment = api.post(URL, {"name": "x", "environment": "prod"}, format="json")
    assert unknown_environment.status_code == 404
    assert unknown_environment.json()["error"]["message"] == ENVIRONMENT_NOT_FOUND.format(name="prod")
    unknown_bundle = api.post(URL, {"name": "x", "bundles": ["nope"]}, format="json")
    assert unknown_bundle.status_code == 400
    message = UNKNOWN_SCOPE_BUNDLES.format(names="nope")
    assert unknown_bundle.json()["error"] == {
        "code": "unknown_scope_bundles",
        "message": message,
        "details": [{"field": "bundles", "code": "unknown_scope_bundles", "message": message}],
    }
    assert not RuntimeKey.objects.exists()


def test_an_operator_revokes_a_key_once(api):
    key_id = api.post(URL, {"name": "ci"}, format="json").json()["id"]
    response = api.delete(f"{URL}{key_id}/")
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    assert response.json()["revoked_by"] == "rk-operator"
    assert Record.objects.filter(action="runtime_key.revoked", target_id=str(key_id)).count() == 1
    again = api.delete(f"{URL}{key_id}/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "key_already_revoked"
    key = RuntimeKey.objects.get(pk=key_id)
    assert again.json()["error"]["message"] == KEY_ALREADY_REVOKED.format(
        name="ci", at=key.revoked_at.isoformat()
    )
    assert key.history.count() == 2


def test_revoking_an_unknown_key_answers_404(api):
    response = api.delete(f"{URL}424242/")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == RUNTIME_KEY_NOT_FOUND.format(id=424242)


def test_an_auditor_reads_keys_but_cannot_revoke_them(api, tenant_a, make_member):
    key_id = api.post(URL, {"name": "ci"}, format="json").json()["id"]
    auditor = token_client(tenant_a, make_member(tenant_a, "rk-auditor", ["auditor"]))
    assert auditor.get(URL).status_code == 200
    assert auditor.delete(f"{URL}{key_id}/").status_code == 403
    assert RuntimeKey.objects.get(pk=key_id).revoked_at is None
