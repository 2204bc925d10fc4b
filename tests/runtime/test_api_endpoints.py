"""Control-plane API of model endpoints: operators manage them, audited; never an API key itself."""

import pytest

from audit.models import Record
from runtime.exceptions import ENDPOINT_EXISTS, ENDPOINT_NOT_FOUND
from runtime.models import ModelEndpoint
from runtime.services import BAD_ALLOWED_MODELS, BAD_API_KEY_ENV, BAD_BASE_URL, BAD_TIMEOUT
from tenancy.exceptions import MISSING_CAPABILITY
from tests.conftest import token_client

URL = "/api/v1/model-endpoints/"
ENDPOINT = {
    "name": "openai",
    "base_url": "https://api.openai.example/v1/",
    "allowed_models": ["gpt-small", "gpt-large"],
    "api_key_env": "OPENAI_API_KEY",
    "timeout_seconds": 20,
}


@pytest.fixture
def api(in_tenant_a, tenant_a, make_member):
    return token_client(tenant_a, make_member(tenant_a, "me-operator", ["operator"]))


@pytest.mark.parametrize("roles", [["author"], ["auditor"], ["reviewer"]])
def test_only_operators_manage_model_endpoints(in_tenant_a, tenant_a, make_member, roles, api):
    assert api.post(URL, ENDPOINT, format="json").status_code == 201
    other = token_client(tenant_a, make_member(tenant_a, f"me-{roles[0]}", roles))
    refused = [
        other.post(URL, {**ENDPOINT, "name": "other"}, format="json"),
        other.patch(f"{URL}openai/", {"timeout_seconds": 5}, format="json"),
        other.delete(f"{URL}openai/"),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403]
    assert refused[0].json()["error"]["message"] == MISSING_CAPABILITY.format(
        capability="manage_model_endpoints"
    )
    assert other.get(URL).status_code == 200
    assert ModelEndpoint.objects.get().timeout_seconds == 20


def test_an_operator_creates_an_endpoint_audited(api):
    response = api.post(URL, ENDPOINT, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["base_url"] == "https://api.openai.example/v1"
    assert body["allowed_models"] == ["gpt-large", "gpt-small"]
    assert (body["api_key_env"], body["timeout_seconds"]) == ("OPENAI_API_KEY", 20.0)
    record = Record.objects.get(action="model_endpoint.created")
    assert record.data["api_key_env"] == "OPENAI_API_KEY"
    assert api.get(URL).json()["results"][0]["name"] == "openai"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("api_key_env", "sk-live-0123456789abcdef", BAD_API_KEY_ENV),
        ("api_key_env", "openai_key", BAD_API_KEY_ENV),
        ("base_url", "ftp://models.example", BAD_BASE_URL),
        ("base_url", "not a url", BAD_BASE_URL),
        ("allowed_models", [], BAD_ALLOWED_MODELS),
        ("timeout_seconds", 0, BAD_TIMEOUT.format(cap=20)),
        ("timeout_seconds", 20.5, BAD_TIMEOUT.format(cap=20)),
        ("timeout_seconds", 600, BAD_TIMEOUT.format(cap=20)),
    ],
)
def test_an_invalid_endpoint_is_refused_with_the_field_named(api, field, value, message):
    response = api.post(URL, {**ENDPOINT, field: value}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_model_endpoint"
    assert response.json()["error"]["details"] == [{"field": field, "code": "invalid", "message": message}]
    assert not ModelEndpoint.objects.exists()


def test_a_second_endpoint_of_the_same_name_is_a_conflict(api):
    api.post(URL, ENDPOINT, format="json")
    response = api.post(URL, ENDPOINT, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == ENDPOINT_EXISTS.format(name="openai")


def test_an_operator_changes_an_endpoint_but_not_its_name(api):
    api.post(URL, ENDPOINT, format="json")
    response = api.patch(
        f"{URL}openai/", {"timeout_seconds": 5, "allowed_models": ["gpt-small"]}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["timeout_seconds"], response.json()["allowed_models"]) == (5.0, ["gpt-small"])
    record = Record.objects.get(action="model_endpoint.updated")
    assert record.data["changes"] == {
        "timeout_seconds": {"from": 20.0, "to": 5.0},
        "allowed_models": {"from": ["gpt-large", "gpt-small"], "to": ["gpt-small"]},
    }
    renamed = api.patch(f"{URL}openai/", {"name": "other"}, format="json")
    assert renamed.status_code == 400
    assert renamed.json()["error"]["details"][0]["field"] == "name"
    assert ModelEndpoint.objects.get().history.count() == 2


def test_an_operator_deletes_an_endpoint(api):
    api.post(URL, ENDPOINT, format="json")
    assert api.delete(f"{URL}openai/").status_code == 204
    assert not ModelEndpoint.objects.exists()
    assert Record.objects.get(action="model_endpoint.deleted").data["name"] == "openai"
    missing = api.delete(f"{URL}openai/")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == ENDPOINT_NOT_FOUND.format(name="openai")
