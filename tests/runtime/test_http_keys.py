"""Runtime keys on the live runtime: missing, unknown, revoked and foreign keys, scope, environment."""

import time

import pytest
from django.db import transaction

from runtime.exceptions import BUNDLE_OUT_OF_SCOPE, INVALID_KEY, NOT_RELEASED, UNKNOWN_PIPELINE
from runtime.models import RuntimeKey
from runtime.services import runtime_key_create, runtime_key_revoke
from tenancy.models import Tenant
from tenancy.services import tenant_host
from tests.conftest import run_committed

pytestmark = pytest.mark.django_db

CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}


def assert_error(response, status: int, code: str, message: str | None = None) -> None:
    """Assert the JSON error answer."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if message is not None:
        assert error["message"] == message


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Token ck_0123abcd_" + "a" * 43,
        "Bearer ck_0123abcd_short",
        "Bearer ck_0123abcd_" + "a" * 43,
        "Basic dXNlcjpwYXNz",
    ],
)
def test_a_missing_malformed_or_unknown_key_is_refused(client, authorization):
    headers = {"Host": client.host}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = client.http.post("/v1/execute/claims-triage/triage", json={"input": CLAIM}, headers=headers)
    assert_error(response, 401, "invalid_key", INVALID_KEY)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_key_with_the_right_prefix_and_a_wrong_secret_is_refused(client, world):
    prefix = world.keys["main"].split("_")[1]
    response = client.execute("claims-triage", "triage", CLAIM, key=f"ck_{prefix}_{'b' * 43}")
    assert_error(response, 401, "invalid_key")


def test_a_revoked_key_is_refused(client, world):
    response = client.execute("claims-triage", "triage", CLAIM, key=world.keys["revoked"])
    assert_error(response, 401, "invalid_key")


def test_a_key_of_one_tenant_is_useless_on_another_tenants_host(client, world):
    beta = Tenant.objects.get(schema_name="beta")
    client.host = tenant_host(beta.schema_name)
    response = client.execute("claims-triage", "triage", CLAIM)
    assert_error(response, 401, "invalid_key")


def test_a_key_scoped_to_other_bundles_is_refused_with_403(client, world):
    response = client.execute("claims-triage", "triage", CLAIM, key=world.keys["lab_only"])
    assert_error(response, 403, "bundle_out_of_scope", BUNDLE_OUT_OF_SCOPE.format(bundle="claims-triage"))
    allowed = client.execute("claims-lab", "triage", CLAIM, key=world.keys["lab_only"])
    assert allowed.status_code == 200


def test_a_bundle_not_live_in_the_keys_environment_is_not_executed(client, world):
    in_current = client.execute("support-routing", "route", {"ticket_id": "T1"})
    assert_error(
        in_current,
        404,
        "not_released",
        NOT_RELEASED.format(bundle="support-routing"),
    )
    unknown = client.execute("no-such-bundle", "triage", CLAIM)
    assert_error(unknown, 404, "not_released")


def test_a_staging_key_executes_what_is_live_in_staging(client, world):
    response = client.execute("support-routing", "route", {}, key=world.keys["staging"])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_input"


def test_an_unknown_pipeline_is_not_executed(client):
    response = client.execute("claims-triage", "summarize", CLAIM)
    assert_error(
        response,
        404,
        "unknown_pipeline",
        UNKNOWN_PIPELINE.format(bundle="claims-triage", version="1.3.0", pipeline="summarize"),
    )


def create_key(operator_id: int) -> tuple[int, str]:
    from django.contrib.auth import get_user_model

    operator = get_user_model().objects.get(pk=operator_id)
    with transaction.atomic():
        created = runtime_key_create(actor=operator, name="short-lived")
    return created.key.pk, created.secret


def revoke_key(operator_id: int, key_id: int) -> None:
    from django.contrib.auth import get_user_model

    operator = get_user_model().objects.get(pk=operator_id)
    runtime_key_revoke(actor=operator, key=RuntimeKey.objects.get(pk=key_id))


def test_a_revocation_reaches_every_runtime_worker_within_one_second(client, world):
    operator_id = world.users["operator"].pk
    key_id, secret = run_committed(create_key, operator_id, tenant=world.tenant)
    for _ in range(6):  # warm both workers' key caches
        assert client.execute("claims-lab", "triage", CLAIM, key=secret).status_code == 200
    run_committed(revoke_key, operator_id, key_id, tenant=world.tenant)
    time.sleep(1.0)
    statuses = [client.execute("claims-lab", "triage", CLAIM, key=secret).status_code for _ in range(6)]
    assert statuses == [401] * 6
