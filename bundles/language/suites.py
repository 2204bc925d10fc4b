"""Run a bundle's suites through the engine with replayed model answers; report pass rate and coverage.

Each case's recorded `model_output` is what the replay model answers, so a suite run is deterministic and
exercises exactly the code the runtime runs. Like `opa test --coverage`, a suite also reports which of its
pipeline's policies fired in at least one case.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

from bundles.language.compiler import CompiledBundle, UnknownPipelineError
from bundles.language.decisions import Decision, ErrorKind
from bundles.language.execution import execute
from bundles.language.models import NO_MODEL_OUTPUT, ReplayModel
from bundles.language.schemas import ASSERTIONS
from policies import PolicyEvaluationError, PolicySyntaxError, PolicyTooExpensiveError, compile_expression

DEFAULT_PASS_RATE = 1.0
DEFAULT_POLICY_COVERAGE = 0.0
# What an `expect.cel` assertion may read (the decision is exposed as its record).
CEL_VARIABLES = ("input", "output", "decision")

# Case failures (and NO_MODEL_OUTPUT, from the replay model).
CASE_NOT_A_MAPPING = "case must be a mapping"
CALLER_NOT_A_MAPPING = "caller must be a mapping"
EXPECT_NOT_A_MAPPING = "expect must be a mapping"
NO_ASSERTIONS = "expect: no assertions (a case must assert something)"
UNKNOWN_ASSERTION = "expect: unknown assertion {key!r}"
STATUS_MISMATCH = "status: expected {expected!r}, got {actual!r}"
DENIED_BY_MISMATCH = "denied_by: expected {expected!r}, got {actual!r}"
OUTPUT_MISMATCH = "output{path}: expected {expected}, got {actual}"
OUTPUT_MISSING_KEY = "output{path}: missing"
REDACTED_NOT_A_LIST = "redacted: expected a list of field names"
NOT_REDACTED = "redacted: {field!r} was not redacted (redacted: {actual})"
CEL_NOT_A_STRING = "cel: expected a CEL expression (string)"
CEL_SYNTAX = "cel: {expression!r} does not parse at {line}:{column}: {message}"
CEL_FAILED = "cel: {expression!r} could not be evaluated: {reason}"
CEL_REFUSED = "cel: {expression!r} is refused: {reason}"
CEL_NOT_BOOL = "cel: {expression!r} returned {type_name}, not a bool"
CEL_FALSE = "cel: {expression!r} is false"

# Suite errors.
UNKNOWN_PIPELINE = "pipeline {pipeline!r} is not defined by the bundle"
SUITE_NOT_A_MAPPING = "suite must be a mapping"
CASES_NOT_A_LIST = "cases must be a list"
BAD_THRESHOLD = "thresholds.{name} must be a number between 0 and 1"

CASE_LINE = "  {name}: {verdict} ({duration:.1f}ms)"
FAILURE_LINE = "      {failure}"
SUITE_HEADER = "{file}: suite {name} (pipeline {pipeline})"
SUITE_ERROR_LINE = "  error: {error}"
SUITE_SUMMARY = (
    "  {verdict}: {passed}/{total} cases, pass rate {pass_rate:.1%} (min {min_pass_rate:.1%}), "
    "policy coverage {covered}/{policies} = {coverage:.1%} (min {min_coverage:.1%})"
)
UNCOVERED_LINE = "  not covered: {names}"
RULER = "-" * 80
TOTAL_LINE = "{verdict}: {passed_cases}/{cases} cases passed, {passed_suites}/{suites} suites passed"


@dataclass(slots=True)
class CaseResult:
    """The outcome of one case: its failures (none when it passed) and the policies that fired."""

    name: str
    failures: list[str]
    status: str | None
    duration_ms: float
    fired: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Return True when no assertion failed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-compatible form."""
        return {
            "name": self.name,
            "passed": self.passed,
            "failures": list(self.failures),
            "status": self.status,
            "duration_ms": self.duration_ms,
            "fired": list(self.fired),
        }


