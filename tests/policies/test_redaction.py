"""Redaction: by field name or by classification, on the input (pre) or the output (post)."""

from policies import compile_policy, fields_to_redact, redact
from policies.evaluation import FAIL_CLOSED, TARGET_NOT_A_MAPPING

CLASSIFICATIONS = {"customer_email": "pii", "api_key": "secret", "claim_id": "public"}
CLAIM = {"claim_id": "C1", "customer_email": "jane@example.com", "api_key": "sk-1", "amount": 3}


def test_redact_returns_a_copy_without_the_fields_and_the_names_removed():
    redacted, removed = redact(CLAIM, ["customer_email", "api_key"])

    assert redacted == {"claim_id": "C1", "amount": 3}
    assert removed == ["customer_email", "api_key"]
    assert "customer_email" in CLAIM


def test_redact_lists_only_fields_that_were_present():
    redacted, removed = redact({"a": 1}, ["b", "a", "a"])

    assert (redacted, removed) == ({}, ["a"])


def test_redact_with_nothing_to_remove_still_returns_a_copy():
    redacted, removed = redact(CLAIM, ["nope"])

    assert (redacted, removed) == (CLAIM, [])
    assert redacted is not CLAIM


def test_fields_to_redact_adds_the_fields_with_a_listed_classification():
    assert fields_to_redact(["amount"], ["pii", "secret"], CLASSIFICATIONS) == (
        "amount",
        "customer_email",
        "api_key",
    )


def test_fields_to_redact_without_classifications_is_just_the_fields():
    assert fields_to_redact(["amount", "amount"], [], CLASSIFICATIONS) == ("amount",)


def test_a_policy_redacts_by_classification_of_the_entity():
    redaction = compile_policy(
        {"name": "no-pii", "stage": "pre", "effect": "redact", "classifications": ["pii"]}
    )

    result = redaction.evaluate({"input": CLAIM}, field_classifications=CLASSIFICATIONS)

    assert (result.effect, result.fired, result.denies) == ("redact", True, False)
    assert result.redacted == ["customer_email"]


def test_a_policy_redacts_explicit_fields():
    redaction = compile_policy(
        {"name": "r", "stage": "pre", "effect": "redact", "fields": ["api_key", "amount"]}
    )

    assert redaction.evaluate({"input": CLAIM}).redacted == ["api_key", "amount"]


def test_a_redaction_with_nothing_present_does_not_fire():
    redaction = compile_policy(
        {"name": "no-pii", "stage": "pre", "effect": "redact", "classifications": ["pii"]}
    )

    result = redaction.evaluate({"input": {"claim_id": "C1"}}, field_classifications=CLASSIFICATIONS)

    assert (result.fired, result.redacted) == (False, [])


def test_a_conditional_redaction_applies_only_when_its_condition_holds():
    redaction = compile_policy(
        {"name": "r", "stage": "pre", "effect": "redact", "when": "caller.external", "fields": ["api_key"]}
    )

    inside = redaction.evaluate({"input": CLAIM, "caller": {"external": False}})
    outside = redaction.evaluate({"input": CLAIM, "caller": {"external": True}})

    assert (inside.fired, inside.redacted) == (False, [])
    assert (outside.fired, outside.redacted) == (True, ["api_key"])


def test_a_post_redaction_targets_the_output():
    redaction = compile_policy(
        {"name": "r", "stage": "post", "effect": "redact", "classifications": ["secret"]}
    )

    result = redaction.evaluate(
        {"input": {"api_key": "in"}, "output": {"reason": "x"}}, field_classifications={"reason": "secret"}
    )

    assert result.redacted == ["reason"]


def test_a_redaction_of_a_non_object_fails_closed():
    redaction = compile_policy({"name": "r", "stage": "post", "effect": "redact", "fields": ["reason"]})

    result = redaction.evaluate({"output": ["not", "an", "object"]})

    assert result.denies
    assert result.message == FAIL_CLOSED.format(name="r")
    assert result.error == TARGET_NOT_A_MAPPING.format(variable="output")
