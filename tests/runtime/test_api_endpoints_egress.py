"""Model endpoints under the egress policy: an operator cannot aim one at a private, loopback or metadata
address (the error names the field, the address and why); development opens the dev model's address only."""

import pytest
from django.conf import settings
from django.test import override_settings

from core.egress import EGRESS_REFUSED, url_refusal
from runtime.models import ModelEndpoint
from runtime.services import EGRESS_REFUSED_CODE
from tests.conftest import token_client

URL = "/api/v1/model-endpoints/"
ENDPOINT = {"name": "internal", "allowed_models": ["gpt-small"], "timeout_seconds": 5}
PRODUCTION_EGRESS = override_settings(CONTRACTOR={**settings.CONTRACTOR, "EGRESS_ALLOW": []})
DEVELOPMENT_EGRESS = override_settings(CONTRACTOR={**settings.CONTRACTOR, "EGRESS_ALLOW": ["127.0.0.1:8002"]})


@pytest.fixture
def api(in_tenant_a, tenant_a, make_member):
    return token_client(tenant_a, make_member(tenant_a, "egress-operator", ["operator"]))


@PRODUCTION_EGRESS
@pytest.mark.parametrize(
    "base_url",
    [
        "http://169.254.169.254/latest",
        "http://127.0.0.1:5432/v1",
        "http://[::1]:6379/v1",
        "http://0x7f000001/v1",
        "http://2130706433/v1",
        "http://0177.0.0.1/v1",
        "http://127.1/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://good@127.0.0.1/v1",
        "http://metadata.google.internal/v1",
        "http://metadata/v1",
        "http://localhost:8002/v1",
        "http://models.localhost/v1",
        "https://192.168.1.20/v1",
    ],
)
def test_an_endpoint_to_a_refused_address_is_refused_with_the_field_named(api, base_url):
    response = api.post(URL, {**ENDPOINT, "base_url": base_url}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_model_endpoint"
    refusal = url_refusal(base_url)
    assert refusal is not None and refusal.startswith(f"{EGRESS_REFUSED}: ")
    assert error["details"] == [{"field": "base_url", "code": EGRESS_REFUSED_CODE, "message": refusal}]
    assert not ModelEndpoint.objects.exists()


@PRODUCTION_EGRESS
def test_an_endpoint_cannot_be_changed_to_a_refused_address(api):
    assert (
        api.post(URL, {**ENDPOINT, "base_url": "https://api.models.example/v1"}, format="json").status_code
        == 201
    )
    response = api.patch(f"{URL}internal/", {"base_url": "http://169.254.169.254/v1"}, format="json")
    assert response.status_code == 400
    assert [detail["code"] for detail in response.json()["error"]["details"]] == [EGRESS_REFUSED_CODE]
    assert ModelEndpoint.objects.get().base_url == "https://api.models.example/v1"


@DEVELOPMENT_EGRESS
def test_development_opens_the_dev_model_address_and_nothing_else(api):
    accepted = [
        api.post(URL, {**ENDPOINT, "name": name, "base_url": base_url}, format="json").status_code
        for name, base_url in (
            ("dev", "http://127.0.0.1:8002/v1"),
            ("dev-by-name", "http://localhost:8002/v1"),
        )
    ]
    assert accepted == [201, 201]
    for base_url in ("http://127.0.0.1:5432/v1", "http://127.0.0.2:8002/v1", "http://[::1]:8002/v1"):
        refused = api.post(URL, {**ENDPOINT, "name": "other", "base_url": base_url}, format="json")
        assert refused.json()["error"]["details"][0]["code"] == EGRESS_REFUSED_CODE, base_url
