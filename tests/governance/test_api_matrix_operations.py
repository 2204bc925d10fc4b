"""The governed changes operators and admins make to the tenant's outside connections: runtime keys, model
endpoints and webhooks. A loosening waits for an admin who did not request it; secrets shown at request time
work once the change applies and are never readable from the change request."""

import pytest

from governance.models import GovernanceChangeRequest
from promotions.models import Webhook
from runtime.keys import parse_key, secret_matches
from runtime.models import ModelEndpoint, RuntimeKey
from tests.promotions.promotion_factories import error_code

ENDPOINT = {"name": "gov-model", "base_url": "http://127.0.0.1:8002/v1", "allowed_models": ["dev-model"]}


def approve(client, change_id, expected: int = 200):
    response = client.post(f"/api/v1/governance/changes/{change_id}/approve/", {}, format="json")
    assert response.status_code == expected, response.content
    return response


def test_a_new_runtime_key_waits_for_an_admin_and_its_secret_works_once_approved(team, clients):
    created = clients["operator"].post(
        "/api/v1/runtime-keys/", {"name": "ci", "environment": "current"}, format="json"
    )
    assert created.status_code == 202
    body = created.json()
    change = body["governance_change"]
    prefix, secret = parse_key(body["key"])
    assert not RuntimeKey.objects.filter(prefix=prefix).exists()
    assert "secret_hash" not in str(change) and "sealed" not in change
    # the operator who asked is no admin; a reviewer neither
    assert error_code(approve(clients["operator"], change["id"], 403)) == "missing_role"
    assert error_code(approve(clients["reviewer"], change["id"], 403)) == "missing_role"
    approve(clients["admin"], change["id"])
    key = RuntimeKey.objects.get(prefix=prefix)
    assert secret_matches(secret, key.secret_hash)
    assert (key.environment.name, key.created_by) == ("current", team.operator)
    assert GovernanceChangeRequest.objects.get(pk=change["id"]).sealed == {}


def test_revoking_a_runtime_key_applies_at_once(team, clients):
    created = clients["operator"].post("/api/v1/runtime-keys/", {"name": "to-revoke"}, format="json").json()
    approve(clients["admin"], created["governance_change"]["id"])
    key = RuntimeKey.objects.get(name="to-revoke")
    revoked = clients["operator"].delete(f"/api/v1/runtime-keys/{key.pk}/")
    assert revoked.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_a_new_model_endpoint_and_a_new_url_wait_and_a_shorter_model_list_applies(team, clients):
    created = clients["operator"].post("/api/v1/model-endpoints/", ENDPOINT, format="json")
    assert created.status_code == 202
    assert not ModelEndpoint.objects.filter(name="gov-model").exists()
    approve(clients["admin2"], created.json()["governance_change"]["id"])
    assert ModelEndpoint.objects.get(name="gov-model").base_url == ENDPOINT["base_url"]

    moved = clients["operator"].patch(
        "/api/v1/model-endpoints/gov-model/", {"base_url": "http://127.0.0.1:8003/v1"}, format="json"
    )
    assert moved.status_code == 202
    assert ModelEndpoint.objects.get(name="gov-model").base_url == ENDPOINT["base_url"]
    more = clients["operator"].patch(
        "/api/v1/model-endpoints/gov-model/", {"allowed_models": ["dev-model", "big-model"]}, format="json"
    )
    assert more.status_code == 202
    fewer_timeout = clients["operator"].patch(
        "/api/v1/model-endpoints/gov-model/", {"timeout_seconds": 5}, format="json"
    )
    assert fewer_timeout.status_code == 200
    assert ModelEndpoint.objects.get(name="gov-model").timeout_seconds == 5
    # the URL change was proposed against the old timeout: approving it now finds a changed endpoint
    stale = approve(clients["admin"], moved.json()["governance_change"]["id"], 409)
    assert error_code(stale) == "stale_change"
    assert ModelEndpoint.objects.get(name="gov-model").base_url == ENDPOINT["base_url"]


def test_a_new_webhook_and_stopping_one_wait_for_another_admin(team, clients):
    created = clients["admin"].post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": []}, format="json"
    )
    assert created.status_code == 202
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] not in str(body["governance_change"])
    assert not Webhook.objects.exists()
    assert error_code(approve(clients["admin"], body["governance_change"]["id"], 403)) == "self_approval"
    approve(clients["admin2"], body["governance_change"]["id"])
    webhook = Webhook.objects.get()
    assert webhook.secret == body["secret"]
    assert webhook.created_by == team.admin

    stop = clients["admin2"].delete(f"/api/v1/webhooks/{webhook.pk}/")
    assert stop.status_code == 202
    webhook.refresh_from_db()
    assert webhook.active and webhook.deleted_at is None
    approve(clients["admin"], stop.json()["governance_change"]["id"])
    webhook.refresh_from_db()
    assert not webhook.active and webhook.deleted_at is not None


@pytest.mark.parametrize("scopes", [["operate"], ["read"]])
def test_a_token_without_the_admin_and_approve_scopes_cannot_approve(team, tenant_a, clients, scopes):
    from tests.conftest import token_client

    created = clients["operator"].post("/api/v1/runtime-keys/", {"name": "scoped"}, format="json").json()
    weak = token_client(tenant_a, team.admin, scopes=scopes)
    assert approve(weak, created["governance_change"]["id"], 403).status_code == 403
