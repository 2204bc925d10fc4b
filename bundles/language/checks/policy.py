"""Check policies/*.yaml and every CEL expression of a bundle: syntax, and the variables it may read.

What a policy may read at each stage is the policy language's own rule (`policies.rules.stage_variables`).
"""

from __future__ import annotations

import re
from typing import Any

from bundles.language.checks.context import BundleCheck, Definition, mapping, sequence
from bundles.language.documents import ParsedFile, Parts, source_position, value_position
from bundles.language.errors import (
    CEL_SYNTAX,
    CEL_TOO_EXPENSIVE,
    CEL_UNKNOWN_VARIABLE,
    UNKNOWN_FIELD_REFERENCE,
)
from bundles.language.schemas import POLICY
from policies import PolicySyntaxError, PolicyTooExpensiveError, compile_expression
from policies.rules import stage_variables

MESSAGE_CEL_SYNTAX = "CEL syntax error: {reason}"
MESSAGE_CEL_TOO_EXPENSIVE = "CEL expression over a cost limit: {reason}"
MESSAGE_CEL_UNKNOWN_VARIABLE = "unknown variable '{variable}'; available: {allowed}"
MESSAGE_CEL_OUTPUT_IN_PRE = "a pre policy runs before the model: 'output' is not available"
MESSAGE_UNKNOWN_FIELD_REFERENCE = "'{field}' is not a field of entity {entity} (pipeline '{pipeline}')"


def check_policies(bundle: BundleCheck) -> None:
    """Check every policy's CEL condition: syntax and the variables its stage provides."""
    for parsed in bundle.yaml_files(POLICY):
        when = parsed.value.get("when")
        if isinstance(when, str):
            check_cel(bundle, parsed, ("when",), when, set(stage_variables(parsed.value.get("stage"))))


def check_cel(bundle: BundleCheck, parsed: ParsedFile, parts: Parts, source: str, allowed: set[str]) -> None:
    """Report a CEL expression that does not parse, is over a cost limit or reads variables it may not."""
    try:
        compiled = compile_expression(source)
    except PolicySyntaxError as exc:
        position = value_position(parsed, parts, exc.line, exc.column)
        message = MESSAGE_CEL_SYNTAX.format(reason=exc.message)
        bundle.report(CEL_SYNTAX, parsed, parts, message, position=position)
        return
    except PolicyTooExpensiveError as exc:
        position = value_position(parsed, parts, exc.line, exc.column)
        message = MESSAGE_CEL_TOO_EXPENSIVE.format(reason=exc.message)
        bundle.report(CEL_TOO_EXPENSIVE, parsed, parts, message, position=position)
        return
    for variable in sorted(set(compiled.variables) - allowed):
        if variable == "output" and "input" in allowed:  # a policy that runs before the model
            message = MESSAGE_CEL_OUTPUT_IN_PRE
        else:
            message = MESSAGE_CEL_UNKNOWN_VARIABLE.format(
                variable=variable, allowed=", ".join(sorted(allowed))
            )
        found = source_position(source, re.compile(rf"\b{re.escape(variable)}\b"))
        position = value_position(parsed, parts, *(found or (None, None)))
        bundle.report(CEL_UNKNOWN_VARIABLE, parsed, parts, message, position=position)


def check_redacted_fields(bundle: BundleCheck, policy: Definition, entity: Definition, pipeline: Any) -> None:
    """Report redact `fields` that the entity the policy applies to does not have."""
    fields = mapping(entity.body.get("fields"))
    for index, name in enumerate(sequence(policy.body.get("fields"))):
        if isinstance(name, str) and name not in fields:
            message = MESSAGE_UNKNOWN_FIELD_REFERENCE.format(
                field=name, entity=entity.name, pipeline=pipeline
            )
            bundle.report(UNKNOWN_FIELD_REFERENCE, policy.file, ("fields", index), message)
