"""POST /v1/execute on the live runtime: decisions, their records, and every refusal."""

import json

import pytest
from django.db import connection

from audit.models import Record
from audit.selectors import record_is_intact
from bundles.language.decisions import content_hash
from runtime.door import NUL_NAME
from runtime.exceptions import (
    INVALID_INPUT,
    INVALID_REQUEST,
    MALFORMED_JSON,
    PAYLOAD_TOO_LARGE,
)

pytestmark = pytest.mark.django_db

SMALL_CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}
EMAIL = "jane.doe@example.com"


@pytest.fixture
def in_world(world):
    """Read the world's tenant on the test connection (committed data), then go back to public."""
    connection.set_tenant(world.tenant)
    yield world
    connection.set_schema_to_public()


def decision_record(decision_id: int) -> Record:
    return Record.objects.get(pk=decision_id, action="runtime.decision")


def test_an_allowed_execution_returns_the_output_and_records_the_decision(client, in_world):
    response = client.execute("claims-triage", "triage", SMALL_CLAIM)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "allowed"
    assert body["output"] == {"queue": "auto", "reason": "collision"}
    assert body["bundle"]["name"] == "claims-triage"
    assert body["bundle"]["version"] == "1.3.0"
    assert body["bundle"]["digest"].startswith("sha256:")
    assert body["environment"] == "current"
    assert [policy["name"] for policy in body["policies"]] == [
        "amount-limit",
        "no-pii-to-model",
        "long-description",
        "allowed-queues",
    ]
    assert body["redactions"] == []
    entry = decision_record(body["decision_id"])
    assert (entry.actor_kind, entry.actor_name) == ("runtime_key", "rt-main")
    assert (entry.target_type, entry.target_id) == ("bundles.bundleversion", str(in_world.versions["1.3.0"]))
    assert entry.data["status"] == "allowed"
    assert entry.data["digest"] == body["bundle"]["digest"]
    assert entry.data["decision_hash"] == body["decision_hash"]
    assert entry.data["hashes"]["input"] == content_hash(SMALL_CLAIM)
    assert entry.data["usage"]["prompt_tokens"] > 0
    assert entry.data["model"]["name"] == "dev-model"
    assert entry.data["latency_ms"] > 0
    assert record_is_intact(entry)


def test_a_decision_record_keeps_hashes_not_the_payload(client, in_world):
    claim = {**SMALL_CLAIM, "description": "a very distinctive rear-ended sentence", "customer_email": EMAIL}
    response = client.execute("claims-triage", "triage", claim)
    assert response.status_code == 200
    stored = json.dumps(decision_record(response.json()["decision_id"]).data)
    assert "distinctive" not in stored
    assert EMAIL not in stored
    assert "collision" not in stored  # nor the output


def test_a_denied_execution_answers_200_with_status_denied_and_no_output(client, in_world):
    response = client.execute("claims-triage", "triage", {**SMALL_CLAIM, "amount": 500000})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["denied_by"], body["output"]) == ("denied", "amount-limit", None)
    fired = [policy for policy in body["policies"] if policy["fired"]]
    assert fired[0]["message"] == "Claims above 100k go to a human adjuster"
    entry = decision_record(body["decision_id"])
    assert (entry.data["status"], entry.data["denied_by"]) == ("denied", "amount-limit")
    assert entry.data["hashes"]["prompt"] is None  # the model was never asked


def test_a_post_policy_denies_what_the_model_answered(client, in_world):
    response = client.execute("claims-triage", "triage", {**SMALL_CLAIM, "description": "staged collision"})
    body = response.json()
    assert (response.status_code, body["status"], body["denied_by"]) == (200, "denied", "allowed-queues")
    assert body["output"] is None


def test_customer_email_never_reaches_the_model(client, in_world):
    claim = {"claim_id": "C5", "amount": 300, "description": "scratched bumper", "customer_email": EMAIL}
    response = client.execute("claims-lab", "echo", claim)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["redactions"] == ["customer_email"]
    seen_by_model = json.loads(body["output"]["reason"])  # dev-echo answered the prompt it received
    assert seen_by_model == {"claim_id": "C5", "amount": 300, "description": "scratched bumper"}
    entry = decision_record(body["decision_id"])
    assert EMAIL not in json.dumps(entry.data)
    assert entry.data["payload"]["input"] == {
        "claim_id": "C5",
        "amount": 300,
        "description": "scratched bumper",
    }


def test_invalid_input_answers_400_and_is_recorded(client, in_world):
    response = client.execute("claims-triage", "triage", {"claim_id": "X-9", "amount": -5})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"] == INVALID_INPUT.format(pipeline="triage")
    assert {(detail["path"], detail["code"]) for detail in error["details"]} == {
        ("claim_id", "pattern"),
        ("amount", "minimum"),
        ("description", "required"),
    }
    entry = decision_record(error["decision_id"])
    assert entry.data["status"] == "invalid_input"


