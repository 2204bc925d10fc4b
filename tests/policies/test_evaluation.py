"""Policies: every effect at every stage, and evaluation failures that deny (fail closed)."""

import pytest

from policies import (
    EvaluationContext,
    PolicyDefinitionError,
    PolicyResult,
    PolicySyntaxError,
    compile_policy,
    evaluate_policies,
)
from policies.evaluation import (
    DEFAULT_MESSAGES,
    FAIL_CLOSED,
    MISSING_NAME,
    MISSING_WHEN,
    NOT_A_STRING_LIST,
    NOTHING_TO_REDACT,
    OUTPUT_IN_PRE,
    REDACT_KEYS_WITHOUT_REDACT,
    UNCONVERTIBLE,
    UNKNOWN_EFFECT,
    UNKNOWN_KEYS,
    UNKNOWN_STAGE,
    UNKNOWN_VARIABLE,
    WHEN_FAILED,
    WHEN_NOT_BOOL,
)

AMOUNT_LIMIT = {
    "name": "amount-limit",
    "stage": "pre",
    "effect": "deny",
    "when": "input.amount > 100000",
    "message": "Claims above 100k go to a human adjuster",
}
ALLOWED_QUEUES = {
    "name": "allowed-queues",
    "stage": "post",
    "effect": "deny",
    "when": "!(output.queue in ['auto', 'home'])",
    "message": "The model may only route to auto or home",
}


def policy(**overrides):
    """Return a compiled pre deny policy with `overrides` applied."""
    return compile_policy({**AMOUNT_LIMIT, **overrides})


def test_a_pre_deny_fires_when_its_condition_holds():
    result = policy().evaluate({"input": {"amount": 500000}})

    assert result == PolicyResult(
        "amount-limit", "pre", "deny", True, "Claims above 100k go to a human adjuster", None, []
    )
    assert result.denies


def test_a_pre_deny_does_not_fire_when_its_condition_is_false():
    result = policy().evaluate({"input": {"amount": 1200}})

    assert result == PolicyResult("amount-limit", "pre", "deny", False)
    assert not result.denies
    assert result.message is None


def test_a_post_deny_reads_the_output():
    allowed_queues = compile_policy(ALLOWED_QUEUES)

    fired = allowed_queues.evaluate({"input": {}, "output": {"queue": "fraud-review"}})
    quiet = allowed_queues.evaluate({"input": {}, "output": {"queue": "auto"}})

    assert (fired.stage, fired.effect, fired.fired, fired.denies) == ("post", "deny", True, True)
    assert fired.message == "The model may only route to auto or home"
    assert not quiet.fired


def test_a_pre_warn_fires_without_denying():
    warn = policy(effect="warn", message="large claim")

    result = warn.evaluate({"input": {"amount": 500000}})

    assert (result.effect, result.fired, result.denies, result.message) == (
        "warn",
        True,
        False,
        "large claim",
    )


def test_a_post_warn_fires_without_denying():
    warn = compile_policy({**ALLOWED_QUEUES, "effect": "warn"})

    result = warn.evaluate({"output": {"queue": "fraud-review"}})

    assert (result.stage, result.effect, result.fired, result.denies) == ("post", "warn", True, False)


def test_a_missing_field_fails_closed_as_a_fired_deny():
    result = policy().evaluate({"input": {}})

    assert result == PolicyResult(
        "amount-limit",
        "pre",
        "deny",
        True,
        FAIL_CLOSED.format(name="amount-limit"),
        WHEN_FAILED.format(reason="no such key: amount"),
        [],
    )
    assert result.denies


def test_a_type_error_fails_closed():
    result = policy(when="input.amount + 'x' == 'y'").evaluate({"input": {"amount": 1}})

    assert result.denies
    assert result.error.startswith(WHEN_FAILED.format(reason="TypeError: No such overload"))


def test_a_condition_that_is_not_a_bool_fails_closed():
    result = policy(when="input.amount").evaluate({"input": {"amount": 1}})

    assert result.denies
    assert result.error == WHEN_NOT_BOOL.format(type_name="int")


def test_a_null_condition_fails_closed():
    result = policy(when="input.missing").evaluate({"input": {"missing": None}})

    assert result.error == WHEN_NOT_BOOL.format(type_name="null")


def test_a_warn_whose_condition_fails_denies():
    result = policy(effect="warn").evaluate({"input": {}})

    assert (result.effect, result.fired, result.denies) == ("deny", True, True)
    assert result.error == WHEN_FAILED.format(reason="no such key: amount")


