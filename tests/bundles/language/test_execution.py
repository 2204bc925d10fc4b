"""The pipeline engine: validation, policies, rendering, the model call, output checks and the decision."""

import copy
import hashlib
import json
import math

import pytest
import rfc8785

from bundles.language import compiler as engine
from bundles.language.compiler import (
    BAD_POLICY,
    MANIFEST_PATH,
    UNKNOWN_PIPELINE,
    UNKNOWN_REFERENCE,
    UnknownPipelineError,
    clear_bundle_cache,
    compile_bundle,
)
from bundles.language.decisions import (
    MODEL_FAILED,
    NOT_A_MODEL_RESPONSE,
    RENDER_FAILED,
    STATUS_ALLOWED,
    STATUS_DENIED,
    STATUS_ERROR,
    STATUS_INVALID_INPUT,
    STATUS_INVALID_OUTPUT,
)
from bundles.language.digest import bundle_digest
from bundles.language.errors import BundleCompileError
from bundles.language.execution import CODE_NOT_JSON, NOT_JSON, execute
from bundles.language.fields import (
    BAD_CONSTRAINT,
    BELOW_MINIMUM,
    CODE_ENUM,
    CODE_MAX_LENGTH,
    CODE_MAXIMUM,
    CODE_MIN_LENGTH,
    CODE_MINIMUM,
    CODE_OUT_OF_RANGE,
    CODE_PATTERN,
    CODE_REQUIRED,
    CODE_TYPE,
    CODE_UNKNOWN_FIELD,
    CONSTRAINT_NOT_APPLICABLE,
    NOT_IN_ENUM,
    OUT_OF_RANGE,
    PATTERN_MISMATCH,
    REQUIRED,
    TOO_LONG,
    TOO_SHORT,
    UNKNOWN_FIELD,
    WRONG_TYPE,
)
from bundles.language.models import ModelError, ModelRequest, ModelResponse
from policies.evaluation import FAIL_CLOSED, UNKNOWN_VARIABLE, WHEN_FAILED

TRIAGE_ANSWER = '{"queue": "auto", "reason": "collision"}'
TRIAGE_SYSTEM = 'You route insurance claims. Answer only with JSON {"queue": "...", "reason": "..."}.'
SMALL_CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}
CLAIM_WITH_EMAIL = {**SMALL_CLAIM, "customer_email": "jane.doe@example.com"}
# A prompt that shows the model every field it receives, so a leak would be visible.
EVERY_FIELD_PROMPT = "{% for key, value in input|dictsort %}{{ key }}={{ value }}\n{% endfor %}"


