"""Check each file against its kind's JSON Schema and translate every schema error into a bundle error."""

from __future__ import annotations

from functools import cache

from jsonschema import Draft202012Validator, ValidationError

from bundles.language.checks.context import BundleCheck
from bundles.language.documents import ParsedFile, Parts
from bundles.language.errors import BAD_SEMVER, INVALID_VALUE, MISSING_FIELD, UNKNOWN_FIELD, WRONG_TYPE
from bundles.language.fields import ITEMS, json_type
from bundles.language.schemas import (
    API_VERSION,
    FIELD_NAME_PATTERN,
    MANIFEST,
    POLICY,
    RELATION_NAME_PATTERN,
    SLUG_PATTERN,
    TYPE_NAME_PATTERN,
    schema_for,
)
from policies.rules import REDACT_TARGETS

MESSAGE_UNKNOWN_FIELD = "unknown field '{field}'; expected one of: {allowed}"
MESSAGE_FIELD_NOT_APPLICABLE = "field '{field}' is not allowed here: {reason}"
MESSAGE_MISSING_FIELD = "missing required field '{field}'"
MESSAGE_REDACT_NEEDS_TARGET = "a redact policy needs 'fields' or 'classifications'"
MESSAGE_WRONG_TYPE = "expected {expected}, got {actual}"
MESSAGE_BAD_SEMVER = "version must be a semantic version such as 1.2.0 (quote it in YAML), got {value!r}"
MESSAGE_API_VERSION = f"apiVersion must be '{API_VERSION}'"
MESSAGE_NOT_IN_ENUM = "{value!r} is not one of: {allowed}"
MESSAGE_BAD_NAME = "{value!r} is not a valid name: {rule}"
MESSAGE_BAD_FIELD_NAME = "{value!r} is not a valid field name: {rule}"
MESSAGE_TOO_SHORT = "must not be shorter than {limit} characters"
MESSAGE_TOO_LONG = "must not be longer than {limit} characters"
MESSAGE_TOO_FEW_ITEMS = "must have at least {limit} item(s)"
MESSAGE_TOO_FEW_ENTRIES = "must have at least {limit} entry(ies)"
MESSAGE_BELOW_MINIMUM = "{value} is less than the minimum {limit}"
MESSAGE_ABOVE_MAXIMUM = "{value} is greater than the maximum {limit}"

NAME_RULES = {
    SLUG_PATTERN: "lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters",
    TYPE_NAME_PATTERN: "letters, digits and '_', starting with a letter, at most 63 characters",
    FIELD_NAME_PATTERN: "letters, digits and '_', not starting with a digit, at most 63 characters",
    RELATION_NAME_PATTERN: "letters, digits, '_' and '-', starting with a letter, at most 63 characters",
}
NOT_APPLICABLE_REASONS = {
    ITEMS: "only array fields have 'items'",
    **dict.fromkeys(REDACT_TARGETS, "only redact policies remove fields"),
}
JSON_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
}
LIMIT_MESSAGES = {
    "minLength": MESSAGE_TOO_SHORT,
    "maxLength": MESSAGE_TOO_LONG,
    "minItems": MESSAGE_TOO_FEW_ITEMS,
    "minProperties": MESSAGE_TOO_FEW_ENTRIES,
    "minimum": MESSAGE_BELOW_MINIMUM,
    "maximum": MESSAGE_ABOVE_MAXIMUM,
}


@cache
def schema_validator(kind: str) -> Draft202012Validator:
    """Return the (cached) JSON Schema validator of one file kind."""
    return Draft202012Validator(schema_for(kind))


def check_schemas(bundle: BundleCheck) -> None:
    """Report every way each usable file breaks its kind's JSON Schema."""
    for parsed in bundle.yaml_files():
        for error in schema_validator(parsed.kind).iter_errors(parsed.value):
            report_schema_error(bundle, parsed, error)


def report_schema_error(bundle: BundleCheck, parsed: ParsedFile, error: ValidationError) -> None:
    """Translate one JSON Schema error into bundle errors with stable codes."""
    parts: Parts = tuple(error.absolute_path)
    kind = error.validator
    if "propertyNames" in error.schema_path:
        rule = NAME_RULES.get(error.validator_value, error.validator_value)
        message = MESSAGE_BAD_FIELD_NAME.format(value=error.instance, rule=rule)
        bundle.report(INVALID_VALUE, parsed, (*parts, error.instance), message, key=True)
    elif kind == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        for name in error.instance:
            if name not in error.schema.get("properties", {}):
                message = MESSAGE_UNKNOWN_FIELD.format(field=name, allowed=allowed)
                bundle.report(UNKNOWN_FIELD, parsed, (*parts, name), message, key=True)
    elif kind == "not" and set(error.validator_value) == {"required"}:
        for name in error.validator_value["required"]:
            reason = NOT_APPLICABLE_REASONS.get(name, "it does not apply")
            message = MESSAGE_FIELD_NOT_APPLICABLE.format(field=name, reason=reason)
            bundle.report(UNKNOWN_FIELD, parsed, (*parts, name), message, key=True)
    elif kind == "required":
        for name in error.validator_value:
            if name not in error.instance:
                message = MESSAGE_MISSING_FIELD.format(field=name)
                bundle.report(MISSING_FIELD, parsed, (*parts, name), message)
    elif kind == "anyOf" and parsed.kind == POLICY:
        bundle.report(MISSING_FIELD, parsed, (*parts, REDACT_TARGETS[0]), MESSAGE_REDACT_NEEDS_TARGET)
    elif parsed.kind == MANIFEST and parts == ("version",) and kind in ("type", "pattern"):
        bundle.report(BAD_SEMVER, parsed, parts, MESSAGE_BAD_SEMVER.format(value=error.instance))
    elif kind == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(JSON_TYPE_NAMES.get(name, f"a {name}") for name in types)
        message = MESSAGE_WRONG_TYPE.format(expected=expected, actual=json_type(error.instance))
        bundle.report(WRONG_TYPE, parsed, parts, message)
    else:
        bundle.report(INVALID_VALUE, parsed, parts, value_message(error))


def value_message(error: ValidationError) -> str:
    """Return a short message for a constraint violation (never echoing long values)."""
    limit, value = error.validator_value, error.instance
    if error.validator == "const":
        return MESSAGE_API_VERSION
    if error.validator == "enum":
        return MESSAGE_NOT_IN_ENUM.format(value=value, allowed=", ".join(map(str, limit)))
    if error.validator == "pattern":
        return MESSAGE_BAD_NAME.format(value=value, rule=NAME_RULES.get(limit, limit))
    if error.validator in ("minimum", "maximum"):
        return LIMIT_MESSAGES[error.validator].format(value=value, limit=limit)
    if error.validator in LIMIT_MESSAGES:
        return LIMIT_MESSAGES[error.validator].format(limit=limit)
    return error.message[:200]
