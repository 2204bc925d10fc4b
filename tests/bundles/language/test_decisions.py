"""Decisions: a failed execution names its error kind, and a decision describes its own record."""

import pytest

from bundles.language.compiler import compile_bundle
from bundles.language.decisions import MODEL_FAILED, RENDER_FAILED, STATUS_ALLOWED, ErrorKind, model_failure
from bundles.language.execution import execute
from bundles.language.models import ModelError
from tests.bundles.language.test_execution import SMALL_CLAIM, RecordingModel, claims_triage_content


def failing_model(request):
    raise ModelError("HTTP 500 from provider")


def test_a_model_failure_is_an_error_of_kind_model_failed():
    decision = execute(compile_bundle(claims_triage_content()), "triage", SMALL_CLAIM, failing_model)

    assert decision.error_kind is ErrorKind.MODEL_FAILED
    assert decision.reason == MODEL_FAILED.format(reason="HTTP 500 from provider")


def test_a_template_failure_is_an_error_of_kind_render_failed():
    content = claims_triage_content()
    content["templates/triage.yaml"]["prompt"] = "{{ input.amount / 0 }}"

    decision = execute(compile_bundle(content), "triage", SMALL_CLAIM, RecordingModel())

    assert decision.error_kind is ErrorKind.RENDER_FAILED
    assert decision.reason.startswith(RENDER_FAILED.split("{", 1)[0])


def test_an_allowed_decision_has_no_error_kind():
    decision = execute(compile_bundle(claims_triage_content()), "triage", SMALL_CLAIM, RecordingModel())

    assert decision.status == STATUS_ALLOWED
    assert decision.error_kind is None


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_the_kind_of_a_recorded_reason_is_recovered(kind):
    reason = kind.reason.format(reason="boom", template="t", type_name="NoneType")

    assert ErrorKind.of_reason(reason) is kind


def test_a_recorded_model_failure_keeps_the_model_s_own_reason():
    assert model_failure(MODEL_FAILED.format(reason="timeout after 5.0s")) == "timeout after 5.0s"
    assert model_failure("template t could not be rendered: x") is None
    assert ErrorKind.of_reason(None) is None


def test_the_record_of_a_decision_carries_identities_outcome_and_hashes_but_no_payload():
    decision = execute(compile_bundle(claims_triage_content()), "triage", SMALL_CLAIM, RecordingModel())

    data = decision.as_record(environment="prod", caller={"key": "ci"}, latency_ms=1.23456)

    assert data == {
        "bundle": "claims-triage",
        "version": "1.2.0",
        "digest": decision.bundle["digest"],
        "pipeline": "triage",
        "environment": "prod",
        "status": STATUS_ALLOWED,
        "denied_by": None,
        "reason": None,
        "policies": decision.policies,
        "redactions": decision.redactions,
        "errors": [],
        "hashes": decision.hashes,
        "decision_hash": decision.decision_hash,
        "usage": decision.usage,
        "model": decision.model,
        "caller": {"key": "ci"},
        "latency_ms": 1.235,
    }


def test_an_idempotent_record_also_keeps_the_request_hash_and_the_output():
    decision = execute(compile_bundle(claims_triage_content()), "triage", SMALL_CLAIM, RecordingModel())

    data = decision.as_record(
        environment="prod", caller={}, latency_ms=0, idempotency_key="k1", request_hash="abc"
    )

    assert (data["idempotency_key"], data["request_hash"], data["output"]) == ("k1", "abc", decision.output)