def claims_triage_content():
    """Return the parsed content of the claims-triage bundle of DESIGN §5 (a fresh copy)."""
    return copy.deepcopy(
        {
            "bundle.yaml": {
                "apiVersion": "contractor/v1",
                "name": "claims-triage",
                "version": "1.2.0",
                "description": "Route insurance claims to the right queue",
                "pipelines": [
                    {
                        "name": "triage",
                        "input": "Claim",
                        "output": "TriageDecision",
                        "template": "triage",
                        "model": {
                            "endpoint": "default",
                            "name": "small-model",
                            "temperature": 0,
                            "seed": 7,
                            "max_tokens": 256,
                        },
                        "policies": ["amount-limit", "no-pii-to-model", "allowed-queues"],
                    }
                ],
            },
            "ontology.yaml": {
                "concepts": [
                    {"name": "Claim", "description": "An insurance claim submitted by a policyholder"},
                    {"name": "Queue", "description": "A work queue of adjusters"},
                ],
                "relations": [{"name": "routed_to", "from": "Claim", "to": "Queue"}],
            },
            "entities/claim.yaml": {
                "name": "Claim",
                "concept": "Claim",
                "fields": {
                    "claim_id": {"type": "string", "required": True, "pattern": "^C[0-9]+$"},
                    "amount": {"type": "number", "minimum": 0, "required": True},
                    "description": {"type": "string", "maxLength": 4000, "required": True},
                    "customer_email": {"type": "string", "classification": "pii"},
                },
            },
            "entities/triage-decision.yaml": {
                "name": "TriageDecision",
                "concept": "Queue",
                "fields": {
                    "queue": {"type": "string", "enum": ["auto", "home", "fraud-review"], "required": True},
                    "reason": {"type": "string", "maxLength": 500},
                },
            },
            "templates/triage.yaml": {
                "name": "triage",
                "system": TRIAGE_SYSTEM,
                "prompt": "Claim {{ input.claim_id }} for {{ input.amount }}: {{ input.description }}\n",
            },
            "policies/amount-limit.yaml": {
                "name": "amount-limit",
                "stage": "pre",
                "effect": "deny",
                "when": "input.amount > 100000",
                "message": "Claims above 100k go to a human adjuster",
            },
            "policies/no-pii-to-model.yaml": {
                "name": "no-pii-to-model",
                "stage": "pre",
                "effect": "redact",
                "classifications": ["pii"],
            },
            "policies/allowed-queues.yaml": {
                "name": "allowed-queues",
                "stage": "post",
                "effect": "deny",
                "when": "!(output.queue in ['auto', 'home'])",
                "message": "The model may only route to auto or home",
            },
            "suites/golden.yaml": {
                "name": "golden",
                "pipeline": "triage",
                "thresholds": {"pass_rate": 1.0},
                "cases": [
                    {
                        "name": "small-collision",
                        "input": {
                            "claim_id": "C1",
                            "amount": 1200,
                            "description": "rear-ended at a stop light",
                        },
                        "model_output": TRIAGE_ANSWER,
                        "expect": {"status": "allowed", "output": {"queue": "auto"}},
                    },
                    {
                        "name": "huge-claim",
                        "input": {"claim_id": "C2", "amount": 500000, "description": "house fire"},
                        "expect": {"status": "denied", "denied_by": "amount-limit"},
                    },
                ],
            },
        }
    )


def with_policies(content, names, *policies):
    """Return `content` whose triage pipeline lists `names`, with `policies` added as files."""
    content["bundle.yaml"]["pipelines"][0]["policies"] = list(names)
    for policy in policies:
        content[f"policies/{policy['name']}.yaml"] = policy
    return content


class RecordingModel:
    """A model that answers a fixed text and keeps every request it received."""

    def __init__(self, text=TRIAGE_ANSWER, prompt_tokens=40, completion_tokens=9):
        self.response = ModelResponse(text, prompt_tokens, completion_tokens)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        return self.response


class FailingModel:
    """A model whose provider is down."""

    def __call__(self, request):
        raise ModelError("HTTP 500 from provider")


@pytest.fixture
def bundle():
    return compile_bundle(claims_triage_content())


@pytest.fixture
def model():
    return RecordingModel()


def run(bundle, input, model, **kwargs):
    """Execute the triage pipeline."""
    return execute(bundle, "triage", input, model, **kwargs)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the allowed path --------------------------------------------------------------------------------


def test_an_allowed_decision_carries_output_policies_hashes_params_and_usage(bundle, model):
    decision = run(bundle, SMALL_CLAIM, model)

    assert decision.status == STATUS_ALLOWED
    assert decision.output == {"queue": "auto", "reason": "collision"}
    assert decision.denied_by is None
    assert decision.reason is None
    assert decision.errors == []
    assert [(p["name"], p["fired"]) for p in decision.policies] == [
        ("amount-limit", False),
        ("no-pii-to-model", False),
        ("allowed-queues", False),
    ]
    assert decision.model == {
        "endpoint": "default",
        "name": "small-model",
        "temperature": 0,
        "seed": 7,
        "max_tokens": 256,
    }
    assert decision.usage == {"prompt_tokens": 40, "completion_tokens": 9}
    assert decision.bundle == {"name": "claims-triage", "version": "1.2.0", "digest": bundle.digest}
    assert decision.pipeline == "triage"


