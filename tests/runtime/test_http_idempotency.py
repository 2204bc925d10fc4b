"""Idempotency-Key on the live runtime: a repeat returns the first decision; another body is refused."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from audit.models import Record
from runtime.exceptions import IDEMPOTENCY_KEY_REUSED
from tests.runtime.conftest import RuntimeClient

pytestmark = pytest.mark.django_db

CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}


@pytest.fixture
def in_world(world):
    connection.set_tenant(world.tenant)
    yield world
    connection.set_schema_to_public()


def recorded_with(idempotency_key: str) -> int:
    """Return how many decisions carry `idempotency_key`."""
    return Record.objects.filter(action="runtime.decision", data__idempotency_key=idempotency_key).count()


def fresh_key() -> str:
    return f"order-{uuid.uuid4()}"


def test_the_same_key_and_body_twice_returns_the_first_decision(client, in_world):
    idempotency_key = fresh_key()
    first = client.execute("claims-triage", "triage", CLAIM, headers={"Idempotency-Key": idempotency_key})
    second = client.execute("claims-triage", "triage", CLAIM, headers={"Idempotency-Key": idempotency_key})
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert second.json()["output"] == {"queue": "auto", "reason": "collision"}
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert recorded_with(idempotency_key) == 1


def test_the_same_key_with_another_body_is_refused_with_422(client, in_world):
    idempotency_key = fresh_key()
    first = client.execute("claims-triage", "triage", CLAIM, headers={"Idempotency-Key": idempotency_key})
    other = client.execute(
        "claims-triage", "triage", {**CLAIM, "amount": 1300}, headers={"Idempotency-Key": idempotency_key}
    )
    assert first.status_code == 200
    assert other.status_code == 422
    assert other.json()["error"] == {
        "code": "idempotency_key_reused",
        "message": IDEMPOTENCY_KEY_REUSED.format(key=idempotency_key),
        "details": [],
    }
    other_pipeline = client.execute(
        "claims-lab", "triage", CLAIM, headers={"Idempotency-Key": idempotency_key}
    )
    assert other_pipeline.status_code == 422
    assert recorded_with(idempotency_key) == 1


def test_a_recorded_invalid_input_is_replayed_as_the_same_400(client, in_world):
    idempotency_key = fresh_key()
    bad = {"claim_id": "nope", "amount": 1, "description": "x"}
    first = client.execute("claims-triage", "triage", bad, headers={"Idempotency-Key": idempotency_key})
    second = client.execute("claims-triage", "triage", bad, headers={"Idempotency-Key": idempotency_key})
    assert (first.status_code, second.status_code) == (400, 400)
    assert second.json() == first.json()
    assert recorded_with(idempotency_key) == 1


def test_idempotency_keys_belong_to_one_runtime_key(client, world, in_world):
    idempotency_key = fresh_key()
    mine = client.execute("claims-lab", "triage", CLAIM, headers={"Idempotency-Key": idempotency_key})
    theirs = client.execute(
        "claims-lab",
        "triage",
        CLAIM,
        headers={"Idempotency-Key": idempotency_key},
        key=world.keys["lab_only"],
    )
    assert (mine.status_code, theirs.status_code) == (200, 200)
    assert mine.json()["decision_id"] != theirs.json()["decision_id"]
    assert recorded_with(idempotency_key) == 2


def test_concurrent_repeats_execute_once(runtime, world, in_world):
    idempotency_key = fresh_key()

    def attempt(_):
        runtime_client = RuntimeClient(runtime, world.host, world.keys["main"])
        try:
            response = runtime_client.execute(
                "claims-lab", "slow", CLAIM, headers={"Idempotency-Key": idempotency_key}
            )
            return response.status_code, response.json()["decision_id"]
        finally:
            runtime_client.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(attempt, range(3)))
    assert {status for status, _ in outcomes} == {200}
    assert len({decision_id for _, decision_id in outcomes}) == 1
    assert recorded_with(idempotency_key) == 1


@pytest.mark.parametrize("value", ["", "x" * 256, "na\xefve".encode("latin-1"), "has space"])
def test_an_invalid_idempotency_key_is_refused(client, value):
    response = client.execute("claims-triage", "triage", CLAIM, headers={"Idempotency-Key": value})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
