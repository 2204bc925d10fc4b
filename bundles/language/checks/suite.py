"""Check suites/*.yaml: each suite's pipeline, case names, inputs and expectations.

A case input is checked with the engine's own record validation (`fields.validate_record`), so a case that
passes here is exactly an input the engine accepts.
"""

from __future__ import annotations

import re
from typing import Any

from bundles.language.checks.context import BundleCheck, Definition, mapping, sequence
from bundles.language.checks.policy import check_cel
from bundles.language.decisions import STATUS_ALLOWED, STATUS_INVALID_INPUT, STATUS_INVALID_OUTPUT
from bundles.language.documents import ParsedFile, Parts
from bundles.language.errors import SUITE_EXPECT_INVALID, SUITE_INPUT_INVALID, BundleCompileError
from bundles.language.fields import validate_record
from bundles.language.schemas import MANIFEST, SUITE
from bundles.language.suites import CEL_VARIABLES

MESSAGE_SUITE_INPUT = "{field} {reason} (input entity {entity})"
MESSAGE_DENIED_BY_NOT_IN_PIPELINE = "'{policy}' is not a policy of pipeline '{pipeline}'"
MESSAGE_DENIED_BY_NOT_DENY = "'{policy}' is a {effect} policy; only deny policies deny"
MESSAGE_DENIED_BY_STATUS = "denied_by needs status 'denied', got '{status}'"
MESSAGE_EXPECT_FIELD = "'{field}' is not a field of {entity}"
MESSAGE_EXPECT_REDACTED = "'{field}' is not a field of {entities}"
MESSAGE_NEEDS_MODEL_OUTPUT = "a case expecting '{status}' reaches the model and needs a model_output"
MESSAGE_INPUT_IS_VALID = "the case expects 'invalid_input' but its input is a valid {entity}"

SUITE_CEL_VARIABLES = frozenset(CEL_VARIABLES)
STATUSES_NEEDING_MODEL = frozenset({STATUS_ALLOWED, STATUS_INVALID_OUTPUT})


def check_suites(bundle: BundleCheck) -> None:
    """Check every suite: its pipeline, case names, inputs and expectations."""
    suites: dict[str, Definition] = {}
    for parsed in bundle.yaml_files(SUITE):
        bundle.define(suites, "suite", parsed, (), parsed.value)
        cases = sequence(parsed.value.get("cases"))
        bundle.unique_names(parsed, cases, ("cases",), "case")
        pipeline = bundle.resolve(parsed, ("pipeline",), parsed.value.get("pipeline"), MANIFEST)
        for index, case in enumerate(cases):
            check_case(bundle, parsed, ("cases", index), mapping(case), pipeline)


def check_case(
    bundle: BundleCheck, parsed: ParsedFile, parts: Parts, case: dict, pipeline: Definition | None
) -> None:
    """Check one suite case against its pipeline's entities and policies."""
    expect = mapping(case.get("expect"))
    for cel_parts, expression in case_expressions(parts, expect.get("cel")):
        check_cel(bundle, parsed, cel_parts, expression, set(SUITE_CEL_VARIABLES))
    status = expect.get("status")
    if status in STATUSES_NEEDING_MODEL and "model_output" not in case:
        message = MESSAGE_NEEDS_MODEL_OUTPUT.format(status=status)
        bundle.report(SUITE_EXPECT_INVALID, parsed, (*parts, "expect", "status"), message)
    if pipeline is None:
        return
    input_entity = bundle.entities.get(pipeline.body.get("input"))
    output_entity = bundle.entities.get(pipeline.body.get("output"))
    if input_entity and isinstance(case.get("input"), dict):
        check_case_input(bundle, parsed, parts, case["input"], input_entity, status)
    check_denied_by(bundle, parsed, parts, case, pipeline)
    if output_entity:
        output_fields = mapping(output_entity.body.get("fields"))
        for name in mapping(expect.get("output")):
            if name not in output_fields:
                message = MESSAGE_EXPECT_FIELD.format(field=name, entity=output_entity.name)
                where = (*parts, "expect", "output", name)
                bundle.report(SUITE_EXPECT_INVALID, parsed, where, message, key=True)
    if input_entity and output_entity:
        check_expected_redactions(bundle, parsed, parts, expect, [input_entity, output_entity])