def test_the_model_receives_the_rendered_system_prompt_and_the_pipeline_params(bundle, model):
    run(bundle, SMALL_CLAIM, model)

    assert model.requests == [
        ModelRequest(
            system=TRIAGE_SYSTEM,
            prompt="Claim C1 for 1200: rear-ended at a stop light\n",
            params={
                "endpoint": "default",
                "name": "small-model",
                "temperature": 0,
                "seed": 7,
                "max_tokens": 256,
            },
        )
    ]


def test_the_hashes_cover_the_original_input_the_prompt_and_the_raw_model_text(bundle, model):
    decision = run(bundle, CLAIM_WITH_EMAIL, model)
    request = model.requests[0]

    assert decision.hashes == {
        "input": sha256_hex(rfc8785.dumps(CLAIM_WITH_EMAIL)),
        "prompt": sha256_hex(rfc8785.dumps({"system": request.system, "prompt": request.prompt})),
        "output": sha256_hex(TRIAGE_ANSWER.encode()),
    }


def test_the_decision_dict_is_json_and_its_hash_covers_it(bundle, model):
    decision = run(bundle, SMALL_CLAIM, model)
    record = decision.to_dict()

    assert json.loads(json.dumps(record)) == record
    assert "timings" not in record
    unhashed = {key: value for key, value in record.items() if key != "decision_hash"}
    assert record["decision_hash"] == sha256_hex(rfc8785.dumps(unhashed))


def test_phase_timings_are_recorded_outside_the_record(bundle, model):
    decision = run(bundle, SMALL_CLAIM, model)

    assert set(decision.timings) == {"validation", "policies", "rendering", "model", "parsing", "hashing"}
    assert all(isinstance(spent, int) and spent >= 0 for spent in decision.timings.values())


# --- determinism -------------------------------------------------------------------------------------


def test_the_same_inputs_give_the_same_decision_hash(bundle):
    first = run(bundle, SMALL_CLAIM, RecordingModel())
    second = run(
        compile_bundle(claims_triage_content()), dict(reversed(SMALL_CLAIM.items())), RecordingModel()
    )

    assert first.decision_hash == second.decision_hash
    assert first.to_dict() == second.to_dict()


def test_a_different_input_gives_a_different_decision_hash(bundle):
    first = run(bundle, SMALL_CLAIM, RecordingModel())
    second = run(bundle, {**SMALL_CLAIM, "amount": 1201}, RecordingModel())

    assert first.hashes["input"] != second.hashes["input"]
    assert first.decision_hash != second.decision_hash


def test_a_different_model_answer_gives_a_different_decision_hash(bundle):
    first = run(bundle, SMALL_CLAIM, RecordingModel())
    second = run(bundle, SMALL_CLAIM, RecordingModel('{"queue": "auto", "reason": "bump"}'))

    assert first.decision_hash != second.decision_hash


def test_another_bundle_version_gives_a_different_decision_hash(model):
    content = claims_triage_content()
    changed = claims_triage_content()
    changed["bundle.yaml"]["version"] = "1.2.1"

    first = run(compile_bundle(content), SMALL_CLAIM, model)
    second = run(compile_bundle(changed), SMALL_CLAIM, model)

    assert first.bundle["digest"] != second.bundle["digest"]
    assert first.decision_hash != second.decision_hash


# --- pre policies ------------------------------------------------------------------------------------


def test_a_pre_deny_stops_before_the_model(bundle, model):
    decision = run(bundle, {**SMALL_CLAIM, "amount": 500000}, model)

    assert decision.status == STATUS_DENIED
    assert decision.denied_by == "amount-limit"
    assert decision.output is None
    assert model.requests == []
    assert decision.policies == [
        {
            "name": "amount-limit",
            "stage": "pre",
            "effect": "deny",
            "fired": True,
            "message": "Claims above 100k go to a human adjuster",
            "error": None,
            "redacted": [],
        }
    ]
    assert decision.hashes["prompt"] is None
    assert decision.hashes["output"] is None


