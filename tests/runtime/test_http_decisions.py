"""GET /v1/decisions/{id} and POST /v1/decisions/{id}/verify on the live runtime."""

import pytest

from runtime.exceptions import DECISION_NOT_FOUND

pytestmark = pytest.mark.django_db

CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}
MODEL_ANSWER = '{"queue": "auto", "reason": "collision"}'
EMAIL_CLAIM = {
    "claim_id": "C5",
    "amount": 300,
    "description": "scratched bumper",
    "customer_email": "a@b.example",
}


def decide(client, bundle: str, pipeline: str, claim: dict) -> int:
    """Execute and return the decision id (of a success or of a recorded error)."""
    body = client.execute(bundle, pipeline, claim).json()
    return body["decision_id"] if "decision_id" in body else body["error"]["decision_id"]


def verify(client, decision_id: int, **body):
    return client.post(f"/v1/decisions/{decision_id}/verify", json=body)


def test_a_decision_is_read_back_with_its_record(client):
    decision_id = decide(client, "claims-triage", "triage", CLAIM)
    response = client.get(f"/v1/decisions/{decision_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["decision_id"] == decision_id
    assert body["key"]["name"] == "rt-main"
    assert (body["bundle"], body["version"], body["status"]) == ("claims-triage", "1.3.0", "allowed")
    assert len(body["record_hash"]) == 64
    assert set(body["hashes"]) == {"input", "prompt", "output"}


def test_an_unknown_decision_answers_404(client):
    response = client.get("/v1/decisions/999999999")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "decision_not_found",
        "message": DECISION_NOT_FOUND.format(id=999999999),
        "details": [],
    }


def test_a_key_does_not_read_decisions_outside_its_bundle_scope(client, world):
    decision_id = decide(client, "claims-triage", "triage", CLAIM)
    response = client.get(
        f"/v1/decisions/{decision_id}", headers={"Authorization": f"Bearer {world.keys['lab_only']}"}
    )
    assert response.status_code == 404
    assert verify_as(client, world.keys["lab_only"], decision_id).status_code == 404


def test_a_key_does_not_read_decisions_made_in_another_environment(client, world):
    decision_id = decide(client, "claims-triage", "triage", CLAIM)  # made through `current`
    staging_key = world.keys["staging"]
    response = client.get(f"/v1/decisions/{decision_id}", headers={"Authorization": f"Bearer {staging_key}"})
    assert response.status_code == 404
    assert verify_as(client, staging_key, decision_id).status_code == 404


def verify_as(client, key: str, decision_id: int):
    return client.http.post(
        f"/v1/decisions/{decision_id}/verify",
        json={"input": CLAIM, "model_output": MODEL_ANSWER},
        headers=client.headers(key=key),
    )


def test_verify_reproduces_a_decision_from_its_input_and_the_models_answer(client):
    decision_id = decide(client, "claims-triage", "triage", CLAIM)
    response = verify(client, decision_id, input=CLAIM, model_output=MODEL_ANSWER)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "decision_id": decision_id,
        "reproduced": True,
        "mismatches": [],
        "record_intact": True,
        "bundle": response.json()["bundle"],
    }


def test_verify_detects_a_changed_input(client):
    decision_id = decide(client, "claims-triage", "triage", CLAIM)
    changed = {**CLAIM, "amount": 1201}
    body = verify(client, decision_id, input=changed, model_output=MODEL_ANSWER).json()
    assert body["reproduced"] is False
    assert [mismatch["field"] for mismatch in body["mismatches"]] == [
        "input_hash",
        "prompt_hash",
        "decision_hash",
    ]
    recorded = client.get(f"/v1/decisions/{decision_id}").json()
    assert body["mismatches"][0]["recorded"] == recorded["hashes"]["input"]


def test_verify_detects_another_model_answer(client):
    decision_id = decide(client, "claims-triage", "triage", CLAIM)
    other = '{"queue": "home", "reason": "collision"}'
    body = verify(client, decision_id, input=CLAIM, model_output=other).json()
    assert [mismatch["field"] for mismatch in body["mismatches"]] == ["output_hash", "decision_hash"]


def test_verify_needs_the_models_answer_when_it_was_not_retained(client):
    decision_id = decide(client, "claims-triage", "triage", CLAIM)
    response = verify(client, decision_id, input=CLAIM)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "model_output"


def test_verify_uses_the_retained_answer_of_a_pipeline_that_stores_its_payload(client):
    decision_id = decide(client, "claims-lab", "echo", EMAIL_CLAIM)
    assert verify(client, decision_id, input=EMAIL_CLAIM).json()["reproduced"] is True
    without_email = {key: value for key, value in EMAIL_CLAIM.items() if key != "customer_email"}
    changed = verify(client, decision_id, input=without_email).json()
    assert changed["reproduced"] is False
    assert [mismatch["field"] for mismatch in changed["mismatches"]] == ["input_hash", "decision_hash"]


@pytest.mark.parametrize(
    ("pipeline", "claim"),
    [
        ("triage", {**CLAIM, "amount": 900000}),  # denied before the model
        ("triage", {"claim_id": "bad", "amount": 1}),  # invalid input
        ("failing", CLAIM),  # the model failed
    ],
)
def test_verify_reproduces_decisions_the_model_did_not_answer(client, pipeline, claim):
    decision_id = decide(client, "claims-lab", pipeline, claim)
    body = verify(client, decision_id, input=claim).json()
    assert (body["reproduced"], body["mismatches"]) == (True, [])


def test_verify_refuses_a_malformed_request(client):
    decision_id = decide(client, "claims-triage", "triage", CLAIM)
    response = verify(client, decision_id, input=CLAIM, model_output={"queue": "auto"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    missing = client.post(f"/v1/decisions/{decision_id}/verify", json={"model_output": MODEL_ANSWER})
    assert missing.json()["error"]["details"] == [
        {"field": "input", "code": "required", "message": "is required"}
    ]
