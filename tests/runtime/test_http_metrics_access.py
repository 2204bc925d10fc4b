"""GET /metrics names every tenant, bundle and denying policy: only the platform's scraper may read it."""

import json

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings

from runtime.door import metrics_view
from runtime.exceptions import METRICS_FORBIDDEN

SCRAPER_TOKEN = "scraper-token-0123456789"
FORBIDDEN = {"error": {"code": "metrics_forbidden", "message": METRICS_FORBIDDEN, "details": []}}


def test_a_tenant_client_through_a_proxy_cannot_read_every_tenants_metrics(client):
    response = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    assert "contractor_runtime" not in response.text


@pytest.mark.parametrize(
    "meta",
    [
        {"REMOTE_ADDR": "10.1.2.3"},
        {"REMOTE_ADDR": "203.0.113.9"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.9"},
        {"REMOTE_ADDR": "not-an-address"},
    ],
)
def test_without_a_token_only_a_local_unproxied_scraper_reads_the_metrics(meta):
    response = metrics_view(RequestFactory().get("/metrics", **meta))
    assert response.status_code == 403
    assert json.loads(response.content) == FORBIDDEN


def test_a_local_scraper_reads_the_metrics():
    response = metrics_view(RequestFactory().get("/metrics", REMOTE_ADDR="127.0.0.1"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@override_settings(CONTRACTOR={**settings.CONTRACTOR, "RUNTIME_METRICS_TOKEN": SCRAPER_TOKEN})
def test_with_a_token_only_its_bearer_reads_the_metrics():
    factory = RequestFactory()
    refused = [
        metrics_view(factory.get("/metrics", REMOTE_ADDR="127.0.0.1")),
        metrics_view(factory.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token")),
        metrics_view(factory.get("/metrics", HTTP_AUTHORIZATION=f"Token {SCRAPER_TOKEN}")),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403]
    allowed = metrics_view(
        factory.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION=f"Bearer {SCRAPER_TOKEN}")
    )
    assert allowed.status_code == 200
