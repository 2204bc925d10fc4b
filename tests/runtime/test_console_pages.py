"""Console pages of the runtime: decisions browser and page, runtime keys, model endpoints."""

import html
import re

import pytest
from django.db import transaction

from audit.services import record
from runtime.access import KeyGrant
from runtime.models import ModelEndpoint, RuntimeKey
from tests.conftest import session_client
from tests.promotions.promotion_factories import push_version

KEY = KeyGrant(3, "console-key", "x", 1, frozenset(), False)


@pytest.fixture
def operator_page(in_tenant_a, tenant_a, make_member):
    return session_client(tenant_a, make_member(tenant_a, "cp-operator", ["operator"]))


@pytest.fixture
def author_page(in_tenant_a, tenant_a, make_member):
    return session_client(tenant_a, make_member(tenant_a, "cp-author", ["author"]))


PAGES = ["/decisions/", "/runtime-keys/", "/model-endpoints/"]


@pytest.mark.parametrize("path", PAGES)
def test_a_non_member_is_refused_every_runtime_page(in_tenant_a, tenant_a, tenant_b, make_member, path):
    stranger = session_client(tenant_a, make_member(tenant_b, "cp-stranger", ["operator"]))
    assert stranger.get(path).status_code == 403


def test_an_operator_creates_a_key_whose_secret_is_shown_once(operator_page):
    response = operator_page.post("/runtime-keys/", {"name": "ci", "environment": "current"})
    assert response.status_code == 201
    page = response.content.decode()
    secret = re.search(r'data-testid="created-key-secret">(ck_[^<]+)<', page).group(1)
    key = RuntimeKey.objects.get(name="ci")
    assert secret.startswith(f"ck_{key.prefix}_")
    assert 'name="csrfmiddlewaretoken"' in page
    assert secret not in operator_page.get("/runtime-keys/").content.decode()


def test_an_operator_revokes_a_key_with_the_button(operator_page):
    operator_page.post("/runtime-keys/", {"name": "ci", "environment": "current"})
    key = RuntimeKey.objects.get(name="ci")
    listing = operator_page.get("/runtime-keys/").content.decode()
    assert f'action="/runtime-keys/{key.pk}/revoke/"' in listing
    response = operator_page.post(f"/runtime-keys/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "revoked" in operator_page.get("/runtime-keys/").content.decode()


def test_an_author_sees_keys_but_cannot_create_or_revoke(author_page, operator_page):
    operator_page.post("/runtime-keys/", {"name": "ci", "environment": "current"})
    key = RuntimeKey.objects.get(name="ci")
    page = author_page.get("/runtime-keys/").content.decode()
    assert "ck_" + key.prefix in page
    assert "Create key" not in page
    assert author_page.post("/runtime-keys/", {"name": "x", "environment": "current"}).status_code == 403
    assert author_page.post(f"/runtime-keys/{key.pk}/revoke/").status_code == 403
    assert RuntimeKey.objects.filter(revoked_at__isnull=True).count() == 1


def test_an_operator_manages_model_endpoints_in_the_console(operator_page):
    created = operator_page.post(
        "/model-endpoints/",
        {
            "name": "dev",
            "base_url": "http://127.0.0.1:8002/v1",
            "allowed_models": "dev-model, dev-echo",
            "api_key_env": "",
            "timeout_seconds": "5",
        },
    )
    assert created.status_code == 302
    endpoint = ModelEndpoint.objects.get(name="dev")
    assert endpoint.allowed_models == ["dev-echo", "dev-model"]
    refused = operator_page.post(
        "/model-endpoints/dev/",
        {
            "base_url": "http://127.0.0.1:8002/v1",
            "allowed_models": "dev-model",
            "api_key_env": "sk-123",
            "timeout_seconds": "5",
        },
    )
    assert refused.status_code == 400
    assert "NAME of an environment variable" in refused.content.decode()
    saved = operator_page.post(
        "/model-endpoints/dev/",
        {
            "base_url": "http://127.0.0.1:8002/v1",
            "allowed_models": "dev-model",
            "api_key_env": "DEV_MODEL_API_KEY",
            "timeout_seconds": "7",
        },
    )
    assert saved.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.api_key_env, endpoint.timeout_seconds) == ("DEV_MODEL_API_KEY", 7.0)
    assert operator_page.post("/model-endpoints/dev/delete/").status_code == 302
    assert not ModelEndpoint.objects.exists()