def test_redaction_by_classification_happens_before_the_model_sees_the_prompt(model):
    content = claims_triage_content()
    content["templates/triage.yaml"]["prompt"] = EVERY_FIELD_PROMPT

    decision = run(compile_bundle(content), CLAIM_WITH_EMAIL, model)

    prompt = model.requests[0].prompt
    assert "customer_email" not in prompt
    assert "jane.doe" not in prompt
    assert prompt == "amount=1200\nclaim_id=C1\ndescription=rear-ended at a stop light\n"
    assert decision.status == STATUS_ALLOWED
    assert decision.redactions == ["customer_email"]
    assert decision.policies[1]["redacted"] == ["customer_email"]


def test_without_the_redaction_policy_the_model_would_see_the_email(model):
    content = with_policies(claims_triage_content(), ["amount-limit", "allowed-queues"])
    content["templates/triage.yaml"]["prompt"] = EVERY_FIELD_PROMPT

    run(compile_bundle(content), CLAIM_WITH_EMAIL, model)

    assert "customer_email=jane.doe@example.com" in model.requests[0].prompt


def test_redaction_by_explicit_fields_happens_before_the_model_sees_the_prompt(model):
    by_fields = {"name": "drop-description", "stage": "pre", "effect": "redact", "fields": ["description"]}
    content = with_policies(claims_triage_content(), ["drop-description"], by_fields)
    content["templates/triage.yaml"]["prompt"] = EVERY_FIELD_PROMPT

    decision = run(compile_bundle(content), SMALL_CLAIM, model)

    assert model.requests[0].prompt == "amount=1200\nclaim_id=C1\n"
    assert decision.redactions == ["description"]


def test_pre_policies_read_the_original_input_even_after_a_redaction(model):
    watch_email = {
        "name": "watch-email",
        "stage": "pre",
        "effect": "warn",
        "when": "input.customer_email.endsWith('@example.com')",
    }
    content = with_policies(claims_triage_content(), ["no-pii-to-model", "watch-email"], watch_email)

    decision = run(compile_bundle(content), CLAIM_WITH_EMAIL, model)

    assert decision.status == STATUS_ALLOWED
    assert [(p["name"], p["effect"], p["fired"]) for p in decision.policies] == [
        ("no-pii-to-model", "redact", True),
        ("watch-email", "warn", True),
    ]


def test_a_template_reading_a_redacted_field_is_an_error_not_a_leak(model):
    content = claims_triage_content()
    content["templates/triage.yaml"]["prompt"] = "Write to {{ input.customer_email }}"

    decision = run(compile_bundle(content), CLAIM_WITH_EMAIL, model)

    assert decision.status == STATUS_ERROR
    assert decision.reason == RENDER_FAILED.format(
        template="triage", reason="UndefinedError: 'dict object' has no attribute 'customer_email'"
    )
    assert model.requests == []
    assert "jane" not in json.dumps(decision.to_dict())


def test_a_fired_warn_is_recorded_and_the_execution_goes_on(model):
    warn = {"name": "big", "stage": "pre", "effect": "warn", "when": "input.amount > 1000", "message": "big"}
    content = with_policies(claims_triage_content(), ["big", "allowed-queues"], warn)

    decision = run(compile_bundle(content), SMALL_CLAIM, model)

    assert decision.status == STATUS_ALLOWED
    assert decision.policies[0] == {
        "name": "big",
        "stage": "pre",
        "effect": "warn",
        "fired": True,
        "message": "big",
        "error": None,
        "redacted": [],
    }
    assert decision.fired == ["big"]


def test_a_warn_whose_condition_fails_denies_the_execution(model):
    broken = {"name": "broken", "stage": "pre", "effect": "warn", "when": "input.customer_email == 'x'"}
    content = with_policies(claims_triage_content(), ["broken"], broken)

    decision = run(compile_bundle(content), SMALL_CLAIM, model)

    assert decision.status == STATUS_DENIED
    assert decision.denied_by == "broken"
    assert decision.policies[0]["message"] == FAIL_CLOSED.format(name="broken")
    assert decision.policies[0]["error"] == WHEN_FAILED.format(reason="no such key: customer_email")
    assert model.requests == []


