"""Suites: replayed model answers through the engine, assertions, pass rate, policy coverage, thresholds."""

import json
from pathlib import Path

import pytest
import yaml

from bundles.language.compiler import compile_bundle
from bundles.language.suites import (
    BAD_THRESHOLD,
    CALLER_NOT_A_MAPPING,
    CEL_FAILED,
    CEL_FALSE,
    CEL_NOT_BOOL,
    CEL_SYNTAX,
    DENIED_BY_MISMATCH,
    NO_ASSERTIONS,
    NO_MODEL_OUTPUT,
    NOT_REDACTED,
    OUTPUT_MISMATCH,
    OUTPUT_MISSING_KEY,
    STATUS_MISMATCH,
    UNKNOWN_ASSERTION,
    UNKNOWN_PIPELINE,
    format_report,
    run_suites,
)
from tests.bundles.language.test_execution import TRIAGE_ANSWER, claims_triage_content

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SMALL = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}
WITH_EMAIL = {**SMALL, "customer_email": "jane@example.com"}


def case(name="c", input=SMALL, model_output=TRIAGE_ANSWER, **expect):
    """Return a suite case."""
    entry = {"name": name, "input": input, "expect": expect}
    if model_output is not None:
        entry["model_output"] = model_output
    return entry


def report_for(*cases, thresholds=None, pipeline="triage", content=None):
    """Return the report of a bundle with one suite holding `cases`."""
    content = content or claims_triage_content()
    suite = {"name": "s", "pipeline": pipeline, "cases": list(cases)}
    if thresholds is not None:
        suite["thresholds"] = thresholds
    content["suites/golden.yaml"] = suite
    return run_suites(compile_bundle(content))


def failures_of(*cases, **kwargs):
    """Return the failures of each case."""
    return [result.failures for result in report_for(*cases, **kwargs).suites[0].cases]


def test_the_design_golden_suite_passes_with_its_coverage():
    report = run_suites(compile_bundle(claims_triage_content()))

    suite = report.suites[0]
    assert report.passed
    assert [(c.name, c.passed, c.status) for c in suite.cases] == [
        ("small-collision", True, "allowed"),
        ("huge-claim", True, "denied"),
    ]
    assert suite.pass_rate == 1.0
    assert suite.covered == ["amount-limit"]
    assert suite.uncovered == ["no-pii-to-model", "allowed-queues"]
    assert suite.policy_coverage == pytest.approx(1 / 3)


# --- status and denied_by ----------------------------------------------------------------------------


def test_a_status_assertion_passes_and_fails():
    assert failures_of(case(status="allowed"), case(status="denied")) == [
        [],
        [STATUS_MISMATCH.format(expected="denied", actual="allowed")],
    ]


def test_a_denied_by_assertion_passes_and_fails():
    huge = {**SMALL, "amount": 500000}

    assert failures_of(
        case(input=huge, model_output=None, denied_by="amount-limit"),
        case(input=huge, model_output=None, denied_by="allowed-queues"),
    ) == [[], [DENIED_BY_MISMATCH.format(expected="allowed-queues", actual="amount-limit")]]


# --- output ------------------------------------------------------------------------------------------


def test_an_output_assertion_is_a_subset_match():
    assert failures_of(
        case(output={"queue": "auto"}), case(output={"queue": "auto", "reason": "collision"})
    ) == [
        [],
        [],
    ]


def test_an_output_mismatch_names_the_path_and_both_values():
    assert failures_of(case(output={"queue": "home", "confidence": 1})) == [
        [
            OUTPUT_MISMATCH.format(path=".queue", expected='"home"', actual='"auto"'),
            OUTPUT_MISSING_KEY.format(path=".confidence"),
        ]
    ]


def test_an_output_assertion_fails_when_there_is_no_output():
    denied = {**SMALL, "amount": 500000}

    assert failures_of(case(input=denied, model_output=None, output={"queue": "auto"})) == [
        [OUTPUT_MISMATCH.format(path="", expected='{"queue": "auto"}', actual="null")]
    ]


def test_nested_output_is_matched_recursively_and_lists_item_by_item():
    content = claims_triage_content()
    content["entities/triage-decision.yaml"]["fields"]["tags"] = {
        "type": "array",
        "items": {"type": "string"},
    }
    answer = '{"queue": "auto", "tags": ["a", "b"]}'

    assert failures_of(
        case(model_output=answer, output={"tags": ["a", "b"]}),
        case(model_output=answer, output={"tags": ["a", "c"]}),
        case(model_output=answer, output={"tags": ["a"]}),
        content=content,
    ) == [
        [],
        [OUTPUT_MISMATCH.format(path=".tags[1]", expected='"c"', actual='"b"')],
        [OUTPUT_MISMATCH.format(path=".tags", expected='["a"]', actual='["a", "b"]')],
    ]


