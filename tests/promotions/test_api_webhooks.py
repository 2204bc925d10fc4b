"""The webhooks API: admins only, the secret shown once and never again, deletion keeps deliveries."""

import json

import pytest

from audit.models import Record
from promotions.models import Webhook
from tests.conftest import token_client
from tests.promotions.promotion_factories import error_code


@pytest.fixture
def admin(team, tenant_a):
    return token_client(tenant_a, team.admin)


def test_members_without_manage_webhooks_cannot_list_or_create(team, tenant_a):
    author = token_client(tenant_a, team.author)
    assert (author.get("/api/v1/webhooks/").status_code, error_code(author.get("/api/v1/webhooks/"))) == (
        403,
        "missing_role",
    )
    created = author.post("/api/v1/webhooks/", {"url": "https://hooks.example/x"}, format="json")
    assert (created.status_code, error_code(created)) == (403, "missing_role")
    assert not Webhook.objects.exists()


def test_the_secret_is_shown_at_creation_only(admin):
    created = admin.post(
        "/api/v1/webhooks/",
        {
            "url": "https://hooks.example/contractor",
            "events": ["promotion.promoted", "deployment.rolled_back"],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert body["events"] == ["deployment.rolled_back", "promotion.promoted"]
    listed = admin.get("/api/v1/webhooks/")
    detail = admin.get(f"/api/v1/webhooks/{body['id']}/")
    for response in (listed, detail):
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert "secret" not in json.dumps(response.json())
    assert all(secret not in json.dumps(entry.data) for entry in Record.objects.all())
    webhook = Webhook.objects.get(pk=body["id"])
    assert webhook.secret == secret  # kept to sign deliveries
    assert not hasattr(webhook.history.first(), "secret")


def test_unknown_events_and_bad_urls_are_refused(admin):
    unknown = admin.post(
        "/api/v1/webhooks/", {"url": "https://h.example/", "events": ["bundle.eaten"]}, format="json"
    )
    assert (unknown.status_code, error_code(unknown)) == (400, "validation_failed")
    bad = admin.post("/api/v1/webhooks/", {"url": "ftp://h.example/"}, format="json")
    assert bad.status_code == 400


def test_a_deleted_webhook_is_gone_from_the_api_but_kept_with_its_deliveries(admin):
    created = admin.post("/api/v1/webhooks/", {"url": "https://hooks.example/x"}, format="json").json()
    deleted = admin.delete(f"/api/v1/webhooks/{created['id']}/")
    assert deleted.status_code == 204
    again = admin.get(f"/api/v1/webhooks/{created['id']}/")
    assert (again.status_code, error_code(again)) == (404, "webhook_not_found")
    assert admin.get("/api/v1/webhooks/").json()["results"] == []
    kept = Webhook.objects.get(pk=created["id"])
    assert (kept.active, kept.deleted_at is not None) == (False, True)
    assert [
        entry.action for entry in Record.objects.filter(target_type="promotions.webhook").order_by("id")
    ] == [
        "webhook.created",
        "webhook.deleted",
    ]
    assert admin.get(f"/api/v1/webhooks/{created['id']}/deliveries/").status_code == 404