def test_policies_read_the_caller(model):
    interns = {"name": "no-interns", "stage": "pre", "effect": "deny", "when": "caller.role == 'intern'"}
    bundle = compile_bundle(with_policies(claims_triage_content(), ["no-interns"], interns))

    denied = run(bundle, SMALL_CLAIM, model, caller={"role": "intern"})
    allowed = run(bundle, SMALL_CLAIM, model, caller={"role": "adjuster"})
    anonymous = run(bundle, SMALL_CLAIM, model)

    assert (denied.status, allowed.status) == (STATUS_DENIED, STATUS_ALLOWED)
    assert anonymous.status == STATUS_DENIED
    assert anonymous.policies[0]["error"] == WHEN_FAILED.format(reason="no such key: role")


def test_policies_read_the_pipeline_and_bundle_identity(model):
    identity = {
        "name": "identity",
        "stage": "pre",
        "effect": "warn",
        "when": "pipeline == 'triage' && bundle.name == 'claims-triage' && bundle.version == '1.2.0'",
    }
    bundle = compile_bundle(with_policies(claims_triage_content(), ["identity"], identity))

    assert run(bundle, SMALL_CLAIM, model).fired == ["identity"]


# --- post policies -----------------------------------------------------------------------------------


def test_a_post_deny_withholds_the_output(bundle):
    decision = run(bundle, SMALL_CLAIM, RecordingModel('{"queue": "fraud-review", "reason": "odd"}'))

    assert decision.status == STATUS_DENIED
    assert decision.denied_by == "allowed-queues"
    assert decision.output is None
    assert decision.hashes["output"] == sha256_hex(b'{"queue": "fraud-review", "reason": "odd"}')


def test_a_post_warn_keeps_the_output(model):
    warn = {"name": "home-check", "stage": "post", "effect": "warn", "when": "output.queue == 'auto'"}
    bundle = compile_bundle(with_policies(claims_triage_content(), ["home-check"], warn))

    decision = run(bundle, SMALL_CLAIM, model)

    assert decision.status == STATUS_ALLOWED
    assert decision.output == {"queue": "auto", "reason": "collision"}
    assert decision.fired == ["home-check"]


def test_a_post_redaction_removes_output_fields_by_classification(model):
    content = claims_triage_content()
    content["entities/triage-decision.yaml"]["fields"]["reason"]["classification"] = "secret"
    no_secrets = {
        "name": "no-secrets-out",
        "stage": "post",
        "effect": "redact",
        "classifications": ["secret"],
    }
    bundle = compile_bundle(with_policies(content, ["no-pii-to-model", "no-secrets-out"], no_secrets))

    decision = run(bundle, CLAIM_WITH_EMAIL, model)

    assert decision.status == STATUS_ALLOWED
    assert decision.output == {"queue": "auto"}
    assert decision.redactions == ["customer_email", "reason"]
    assert decision.policies[1]["redacted"] == ["reason"]


def test_post_policies_read_the_input_and_the_output(model):
    consistent = {
        "name": "consistent",
        "stage": "post",
        "effect": "deny",
        "when": "input.amount > 1000 && output.queue == 'auto'",
    }
    bundle = compile_bundle(with_policies(claims_triage_content(), ["consistent"], consistent))

    assert run(bundle, SMALL_CLAIM, model).denied_by == "consistent"


# --- invalid input -----------------------------------------------------------------------------------


def input_errors(bundle, input):
    decision = run(bundle, input, RecordingModel())
    assert decision.status == STATUS_INVALID_INPUT
    assert decision.output is None
    assert decision.policies == []
    return decision.errors


