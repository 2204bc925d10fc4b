"""Check entities/*.yaml: each entity's concept, and that its field constraints fit and can be met.

Every rule comes from the field model (`bundles.language.fields.CONSTRAINTS`): which types a constraint
applies to, whether its value is usable, which values it lists and which constraint bounds it from above.
"""

from __future__ import annotations

from typing import Any

from bundles.language.checks.context import BundleCheck, mapping, sequence
from bundles.language.checks.ontology import check_concept
from bundles.language.documents import ParsedFile, Parts
from bundles.language.errors import INVALID_VALUE
from bundles.language.fields import ARRAY, CONSTRAINTS, ITEMS, InvalidConstraint, has_type
from bundles.language.schemas import ENTITY

MESSAGE_CONSTRAINT_NOT_APPLICABLE = "'{constraint}' does not apply to {type} fields"
MESSAGE_LISTED_VALUE_TYPE = "{constraint} value {value!r} is not a {type}"
MESSAGE_EMPTY_RANGE = "'{low}' ({low_value}) is greater than '{high}' ({high_value})"


def check_entities(bundle: BundleCheck) -> None:
    """Check each entity's concept and the consistency of its field constraints."""
    for parsed in bundle.yaml_files(ENTITY):
        check_concept(bundle, parsed, ("concept",), parsed.value.get("concept"))
        for name, spec in mapping(parsed.value.get("fields")).items():
            spec = mapping(spec)
            check_constraints(bundle, parsed, ("fields", name), spec)
            if spec.get("type") == ARRAY and isinstance(spec.get(ITEMS), dict):
                check_constraints(bundle, parsed, ("fields", name, ITEMS), spec[ITEMS])


def check_constraints(bundle: BundleCheck, parsed: ParsedFile, parts: Parts, spec: dict[str, Any]) -> None:
    """Report constraints that do not fit the field's type or cannot be satisfied."""
    field_type = spec.get("type")
    if not isinstance(field_type, str):
        return
    for constraint in CONSTRAINTS:
        key = constraint.key
        if key in spec and field_type not in constraint.types:
            message = MESSAGE_CONSTRAINT_NOT_APPLICABLE.format(constraint=key, type=field_type)
            bundle.report(INVALID_VALUE, parsed, (*parts, key), message, key=True)
        if constraint.lists_values:
            for index, value in enumerate(sequence(spec.get(key))):
                if not has_type(value, field_type):
                    message = MESSAGE_LISTED_VALUE_TYPE.format(constraint=key, value=value, type=field_type)
                    bundle.report(INVALID_VALUE, parsed, (*parts, key, index), message)
        if constraint.invalid and key in spec and constraint.accepts(spec[key]):
            try:
                constraint.prepare(spec[key])
            except InvalidConstraint as exc:
                bundle.report(INVALID_VALUE, parsed, (*parts, key), constraint.invalid.format(reason=exc))
        if constraint.upper is not None:
            check_range(bundle, parsed, parts, spec, key, constraint.upper)


def check_range(
    bundle: BundleCheck, parsed: ParsedFile, parts: Parts, spec: dict, low: str, high: str
) -> None:
    """Report a lower bound above its upper bound (no value could ever be valid)."""
    low_value, high_value = spec.get(low), spec.get(high)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low_value, high_value))
    if numbers and low_value > high_value:
        message = MESSAGE_EMPTY_RANGE.format(low=low, low_value=low_value, high=high, high_value=high_value)
        bundle.report(INVALID_VALUE, parsed, (*parts, low), message)