def test_a_redact_whose_condition_fails_denies_and_redacts_nothing():
    redaction = compile_policy(
        {"name": "r", "stage": "pre", "effect": "redact", "when": "caller.role == 'x'", "fields": ["a"]}
    )

    result = redaction.evaluate({"input": {"a": 1}, "caller": {}})

    assert (result.effect, result.denies, result.redacted) == ("deny", True, [])
    assert result.error == WHEN_FAILED.format(reason="no such key: role")


def test_a_post_policy_evaluated_without_output_fails_closed():
    result = compile_policy(ALLOWED_QUEUES).evaluate({"input": {}})

    assert result.denies
    assert result.error.startswith(WHEN_FAILED.format(reason="RuntimeError: Undefined variable or function"))


def test_caller_pipeline_and_bundle_are_readable():
    gate = policy(when="caller.role == 'intern' && pipeline == 'triage' && bundle.version == '1.2.0'")
    variables = {"caller": {"role": "intern"}, "pipeline": "triage", "bundle": {"version": "1.2.0"}}

    assert gate.evaluate(variables).fired


def test_a_default_message_names_the_policy():
    result = compile_policy({**AMOUNT_LIMIT, "message": None}).evaluate({"input": {"amount": 10**6}})

    assert result.message == DEFAULT_MESSAGES["deny"].format(name="amount-limit")


def test_evaluation_shares_one_context_and_sees_rebound_variables():
    context = EvaluationContext({"input": {"amount": 1}})
    limit = policy()

    assert not limit.evaluate(context).fired
    context.set("input", {"amount": 10**6})

    assert limit.evaluate(context).fired


def test_evaluate_policies_stops_at_the_first_deny():
    warn = policy(name="warn-first", effect="warn")
    deny = policy()
    never = policy(name="never")

    results = evaluate_policies([warn, deny, never], {"input": {"amount": 10**6}})

    assert [result.name for result in results] == ["warn-first", "amount-limit"]


def test_evaluate_policies_can_run_them_all():
    results = evaluate_policies(
        [policy(), policy(name="b")], {"input": {"amount": 10**6}}, stop_on_deny=False
    )

    assert [result.name for result in results] == ["amount-limit", "b"]


def test_a_result_turns_into_a_json_compatible_dict():
    result = policy().evaluate({"input": {"amount": 10**6}})

    assert result.to_dict() == {
        "name": "amount-limit",
        "stage": "pre",
        "effect": "deny",
        "fired": True,
        "message": "Claims above 100k go to a human adjuster",
        "error": None,
        "redacted": [],
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, MISSING_NAME),
        ({"stage": "during"}, UNKNOWN_STAGE.format(stage="during")),
        ({"effect": "allow"}, UNKNOWN_EFFECT.format(effect="allow")),
        ({"when": None}, MISSING_WHEN.format(effect="deny")),
        ({"effect": "warn", "when": None}, MISSING_WHEN.format(effect="warn")),
        ({"effect": "redact"}, NOTHING_TO_REDACT),
        ({"fields": ["a"]}, REDACT_KEYS_WITHOUT_REDACT),
        ({"effect": "redact", "fields": "a"}, NOT_A_STRING_LIST.format(key="fields")),
        ({"when": "user.role == 'x'"}, UNKNOWN_VARIABLE.format(name="user")),
        ({"when": "output.queue == 'x'"}, OUTPUT_IN_PRE),
        ({"severity": "high"}, UNKNOWN_KEYS.format(keys="severity")),
    ],
)
def test_a_malformed_policy_is_refused_with_the_reason(overrides, message):
    with pytest.raises(PolicyDefinitionError) as caught:
        policy(**overrides)

    assert str(caught.value) == message


def test_a_policy_whose_condition_does_not_parse_raises_a_located_syntax_error():
    with pytest.raises(PolicySyntaxError) as caught:
        policy(when="input.amount >")

    assert (caught.value.line, caught.value.column) == (1, 15)


def test_a_redact_policy_needs_no_condition():
    redaction = compile_policy({"name": "r", "stage": "pre", "effect": "redact", "fields": ["a"]})

    assert redaction.when is None
    assert redaction.variables == frozenset()


def test_a_variable_cel_cannot_represent_fails_closed():
    result = policy(when="caller.role == 'x'").evaluate({"caller": {"role": {1, 2}}})

    assert result.denies
    assert result.error.startswith(WHEN_FAILED.format(reason=UNCONVERTIBLE.format(name="caller", reason="")))