def test_invalid_input_lists_every_error_precisely_and_never_reaches_the_model(bundle, model):
    decision = run(bundle, {"claim_id": "X-9", "amount": -5, "extra": 1}, model)

    assert decision.status == STATUS_INVALID_INPUT
    assert model.requests == []
    assert decision.errors == [
        {"path": "claim_id", "code": CODE_PATTERN, "message": PATTERN_MISMATCH.format(pattern="^C[0-9]+$")},
        {"path": "amount", "code": CODE_MINIMUM, "message": BELOW_MINIMUM.format(limit=0)},
        {"path": "extra", "code": CODE_UNKNOWN_FIELD, "message": UNKNOWN_FIELD.format(entity="Claim")},
        {"path": "description", "code": CODE_REQUIRED, "message": REQUIRED},
    ]


def test_an_input_that_is_not_an_object_is_invalid(bundle):
    assert input_errors(bundle, ["C1"]) == [
        {"path": "", "code": CODE_TYPE, "message": WRONG_TYPE.format(expected="object", actual="array")}
    ]


def test_a_boolean_is_not_a_number(bundle):
    assert input_errors(bundle, {**SMALL_CLAIM, "amount": True}) == [
        {
            "path": "amount",
            "code": CODE_TYPE,
            "message": WRONG_TYPE.format(expected="number", actual="boolean"),
        }
    ]


def test_a_string_field_refuses_a_number(bundle):
    assert input_errors(bundle, {**SMALL_CLAIM, "claim_id": 1}) == [
        {
            "path": "claim_id",
            "code": CODE_TYPE,
            "message": WRONG_TYPE.format(expected="string", actual="integer"),
        }
    ]


def test_a_pattern_anchored_with_dollar_refuses_a_trailing_newline(bundle):
    assert input_errors(bundle, {**SMALL_CLAIM, "claim_id": "C1\n"}) == [
        {"path": "claim_id", "code": CODE_PATTERN, "message": PATTERN_MISMATCH.format(pattern="^C[0-9]+$")}
    ]


def test_a_too_long_string_is_invalid(bundle):
    assert input_errors(bundle, {**SMALL_CLAIM, "description": "x" * 4001}) == [
        {
            "path": "description",
            "code": CODE_MAX_LENGTH,
            "message": TOO_LONG.format(limit=4000, unit="characters"),
        }
    ]


def test_null_counts_as_absent(bundle, model):
    assert input_errors(bundle, {**SMALL_CLAIM, "claim_id": None}) == [
        {"path": "claim_id", "code": CODE_REQUIRED, "message": REQUIRED}
    ]
    assert run(bundle, {**SMALL_CLAIM, "customer_email": None}, model).status == STATUS_ALLOWED


@pytest.mark.parametrize("amount", [math.nan, math.inf, 2**53])
def test_numbers_outside_i_json_are_refused_and_still_hashed(bundle, amount):
    decision = run(bundle, {**SMALL_CLAIM, "amount": amount}, RecordingModel())

    assert decision.errors == [{"path": "amount", "code": CODE_OUT_OF_RANGE, "message": OUT_OF_RANGE}]
    assert len(decision.hashes["input"]) == 64


def rich_bundle():
    """Return a bundle whose input entity uses every field type and constraint."""
    content = claims_triage_content()
    content["entities/claim.yaml"]["fields"].update(
        {
            "priority": {"type": "integer", "minimum": 1, "maximum": 5},
            "urgent": {"type": "boolean"},
            "channel": {"type": "string", "enum": ["web", "phone"]},
            "note": {"type": "string", "minLength": 3},
            "tags": {
                "type": "array",
                "minLength": 1,
                "maxLength": 2,
                "items": {"type": "string", "maxLength": 4},
            },
        }
    )
    return compile_bundle(content)