@pytest.mark.parametrize(
    ("pipeline", "reason"),
    [
        ("failing", "model call failed: HTTP 500 from provider"),
        ("elsewhere", "model call failed: model endpoint 'nowhere' is not configured in this tenant"),
    ],
)
def test_a_model_failure_answers_502_and_is_recorded(client, in_world, pipeline, reason):
    response = client.execute("claims-lab", pipeline, SMALL_CLAIM)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "model_failed"
    assert "output" not in response.json()
    entry = decision_record(error["decision_id"])
    assert (entry.data["status"], entry.data["reason"]) == ("error", reason)


def test_a_model_answer_that_is_not_the_output_entity_answers_502(client, in_world):
    response = client.execute("claims-lab", "echo", {**SMALL_CLAIM, "description": 'quote " breaks nothing'})
    assert response.status_code == 200  # tojson keeps the echo valid JSON
    claim = {"claim_id": "C7", "amount": 1, "description": "x" * 600}
    too_long = client.execute("claims-lab", "echo", claim)
    assert too_long.status_code == 502
    assert too_long.json()["error"]["code"] == "invalid_model_output"
    assert decision_record(too_long.json()["error"]["decision_id"]).data["status"] == "invalid_output"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"{not json", "malformed_json", None),
        (b"", "malformed_json", None),
        (b'{"input": NaN}', "malformed_json", MALFORMED_JSON.format(reason="non-standard constant NaN")),
        (b"[1, 2]", "invalid_request", INVALID_REQUEST),
        (b'{"inputs": {}}', "invalid_request", INVALID_REQUEST),
        (b"[" * 100000, "malformed_json", None),
    ],
)
def test_a_malformed_body_answers_400_and_executes_nothing(client, in_world, body, code, message):
    before = Record.objects.filter(action="runtime.decision").count()
    response = client.post(
        "/v1/execute/claims-triage/triage", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    if message:
        assert response.json()["error"]["message"] == message
    assert Record.objects.filter(action="runtime.decision").count() == before


def test_an_unknown_field_of_the_body_is_named(client):
    response = client.post("/v1/execute/claims-triage/triage", json={"input": SMALL_CLAIM, "model": "big"})
    assert response.json()["error"]["details"] == [
        {"field": "model", "code": "unknown_field", "message": "is not a field of this request"}
    ]


def test_a_body_larger_than_the_limit_answers_413(client, in_world):
    before = Record.objects.filter(action="runtime.decision").count()
    body = json.dumps({"input": {**SMALL_CLAIM, "description": "x" * (300 * 1024)}}).encode()
    response = client.post("/v1/execute/claims-triage/triage", content=body)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "payload_too_large",
        "message": PAYLOAD_TOO_LARGE.format(limit=256 * 1024),
        "details": [],
    }
    assert Record.objects.filter(action="runtime.decision").count() == before


def test_a_chunked_body_is_refused_with_411(client):
    def chunks():
        yield b'{"input": {"description": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}}'

    response = client.http.post(
        "/v1/execute/claims-triage/triage", content=chunks(), headers=client.headers()
    )
    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"


# --- Text no decision record can hold (found by fuzzing: were a 500, a 503 or a CEL failure) ---


@pytest.mark.parametrize(
    ("bundle", "pipeline", "claim", "field", "code"),
    [
        (
            "claims-lab",
            "echo",
            {**SMALL_CLAIM, "description": "a\x00b"},
            "input.description",
            "unstorable_text",
        ),
        ("claims-triage", "triage", {**SMALL_CLAIM, "extra\x00": 1}, "input.extra\\u0000", "unstorable_key"),
        (
            "claims-triage",
            "triage",
            {**SMALL_CLAIM, "description": "x\ud800"},
            "input.description",
            "unstorable_text",
        ),
        ("claims-triage", "triage", {**SMALL_CLAIM, "\udfff": 1}, "input.\\udfff", "unstorable_key"),
    ],
)
def test_text_no_decision_record_can_hold_is_refused_before_execution(
    client, in_world, bundle, pipeline, claim, field, code
):
    before = Record.objects.filter(action="runtime.decision").count()
    response = client.post(f"/v1/execute/{bundle}/{pipeline}", content=json.dumps({"input": claim}).encode())
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("invalid_request", INVALID_REQUEST)
    assert [(detail["field"], detail["code"]) for detail in error["details"]] == [(field, code)]
    assert Record.objects.filter(action="runtime.decision").count() == before


def test_an_emoji_written_as_a_surrogate_pair_is_ordinary_text(client):
    body = json.dumps({"input": {**SMALL_CLAIM, "description": "rear-ended \U0001f600"}}).encode()
    assert b"\\ud83d\\ude00" in body
    response = client.post("/v1/execute/claims-triage/triage", content=body)
    assert response.status_code == 200, response.text


def test_a_nul_in_the_bundle_name_is_a_400_not_a_database_outage(client):
    response = client.post("/v1/execute/claims%00triage/triage", json={"input": SMALL_CLAIM})
    assert response.status_code == 400  # was 503 database_unavailable (PostgreSQL refused the NUL)
    assert response.json()["error"]["details"] == [
        {"field": "bundle", "code": "null_characters_not_allowed", "message": NUL_NAME}
    ]
