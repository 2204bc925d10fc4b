"""The runtime's answer to a decision stopped at a render limit: still a 500, with code `prompt_too_large`."""

from runtime.execution import decision_body, status_code

from bundles.language.compiler import compile_bundle
from bundles.language.execution import execute
from tests.bundles.language.test_execution import SMALL_CLAIM, RecordingModel, claims_triage_content


def recorded(prompt: str) -> dict:
    content = claims_triage_content()
    content["templates/triage.yaml"]["prompt"] = prompt
    decision = execute(compile_bundle(content), "triage", dict(SMALL_CLAIM), RecordingModel())
    return decision.as_record(environment="current", caller={}, latency_ms=0)


def test_a_prompt_over_a_limit_is_answered_500_with_code_prompt_too_large():
    data = recorded("{{ '%200000000s' % 'x' }}")

    body = decision_body(7, data, None)

    assert status_code(data) == 500
    assert body["error"]["code"] == "prompt_too_large"
    assert body["error"]["message"] == data["reason"]
    assert (body["error"]["decision_id"], body["error"]["status"]) == (7, "error")


def test_any_other_template_failure_keeps_its_answer():
    data = recorded("{{ input.amount / 0 }}")

    assert status_code(data) == 500
    assert decision_body(7, data, None)["error"]["code"] == "execution_failed"