def test_every_constraint_reports_its_own_code():
    errors = input_errors(
        rich_bundle(),
        {
            **SMALL_CLAIM,
            "priority": 9,
            "urgent": "yes",
            "channel": "fax",
            "note": "hi",
            "tags": ["ok", "toolong", 3],
        },
    )

    assert errors == [
        {"path": "priority", "code": CODE_MAXIMUM, "message": "must be <= 5"},
        {
            "path": "urgent",
            "code": CODE_TYPE,
            "message": WRONG_TYPE.format(expected="boolean", actual="string"),
        },
        {"path": "channel", "code": CODE_ENUM, "message": NOT_IN_ENUM.format(choices='"web", "phone"')},
        {"path": "note", "code": CODE_MIN_LENGTH, "message": TOO_SHORT.format(limit=3, unit="characters")},
        {"path": "tags", "code": CODE_MAX_LENGTH, "message": TOO_LONG.format(limit=2, unit="items")},
        {"path": "tags[1]", "code": CODE_MAX_LENGTH, "message": TOO_LONG.format(limit=4, unit="characters")},
        {
            "path": "tags[2]",
            "code": CODE_TYPE,
            "message": WRONG_TYPE.format(expected="string", actual="integer"),
        },
    ]


def test_an_integer_field_accepts_an_integral_float_and_refuses_a_fraction():
    bundle = rich_bundle()

    assert run(bundle, {**SMALL_CLAIM, "priority": 2.0}, RecordingModel()).status == STATUS_ALLOWED
    assert input_errors(bundle, {**SMALL_CLAIM, "priority": 2.5}) == [
        {
            "path": "priority",
            "code": CODE_TYPE,
            "message": WRONG_TYPE.format(expected="integer", actual="number"),
        }
    ]


def test_error_messages_never_echo_the_value(bundle):
    errors = input_errors(bundle, {**SMALL_CLAIM, "claim_id": "secret-123", "description": "s3cr3t" * 1000})

    assert "secret-123" not in json.dumps(errors)
    assert "s3cr3t" not in json.dumps(errors)


# --- the model and its output ------------------------------------------------------------------------


def test_a_model_error_is_an_error_decision_with_the_reason(bundle):
    decision = run(bundle, SMALL_CLAIM, FailingModel())

    assert decision.status == STATUS_ERROR
    assert decision.reason == MODEL_FAILED.format(reason="HTTP 500 from provider")
    assert decision.output is None
    assert decision.hashes["output"] is None
    assert decision.hashes["prompt"] is not None


def test_a_model_returning_something_else_than_a_response_is_an_error(bundle):
    decision = run(bundle, SMALL_CLAIM, lambda request: TRIAGE_ANSWER)

    assert decision.status == STATUS_ERROR
    assert decision.reason == NOT_A_MODEL_RESPONSE.format(type_name="str")


def test_an_answer_in_prose_is_invalid_output(bundle):
    decision = run(bundle, SMALL_CLAIM, RecordingModel("I think auto."))

    assert decision.status == STATUS_INVALID_OUTPUT
    assert decision.output is None
    assert decision.errors == [
        {
            "path": "",
            "code": CODE_NOT_JSON,
            "message": NOT_JSON.format(reason="Expecting value: line 1 column 1 (char 0)"),
        }
    ]
    assert [p["name"] for p in decision.policies] == ["amount-limit", "no-pii-to-model"]


def test_an_answer_breaking_the_output_entity_is_invalid_output(bundle):
    decision = run(bundle, SMALL_CLAIM, RecordingModel('{"queue": "theft", "confidence": 1}'))

    assert decision.status == STATUS_INVALID_OUTPUT
    assert decision.errors == [
        {
            "path": "queue",
            "code": CODE_ENUM,
            "message": NOT_IN_ENUM.format(choices='"auto", "home", "fraud-review"'),
        },
        {
            "path": "confidence",
            "code": CODE_UNKNOWN_FIELD,
            "message": UNKNOWN_FIELD.format(entity="TriageDecision"),
        },
    ]


def test_an_answer_that_is_not_an_object_is_invalid_output(bundle):
    decision = run(bundle, SMALL_CLAIM, RecordingModel('["auto"]'))

    assert decision.errors == [
        {"path": "", "code": CODE_TYPE, "message": WRONG_TYPE.format(expected="object", actual="array")}
    ]