def test_an_author_may_not_change_model_endpoints(author_page):
    response = author_page.post(
        "/model-endpoints/",
        {"name": "x", "base_url": "http://x/v1", "allowed_models": "m", "timeout_seconds": "5"},
    )
    assert response.status_code == 403
    assert not ModelEndpoint.objects.exists()


def write_decision(bundle: str, version: str, status: str, fired: str | None = None) -> int:
    policies = [{"name": "amount-limit", "stage": "pre", "effect": "deny", "fired": fired == "amount-limit"}]
    data = {
        "bundle": bundle,
        "version": version,
        "digest": "sha256:" + "0" * 64,
        "pipeline": "triage",
        "environment": "current",
        "status": status,
        "denied_by": fired,
        "policies": policies,
        "redactions": [],
        "hashes": {"input": "a" * 64, "prompt": None, "output": None},
        "decision_hash": "d" * 64,
        "latency_ms": 1.5,
    }
    with transaction.atomic():
        return record(actor=KEY, action="runtime.decision", data=data).pk


def test_the_decisions_browser_filters_by_bundle_version_status_and_policy(author_page):
    allowed = write_decision("claims-triage", "1.2.0", "allowed")
    denied = write_decision("claims-triage", "1.3.0", "denied", fired="amount-limit")
    other = write_decision("support-routing", "1.0.0", "allowed")

    def listed(query: dict) -> set[int]:
        page = author_page.get("/decisions/", query).content.decode()
        return {int(found) for found in re.findall(r'href="/decisions/(\d+)/"', page)}

    assert listed({}) == {allowed, denied, other}
    assert listed({"bundle": "claims-triage"}) == {allowed, denied}
    assert listed({"bundle": "claims-triage", "version": "1.2.0"}) == {allowed}
    assert listed({"status": "denied"}) == {denied}
    assert listed({"policy": "amount-limit"}) == {denied}
    assert listed({"since": "2000-01-01", "until": "2000-01-02"}) == set()


def test_the_decisions_browser_pages_by_cursor_keeping_its_filters(author_page):
    written = [write_decision("claims-triage", "1.2.0", "allowed") for _ in range(55)]
    write_decision("support-routing", "1.0.0", "allowed")
    first = author_page.get("/decisions/", {"bundle": "claims-triage"}).content.decode()
    assert len(re.findall(r'href="/decisions/(\d+)/"', first)) == 50
    assert "55 decisions match these filters" in first
    older = html.unescape(re.search(r'href="\?([^"]*cursor=[^"]*)">Older', first).group(1))
    assert "bundle=claims-triage" in older and "page=" not in older
    second = author_page.get(f"/decisions/?{older}").content.decode()
    shown = {int(found) for found in re.findall(r'href="/decisions/(\d+)/"', second)}
    assert shown == set(sorted(written)[:5])
    assert "Newer" in second and "Older" not in second


def test_a_decision_page_shows_policies_hashes_and_links_to_its_version(author_page, tenant_a, make_member):
    version = push_version(make_member(tenant_a, "cp-pusher", ["author"]), "1.2.0")
    decision_id = write_decision("claims-triage", version.version, "denied", fired="amount-limit")
    page = author_page.get(f"/decisions/{decision_id}/").content.decode()
    assert 'href="/bundles/claims-triage/versions/1.2.0/"' in page
    assert "amount-limit" in page
    assert "d" * 64 in page
    assert "1.5 ms" in page
    assert author_page.get("/decisions/999999/").status_code == 404