def case_expressions(parts: Parts, cel: Any) -> list[tuple[Parts, str]]:
    """Return a case's `expect.cel` expressions (one string or a list) with their locations."""
    where = (*parts, "expect", "cel")
    if isinstance(cel, str):
        return [(where, cel)]
    return [((*where, index), text) for index, text in enumerate(sequence(cel)) if isinstance(text, str)]


def check_case_input(
    bundle: BundleCheck, parsed: ParsedFile, parts: Parts, value: dict, entity: Definition, status: Any
) -> None:
    """Report a case input that does not match the pipeline's input entity (unless that is the point)."""
    try:
        problems = validate_record(entity.body, value)
    except BundleCompileError:
        return  # the entity itself is broken, and reported against its own file
    if status == STATUS_INVALID_INPUT:
        if not problems:
            message = MESSAGE_INPUT_IS_VALID.format(entity=entity.name)
            bundle.report(SUITE_EXPECT_INVALID, parsed, (*parts, "expect", "status"), message)
        return
    for problem in problems:
        where = (*parts, "input", *record_parts(problem.path))
        field_name = problem.path or "the input"
        message = MESSAGE_SUITE_INPUT.format(field=field_name, reason=problem.message, entity=entity.name)
        bundle.report(SUITE_INPUT_INVALID, parsed, where, message)


def record_parts(record_path: str) -> Parts:
    """Return the parts of a record error path such as `tags[2]`."""
    parts: list[str | int] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", record_path):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return tuple(parts)


def check_denied_by(
    bundle: BundleCheck, parsed: ParsedFile, parts: Parts, case: dict, pipeline: Definition
) -> None:
    """Report a `denied_by` that names no deny policy of the pipeline, or contradicts the status."""
    expect = mapping(case.get("expect"))
    denied_by = expect.get("denied_by")
    if not isinstance(denied_by, str):
        return
    where = (*parts, "expect", "denied_by")
    status = expect.get("status")
    if isinstance(status, str) and status != "denied":
        bundle.report(SUITE_EXPECT_INVALID, parsed, where, MESSAGE_DENIED_BY_STATUS.format(status=status))
    if denied_by not in sequence(pipeline.body.get("policies")):
        message = MESSAGE_DENIED_BY_NOT_IN_PIPELINE.format(policy=denied_by, pipeline=pipeline.name)
        bundle.report(SUITE_EXPECT_INVALID, parsed, where, message)
        return
    policy = bundle.policies.get(denied_by)
    if policy and policy.body.get("effect") != "deny":
        message = MESSAGE_DENIED_BY_NOT_DENY.format(policy=denied_by, effect=policy.body.get("effect"))
        bundle.report(SUITE_EXPECT_INVALID, parsed, where, message)
    elif policy and policy.body.get("stage") == "post" and "model_output" not in case:
        message = MESSAGE_NEEDS_MODEL_OUTPUT.format(status="denied")
        bundle.report(SUITE_EXPECT_INVALID, parsed, where, message)


def check_expected_redactions(
    bundle: BundleCheck, parsed: ParsedFile, parts: Parts, expect: dict, entities: list[Definition]
) -> None:
    """Report expected redactions naming no field of the pipeline's entities."""
    known = {name for entity in entities for name in mapping(entity.body.get("fields"))}
    for index, name in enumerate(sequence(expect.get("redacted"))):
        if isinstance(name, str) and name not in known:
            names = " or ".join(entity.name for entity in entities)
            message = MESSAGE_EXPECT_REDACTED.format(field=name, entities=names)
            bundle.report(SUITE_EXPECT_INVALID, parsed, (*parts, "expect", "redacted", index), message)