def test_nan_in_an_answer_is_not_json(bundle):
    decision = run(bundle, SMALL_CLAIM, RecordingModel('{"queue": "auto", "reason": NaN}'))

    assert decision.status == STATUS_INVALID_OUTPUT
    assert decision.errors[0]["code"] == CODE_NOT_JSON


@pytest.mark.parametrize(
    "text",
    [
        '  \n{"queue": "auto", "reason": "collision"}\n\n',
        '```json\n{"queue": "auto", "reason": "collision"}\n```',
        '\n```\n{"queue": "auto", "reason": "collision"}\n```  \n',
    ],
)
def test_whitespace_and_a_json_fence_around_the_answer_are_tolerated(bundle, text):
    decision = run(bundle, SMALL_CLAIM, RecordingModel(text))

    assert decision.status == STATUS_ALLOWED
    assert decision.output == {"queue": "auto", "reason": "collision"}
    assert decision.hashes["output"] == sha256_hex(text.encode())


# --- compiling ---------------------------------------------------------------------------------------


def test_an_unknown_pipeline_is_refused(bundle, model):
    with pytest.raises(UnknownPipelineError) as caught:
        execute(bundle, "nope", SMALL_CLAIM, model)

    assert str(caught.value) == UNKNOWN_PIPELINE.format(bundle="claims-triage", pipeline="nope")


def test_compiled_bundles_are_cached_by_digest():
    content = claims_triage_content()

    first = compile_bundle(content, "sha256:abc")
    second = compile_bundle(claims_triage_content(), "sha256:abc")

    assert second is first
    assert first.digest == "sha256:abc"


def test_the_digest_is_computed_when_not_given():
    content = claims_triage_content()

    bundle = compile_bundle(content)

    assert bundle.digest == bundle_digest(content)
    assert bundle.digest == "sha256:" + sha256_hex(rfc8785.dumps(content))


def test_the_bundle_cache_is_bounded(monkeypatch):
    clear_bundle_cache()
    monkeypatch.setattr(engine, "BUNDLE_CACHE_SIZE", 2)
    first = compile_bundle(claims_triage_content(), "sha256:1")
    compile_bundle(claims_triage_content(), "sha256:2")
    compile_bundle(claims_triage_content(), "sha256:3")

    assert compile_bundle(claims_triage_content(), "sha256:1") is not first


def test_a_pipeline_with_an_unknown_policy_does_not_compile():
    content = with_policies(claims_triage_content(), ["amount-limit", "ghost"])

    with pytest.raises(BundleCompileError) as caught:
        compile_bundle(content)

    assert caught.value.file == MANIFEST_PATH
    assert caught.value.message == UNKNOWN_REFERENCE.format(pipeline="triage", kind="policy", name="ghost")


def test_a_policy_that_does_not_compile_names_its_file():
    content = claims_triage_content()
    content["policies/amount-limit.yaml"]["when"] = "user.amount > 1"

    with pytest.raises(BundleCompileError) as caught:
        compile_bundle(content)

    assert caught.value.file == "policies/amount-limit.yaml"
    assert caught.value.message == BAD_POLICY.format(reason=UNKNOWN_VARIABLE.format(name="user"))


def test_a_constraint_of_another_type_does_not_compile():
    content = claims_triage_content()
    content["entities/claim.yaml"]["fields"]["amount"]["pattern"] = "^[0-9]+$"

    with pytest.raises(BundleCompileError) as caught:
        compile_bundle(content)

    assert caught.value.file == "entities/claim.yaml"
    assert caught.value.message == CONSTRAINT_NOT_APPLICABLE.format(
        field="amount", constraint="pattern", type="number"
    )


def test_a_constraint_with_a_value_of_the_wrong_kind_does_not_compile():
    content = claims_triage_content()
    content["entities/claim.yaml"]["fields"]["amount"]["minimum"] = "0"

    with pytest.raises(BundleCompileError) as caught:
        compile_bundle(content)

    assert caught.value.message == BAD_CONSTRAINT.format(
        field="amount", constraint="minimum", expected="a number"
    )