# --- redacted ----------------------------------------------------------------------------------------


def test_a_redacted_assertion_passes_when_the_field_was_redacted():
    assert failures_of(case(input=WITH_EMAIL, redacted=["customer_email"])) == [[]]


def test_a_redacted_assertion_fails_when_the_field_was_not_redacted():
    assert failures_of(case(redacted=["customer_email"])) == [
        [NOT_REDACTED.format(field="customer_email", actual=[])]
    ]


# --- cel ---------------------------------------------------------------------------------------------


def test_a_cel_assertion_over_input_output_and_decision_passes():
    expression = "output.queue == 'auto' && input.amount < 5000 && decision.status == 'allowed'"

    assert failures_of(case(cel=expression), case(cel=[expression, "size(decision.policies) == 3"])) == [
        [],
        [],
    ]


def test_a_false_cel_assertion_fails():
    assert failures_of(case(cel="output.queue == 'home'")) == [
        [CEL_FALSE.format(expression="output.queue == 'home'")]
    ]


def test_a_cel_assertion_that_does_not_parse_fails_with_its_position():
    failures = failures_of(case(cel="output.queue =="))[0]

    assert len(failures) == 1
    assert failures[0].startswith(
        CEL_SYNTAX.format(expression="output.queue ==", line=1, column=16, message="")
    )


def test_a_cel_assertion_that_cannot_be_evaluated_fails_with_the_reason():
    assert failures_of(case(cel="output.confidence > 0.5")) == [
        [CEL_FAILED.format(expression="output.confidence > 0.5", reason="no such key: confidence")]
    ]


def test_a_cel_assertion_that_is_not_a_bool_fails():
    assert failures_of(case(cel="output.queue")) == [
        [CEL_NOT_BOOL.format(expression="output.queue", type_name="str")]
    ]


# --- case errors -------------------------------------------------------------------------------------


def test_a_case_reaching_the_model_without_a_recorded_output_is_a_case_error():
    assert failures_of(case(model_output=None, status="allowed")) == [[NO_MODEL_OUTPUT]]


def test_a_case_denied_before_the_model_needs_no_recorded_output():
    assert failures_of(case(input={**SMALL, "amount": 500000}, model_output=None, status="denied")) == [[]]


def test_a_recorded_output_may_be_written_as_a_mapping():
    assert failures_of(case(model_output={"queue": "home"}, output={"queue": "home"})) == [[]]


def test_a_case_without_assertions_fails():
    assert failures_of(case()) == [[NO_ASSERTIONS]]


def test_an_unknown_assertion_fails():
    assert failures_of(case(status="allowed", outputs={"queue": "auto"})) == [
        [UNKNOWN_ASSERTION.format(key="outputs")]
    ]


def test_a_case_can_set_the_caller():
    interns = {"name": "no-interns", "stage": "pre", "effect": "deny", "when": "caller.role == 'intern'"}
    content = claims_triage_content()
    content["policies/no-interns.yaml"] = interns
    content["bundle.yaml"]["pipelines"][0]["policies"] = ["no-interns"]
    intern = {**case(status="denied", denied_by="no-interns"), "caller": {"role": "intern"}}
    adjuster = {**case(status="allowed"), "caller": {"role": "adjuster"}}
    broken = {**case(status="allowed"), "caller": "intern"}

    assert failures_of(intern, adjuster, broken, content=content) == [[], [], [CALLER_NOT_A_MAPPING]]


# --- thresholds and coverage -------------------------------------------------------------------------


def test_the_default_pass_rate_threshold_is_all_cases():
    suite = report_for(case(status="allowed"), case(status="denied")).suites[0]

    assert suite.pass_rate == 0.5
    assert not suite.passed


def test_a_lower_pass_rate_threshold_accepts_some_failures():
    report = report_for(case(status="allowed"), case(status="denied"), thresholds={"pass_rate": 0.5})

    assert report.suites[0].passed
    assert report.passed


