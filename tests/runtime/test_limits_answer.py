"""The runtime's answer to a decision stopped at a render limit: still a 500, with code `prompt_too_large`."""

from bundles.language.compiler import compile_bundle
from bundles.language.decisions import ErrorKind
from bundles.language.execution import execute
from runtime.door import decision_answer
from runtime.governed import RecordedExecution
from tests.bundles.language.test_execution import SMALL_CLAIM, RecordingModel, claims_triage_content


def recorded(prompt: str) -> RecordedExecution:
    content = claims_triage_content()
    content["templates/triage.yaml"]["prompt"] = prompt
    decision = execute(compile_bundle(content), "triage", dict(SMALL_CLAIM), RecordingModel())
    data = decision.as_record(environment="current", caller={}, latency_ms=0)
    return RecordedExecution(7, data, None, decision.error_kind)


def test_a_prompt_over_a_limit_is_answered_500_with_code_prompt_too_large():
    execution = recorded("{{ '%200000000s' % 'x' }}")

    status, body = decision_answer(execution)

    assert execution.error_kind is ErrorKind.PROMPT_TOO_LARGE
    assert status == 500
    assert body["error"]["code"] == "prompt_too_large"
    assert body["error"]["message"] == execution.data["reason"]
    assert (body["error"]["decision_id"], body["error"]["status"]) == (7, "error")


def test_a_replayed_record_keeps_the_same_answer():
    execution = recorded("{{ '%200000000s' % 'x' }}")
    replayed = RecordedExecution(7, execution.data, None, ErrorKind.of_reason(execution.data["reason"]), True)

    assert decision_answer(replayed) == decision_answer(execution)


def test_any_other_template_failure_keeps_its_answer():
    status, body = decision_answer(recorded("{{ input.amount / 0 }}"))

    assert status == 500
    assert body["error"]["code"] == "execution_failed"