@dataclass(slots=True)
class SuiteResult:
    """The outcome of one suite: its cases, pass rate and policy coverage against its thresholds."""

    name: str
    file: str
    pipeline: str | None
    cases: list[CaseResult]
    policies: list[str]
    min_pass_rate: float = DEFAULT_PASS_RATE
    min_policy_coverage: float = DEFAULT_POLICY_COVERAGE
    errors: list[str] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        """Return the share of passing cases (0 for a suite without cases: it proves nothing)."""
        if not self.cases:
            return 0.0
        return sum(case.passed for case in self.cases) / len(self.cases)

    @property
    def covered(self) -> list[str]:
        """Return the pipeline's policies that fired (without error) in some case, in pipeline order."""
        fired = {name for case in self.cases for name in case.fired}
        return [name for name in self.policies if name in fired]

    @property
    def uncovered(self) -> list[str]:
        """Return the pipeline's policies that never fired."""
        covered = set(self.covered)
        return [name for name in self.policies if name not in covered]

    @property
    def policy_coverage(self) -> float:
        """Return covered / total policies of the pipeline (1 when it has none)."""
        return len(self.covered) / len(self.policies) if self.policies else 1.0

    @property
    def passed(self) -> bool:
        """Return True when the suite ran and met both thresholds."""
        return (
            not self.errors
            and self.pass_rate >= self.min_pass_rate
            and self.policy_coverage >= self.min_policy_coverage
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-compatible form."""
        return {
            "name": self.name,
            "file": self.file,
            "pipeline": self.pipeline,
            "passed": self.passed,
            "errors": list(self.errors),
            "pass_rate": self.pass_rate,
            "policy_coverage": {
                "ratio": self.policy_coverage,
                "covered": self.covered,
                "uncovered": self.uncovered,
                "total": len(self.policies),
            },
            "thresholds": {"pass_rate": self.min_pass_rate, "policy_coverage": self.min_policy_coverage},
            "cases": [case.to_dict() for case in self.cases],
        }


@dataclass(slots=True)
class SuiteReport:
    """Every suite of a bundle version: the quality gate's evidence."""

    bundle: dict[str, str]
    suites: list[SuiteResult]

    @property
    def passed(self) -> bool:
        """Return True when every suite passed."""
        return all(suite.passed for suite in self.suites)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-compatible form."""
        cases = [case for suite in self.suites for case in suite.cases]
        return {
            "bundle": dict(self.bundle),
            "passed": self.passed,
            "totals": {
                "suites": len(self.suites),
                "suites_passed": sum(suite.passed for suite in self.suites),
                "cases": len(cases),
                "cases_passed": sum(case.passed for case in cases),
            },
            "suites": [suite.to_dict() for suite in self.suites],
        }


def run_suites(bundle: CompiledBundle, *, after_case: Callable[[], None] | None = None) -> SuiteReport:
    """Return the report of running every suite of `bundle`, in file order.

    `after_case` is called after every case (the gate worker beats its heartbeat there); what it raises
    stops the run.
    """
    return SuiteReport(
        bundle.identity,
        [run_suite(bundle, path, spec, after_case=after_case) for path, spec in bundle.suites],
    )


def run_suite(
    bundle: CompiledBundle, path: str, spec: Any, *, after_case: Callable[[], None] | None = None
) -> SuiteResult:
    """Return the result of one suite file."""
    if not isinstance(spec, Mapping):
        return SuiteResult(path, path, None, [], [], errors=[SUITE_NOT_A_MAPPING])
    name, pipeline_name = str(spec.get("name", path)), spec.get("pipeline")
    result = SuiteResult(name, path, pipeline_name, [], [])
    read_thresholds(spec.get("thresholds") or {}, result)
    try:
        pipeline = bundle.pipeline(pipeline_name)
    except UnknownPipelineError:
        result.errors.append(UNKNOWN_PIPELINE.format(pipeline=pipeline_name))
        return result
    result.policies = list(pipeline.policies)
    cases = spec.get("cases") or []
    if not isinstance(cases, list):
        result.errors.append(CASES_NOT_A_LIST)
        return result
    for index, case in enumerate(cases):
        result.cases.append(run_case(bundle, pipeline.name, case, index))
        if after_case is not None:
            after_case()
    return result


def read_thresholds(thresholds: Any, result: SuiteResult) -> None:
    """Set the suite's thresholds, recording an error for a value that is not a ratio."""
    if not isinstance(thresholds, Mapping):
        thresholds = {}
    for key, attribute, default in (
        ("pass_rate", "min_pass_rate", DEFAULT_PASS_RATE),
        ("policy_coverage", "min_policy_coverage", DEFAULT_POLICY_COVERAGE),
    ):
        value = thresholds.get(key, default)
        if type(value) not in (int, float) or not 0 <= value <= 1:
            result.errors.append(BAD_THRESHOLD.format(name=key))
            value = default
        setattr(result, attribute, float(value))


def run_case(bundle: CompiledBundle, pipeline: str, case: Any, index: int) -> CaseResult:
    """Return the result of one case: run it with the replay model and check its expectations."""
    started = perf_counter_ns()
    if not isinstance(case, Mapping):
        return CaseResult(f"#{index}", [CASE_NOT_A_MAPPING], None, elapsed_ms(started))
    name = str(case.get("name", f"#{index}"))
    caller = case.get("caller")
    if caller is not None and not isinstance(caller, Mapping):
        return CaseResult(name, [CALLER_NOT_A_MAPPING], None, elapsed_ms(started))
    model = ReplayModel(recorded_output(case.get("model_output")))
    decision = execute(bundle, pipeline, case.get("input"), model, caller=caller)
    if model.requests and model.text is None:
        failures = [NO_MODEL_OUTPUT]
    else:
        failures = check_expectations(case.get("expect"), case.get("input"), decision)
    if decision.error_kind is ErrorKind.PROMPT_TOO_LARGE:
        # A case that hits a render limit fails whatever it expects: a gate must not pass such a bundle.
        failures.append(decision.reason)  # "prompt_too_large: template ... was stopped at a limit: ..."
    fired = [result["name"] for result in decision.policies if result["fired"] and result["error"] is None]
    return CaseResult(name, failures, decision.status, elapsed_ms(started), fired)


def recorded_output(value: Any) -> str | None:
    """Return a case's model output as the text a model would send (mappings are written as JSON)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def elapsed_ms(started: int) -> float:
    """Return the milliseconds since `started` (a perf_counter_ns reading), to the microsecond."""
    return round((perf_counter_ns() - started) / 1e6, 3)


def check_expectations(expect: Any, input: Any, decision: Decision) -> list[str]:
    """Return the failures of a case's `expect` block against its decision."""
    if not isinstance(expect, Mapping):
        return [EXPECT_NOT_A_MAPPING if expect is not None else NO_ASSERTIONS]
    if not expect:
        return [NO_ASSERTIONS]
    failures = [UNKNOWN_ASSERTION.format(key=key) for key in expect if key not in ASSERTIONS]
    if "status" in expect and expect["status"] != decision.status:
        failures.append(STATUS_MISMATCH.format(expected=expect["status"], actual=decision.status))
    if "denied_by" in expect and expect["denied_by"] != decision.denied_by:
        failures.append(DENIED_BY_MISMATCH.format(expected=expect["denied_by"], actual=decision.denied_by))
    if "output" in expect:
        failures.extend(subset_mismatches(expect["output"], decision.output, ""))
    if "redacted" in expect:
        failures.extend(missing_redactions(expect["redacted"], decision.redactions))
    if "cel" in expect:
        expressions = expect["cel"] if isinstance(expect["cel"], list) else [expect["cel"]]
        values = (input, decision.output, decision.to_dict())
        variables = dict(zip(CEL_VARIABLES, values, strict=True))
        for expression in expressions:
            failure = cel_failure(expression, variables)
            if failure is not None:
                failures.append(failure)
    return failures


def subset_mismatches(expected: Any, actual: Any, path: str) -> list[str]:
    """Return where `actual` does not contain `expected` (mappings: a subset of keys; lists: item by item)."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        failures = []
        for key, value in expected.items():
            if key not in actual:
                failures.append(OUTPUT_MISSING_KEY.format(path=f"{path}.{key}"))
            else:
                failures.extend(subset_mismatches(value, actual[key], f"{path}.{key}"))
        return failures
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            failure
            for index, (want, got) in enumerate(zip(expected, actual, strict=True))
            for failure in subset_mismatches(want, got, f"{path}[{index}]")
        ]
    if same_json(expected, actual):
        return []
    return [OUTPUT_MISMATCH.format(path=path, expected=as_json(expected), actual=as_json(actual))]


def same_json(expected: Any, actual: Any) -> bool:
    """Return True when two JSON scalars are equal, never taking True for 1."""
    return expected == actual and (type(expected) is bool) == (type(actual) is bool)


def as_json(value: Any) -> str:
    """Return a compact JSON rendering of a value, for failure messages."""
    return json.dumps(value, sort_keys=True, default=str)


def missing_redactions(expected: Any, redactions: list[str]) -> list[str]:
    """Return a failure for each expected field that the decision did not redact."""
    if not isinstance(expected, list):
        return [REDACTED_NOT_A_LIST]
    return [NOT_REDACTED.format(field=name, actual=redactions) for name in expected if name not in redactions]


def cel_failure(expression: Any, variables: Mapping[str, Any]) -> str | None:
    """Return why a CEL assertion does not hold, or None when it evaluates to true."""
    if not isinstance(expression, str):
        return CEL_NOT_A_STRING
    try:
        compiled = compile_expression(expression)
        value = compiled.evaluate({name: variables[name] for name in compiled.variables if name in variables})
    except PolicySyntaxError as error:
        return CEL_SYNTAX.format(
            expression=expression, line=error.line, column=error.column, message=error.message
        )
    except PolicyTooExpensiveError as error:
        return CEL_REFUSED.format(expression=expression, reason=error)
    except PolicyEvaluationError as error:
        return CEL_FAILED.format(expression=expression, reason=error)
    if type(value) is not bool:
        return CEL_NOT_BOOL.format(expression=expression, type_name=type(value).__name__)
    return None if value else CEL_FALSE.format(expression=expression)


def format_report(report: SuiteReport) -> str:
    """Return a readable report, one line per case like `opa test -v`, failures indented, then summaries."""
    lines = []
    for suite in report.suites:
        lines.append(SUITE_HEADER.format(file=suite.file, name=suite.name, pipeline=suite.pipeline))
        lines.extend(SUITE_ERROR_LINE.format(error=error) for error in suite.errors)
        for case in suite.cases:
            verdict = "PASS" if case.passed else "FAIL"
            lines.append(CASE_LINE.format(name=case.name, verdict=verdict, duration=case.duration_ms))
            lines.extend(FAILURE_LINE.format(failure=failure) for failure in case.failures)
        lines.append(
            SUITE_SUMMARY.format(
                verdict="PASS" if suite.passed else "FAIL",
                passed=sum(case.passed for case in suite.cases),
                total=len(suite.cases),
                pass_rate=suite.pass_rate,
                min_pass_rate=suite.min_pass_rate,
                covered=len(suite.covered),
                policies=len(suite.policies),
                coverage=suite.policy_coverage,
                min_coverage=suite.min_policy_coverage,
            )
        )
        if suite.uncovered:
            lines.append(UNCOVERED_LINE.format(names=", ".join(suite.uncovered)))
    totals = report.to_dict()["totals"]
    lines.append(RULER)
    lines.append(
        TOTAL_LINE.format(
            verdict="PASS" if report.passed else "FAIL",
            passed_cases=totals["cases_passed"],
            cases=totals["cases"],
            passed_suites=totals["suites_passed"],
            suites=totals["suites"],
        )
    )
    return "\n".join(lines) + "\n"