def test_coverage_counts_policies_that_fired_in_some_case():
    suite = report_for(
        case(input=WITH_EMAIL, status="allowed"),
        case(model_output='{"queue": "fraud-review"}', status="denied"),
        thresholds={"policy_coverage": 0.6},
    ).suites[0]

    assert suite.covered == ["no-pii-to-model", "allowed-queues"]
    assert suite.uncovered == ["amount-limit"]
    assert suite.policy_coverage == pytest.approx(2 / 3)
    assert suite.passed


def test_a_policy_coverage_threshold_is_enforced():
    suite = report_for(case(status="allowed"), thresholds={"policy_coverage": 1.0}).suites[0]

    assert suite.pass_rate == 1.0
    assert suite.policy_coverage == 0.0
    assert not suite.passed


def test_a_policy_that_only_failed_to_evaluate_is_not_covered():
    broken = {"name": "broken", "stage": "pre", "effect": "deny", "when": "input.customer_email == 'x'"}
    content = claims_triage_content()
    content["policies/broken.yaml"] = broken
    content["bundle.yaml"]["pipelines"][0]["policies"] = ["broken"]

    suite = report_for(case(model_output=None, status="denied"), content=content).suites[0]

    assert suite.cases[0].passed
    assert suite.uncovered == ["broken"]


def test_a_threshold_that_is_not_a_ratio_fails_the_suite():
    suite = report_for(case(status="allowed"), thresholds={"pass_rate": 2}).suites[0]

    assert suite.errors == [BAD_THRESHOLD.format(name="pass_rate")]
    assert not suite.passed


def test_a_suite_for_an_unknown_pipeline_fails():
    suite = report_for(case(status="allowed"), pipeline="ghost").suites[0]

    assert suite.errors == [UNKNOWN_PIPELINE.format(pipeline="ghost")]
    assert not suite.passed


def test_a_suite_without_cases_fails():
    suite = report_for().suites[0]

    assert suite.pass_rate == 0.0
    assert not suite.passed


# --- the report --------------------------------------------------------------------------------------


def test_the_report_dict_is_json_with_totals_and_per_case_results():
    report = report_for(case(name="ok", status="allowed"), case(name="bad", status="denied"))

    record = json.loads(json.dumps(report.to_dict()))

    assert record["passed"] is False
    assert record["bundle"]["name"] == "claims-triage"
    assert record["totals"] == {"suites": 1, "suites_passed": 0, "cases": 2, "cases_passed": 1}
    suite = record["suites"][0]
    assert suite["pass_rate"] == 0.5
    assert suite["policy_coverage"] == {
        "ratio": 0.0,
        "covered": [],
        "uncovered": ["amount-limit", "no-pii-to-model", "allowed-queues"],
        "total": 3,
    }
    assert suite["thresholds"] == {"pass_rate": 1.0, "policy_coverage": 0.0}
    bad = suite["cases"][1]
    assert (bad["name"], bad["passed"], bad["status"]) == ("bad", False, "allowed")
    assert bad["failures"] == [STATUS_MISMATCH.format(expected="denied", actual="allowed")]
    assert isinstance(bad["duration_ms"], float)


def test_the_text_report_reads_like_opa_test_verbose():
    report = report_for(case(name="ok", status="allowed"), case(name="bad", status="denied"))
    for result in report.suites[0].cases:
        result.duration_ms = 0.25

    assert format_report(report) == (
        "suites/golden.yaml: suite s (pipeline triage)\n"
        "  ok: PASS (0.2ms)\n"
        "  bad: FAIL (0.2ms)\n"
        "      status: expected 'denied', got 'allowed'\n"
        "  FAIL: 1/2 cases, pass rate 50.0% (min 100.0%), policy coverage 0/3 = 0.0% (min 0.0%)\n"
        "  not covered: amount-limit, no-pii-to-model, allowed-queues\n"
        + "-" * 80
        + "\nFAIL: 1/2 cases passed, 0/1 suites passed\n"
    )


@pytest.mark.skipif(not (EXAMPLES / "claims-triage").is_dir(), reason="the example bundle is not there yet")
def test_the_claims_triage_example_passes_its_suites_with_full_coverage():
    root = EXAMPLES / "claims-triage"
    content = {
        path.relative_to(root).as_posix(): yaml.safe_load(path.read_text())
        for path in sorted(root.rglob("*.yaml"))
    }

    report = run_suites(compile_bundle(content))

    assert report.passed, format_report(report)
    assert all(suite.policy_coverage == 1.0 for suite in report.suites)
