"""The entity field model, declared once: field types and the constraints a field may carry.

Each `Constraint` states the field types it applies to, how its own value is checked, its JSON-Schema
fragment and how a record value is checked against it. The JSON Schema of entity files (`schemas`), the
positioned entity checks (`checks.entity`), the compiler and record validation (engine input and output,
suite inputs) all read `CONSTRAINTS`: a new field constraint is one entry there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from audit.canonical import MAX_SAFE_INTEGER
from bundles.language.errors import BundleCompileError

FIELD_TYPES = ("string", "number", "integer", "boolean", "array")
ITEM_TYPES = ("string", "number", "integer", "boolean")
ARRAY = "array"
CLASSIFICATIONS = ("pii", "secret", "public")
# The keys of a field that are not constraints, in the order they are documented.
FIELD_ATTRIBUTES = ("type", "description", "required", "classification")
ITEMS = "items"  # what the elements of an array field are: a field of an item type

# Field error codes.
CODE_TYPE = "type"
CODE_REQUIRED = "required"
CODE_UNKNOWN_FIELD = "unknown_field"
CODE_ENUM = "enum"
CODE_PATTERN = "pattern"
CODE_MINIMUM = "minimum"
CODE_MAXIMUM = "maximum"
CODE_MIN_LENGTH = "min_length"
CODE_MAX_LENGTH = "max_length"
CODE_OUT_OF_RANGE = "out_of_range"

# Field error messages.
WRONG_TYPE = "must be {expected}, got {actual}"
REQUIRED = "is required"
UNKNOWN_FIELD = "is not a field of {entity}"
NOT_IN_ENUM = "must be one of {choices}"
PATTERN_MISMATCH = "must match pattern {pattern}"
BELOW_MINIMUM = "must be >= {limit}"
ABOVE_MAXIMUM = "must be <= {limit}"
TOO_SHORT = "must have at least {limit} {unit}"
TOO_LONG = "must have at most {limit} {unit}"
OUT_OF_RANGE = "must be a finite number with magnitude <= 2^53-1"

# Compile errors of entity files.
NOT_A_MAPPING = "`{key}` must be a mapping"
UNKNOWN_FIELD_TYPE = "field {field!r} has unknown type {type!r}"
UNKNOWN_FIELD_KEYS = "field {field!r} has unknown keys: {keys}"
BAD_CONSTRAINT = "field {field!r}: `{constraint}` must be {expected}"
CONSTRAINT_NOT_APPLICABLE = "field {field!r}: `{constraint}` does not apply to type {type}"
BAD_CONSTRAINT_VALUE = "field {field!r} has an invalid {constraint}: {reason}"


class InvalidConstraint(ValueError):
    """A constraint's value is well-formed but unusable (a regular expression that does not compile)."""


@dataclass(frozen=True, slots=True)
class Constraint:
    """One field constraint: where it applies, what its value must be, and when a record value breaks it."""

    key: str
    types: tuple[str, ...]
    schema: dict[str, Any]  # JSON Schema of the constraint's value in an entity file
    expected: str  # what its value must be, for compile errors
    accepts: Callable[[Any], bool]  # whether its value is well-formed
    violated: Callable[[Any, Any], bool]  # (prepared value, record value) -> broken?
    code: str
    message: Callable[[Any, str], str]  # (value, field type) -> the record error's message
    prepare: Callable[[Any], Any] = lambda value: value  # raise InvalidConstraint when unusable
    invalid: str = ""  # positioned message when `prepare` refuses the value
    upper: str | None = None  # the constraint bounding this one from above: low > high is empty
    lists_values: bool = False  # its value lists values of the field's own type


def is_number(value: Any) -> bool:
    """Return True for an int or float that is not a bool."""
    return type(value) in (int, float)


def is_count(value: Any) -> bool:
    """Return True for a non-negative int."""
    return type(value) is int and value >= 0


def length_unit(field_type: str) -> str:
    """Return what a length counts for a field type."""
    return "characters" if field_type == "string" else "items"


def compile_pattern(source: str) -> re.Pattern[str]:
    """Return the compiled ECMA-style pattern; raise InvalidConstraint when it is not a regex."""
    try:
        return re.compile(ecma_pattern(source))
    except re.error as error:
        raise InvalidConstraint(str(error)) from error


CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint(
        key="enum",
        types=FIELD_TYPES,
        schema={"type": "array", "minItems": 1},
        expected="a list",
        accepts=lambda value: isinstance(value, list),
        prepare=tuple,
        violated=lambda choices, value: not in_enum(value, choices),
        code=CODE_ENUM,
        message=lambda choices, _type: NOT_IN_ENUM.format(
            choices=", ".join(json.dumps(choice) for choice in choices)
        ),
        lists_values=True,
    ),
    Constraint(
        key="pattern",
        types=("string",),
        schema={"type": "string", "minLength": 1},
        expected="a string",
        accepts=lambda value: isinstance(value, str),
        prepare=compile_pattern,
        invalid="not a valid regular expression: {reason}",
        violated=lambda pattern, value: pattern.search(value) is None,
        code=CODE_PATTERN,
        message=lambda source, _type: PATTERN_MISMATCH.format(pattern=source),
    ),
    Constraint(
        key="minimum",
        types=("number", "integer"),
        schema={"type": "number"},
        expected="a number",
        accepts=is_number,
        violated=lambda limit, value: value < limit,
        code=CODE_MINIMUM,
        message=lambda limit, _type: BELOW_MINIMUM.format(limit=limit),
        upper="maximum",
    ),
    Constraint(
        key="maximum",
        types=("number", "integer"),
        schema={"type": "number"},
        expected="a number",
        accepts=is_number,
        violated=lambda limit, value: value > limit,
        code=CODE_MAXIMUM,
        message=lambda limit, _type: ABOVE_MAXIMUM.format(limit=limit),
    ),
    Constraint(
        key="minLength",
        types=("string", "array"),
        schema={"type": "integer", "minimum": 0},
        expected="a non-negative integer",
        accepts=is_count,
        violated=lambda limit, value: len(value) < limit,
        code=CODE_MIN_LENGTH,
        message=lambda limit, field_type: TOO_SHORT.format(limit=limit, unit=length_unit(field_type)),
        upper="maxLength",
    ),
    Constraint(
        key="maxLength",
        types=("string", "array"),
        schema={"type": "integer", "minimum": 0},
        expected="a non-negative integer",
        accepts=is_count,
        violated=lambda limit, value: len(value) > limit,
        code=CODE_MAX_LENGTH,
        message=lambda limit, field_type: TOO_LONG.format(limit=limit, unit=length_unit(field_type)),
    ),
)
CONSTRAINTS_BY_KEY = {constraint.key: constraint for constraint in CONSTRAINTS}
FIELD_KEYS = frozenset((*FIELD_ATTRIBUTES, ITEMS, *CONSTRAINTS_BY_KEY))
# Which types each type-specific key applies to (`items` describes the elements of arrays only).
CONSTRAINT_TYPES = {
    **{constraint.key: constraint.types for constraint in CONSTRAINTS if constraint.types != FIELD_TYPES},
    ITEMS: (ARRAY,),
}

# One compiled constraint: (violated, prepared value, error code, error message).
Rule = tuple[Callable[[Any, Any], bool], Any, str, str]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One precise validation error: where (path inside the record), what (code) and why (message)."""

    path: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """Return the JSON-compatible form."""
        return {"path": self.path, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """The type and compiled constraints of one entity field (or of the items of an array field)."""

    name: str
    type: str
    required: bool = False
    classification: str | None = None
    rules: tuple[Rule, ...] = ()
    items: FieldSpec | None = None

    def check(self, value: Any, path: str, errors: list[FieldError]) -> None:
        """Append to `errors` every way `value` breaks this spec."""
        if not has_type(value, self.type):
            errors.append(
                FieldError(path, CODE_TYPE, WRONG_TYPE.format(expected=self.type, actual=json_type(value)))
            )
            return
        if self.type in ("number", "integer") and not is_safe_number(value):
            errors.append(FieldError(path, CODE_OUT_OF_RANGE, OUT_OF_RANGE))
            return
        for violated, limit, code, message in self.rules:
            if violated(limit, value):
                errors.append(FieldError(path, code, message))
        if self.items is not None:
            for index, item in enumerate(value):
                self.items.check(item, f"{path}[{index}]", errors)


@dataclass(frozen=True, slots=True)
class Entity:
    """A typed record: its fields, and which of them carry a classification."""

    name: str
    fields: dict[str, FieldSpec]
    classifications: dict[str, str]

    def validate(self, record: Any) -> list[FieldError]:
        """Return every error of `record` against this entity (none if valid); unknown fields are errors."""
        if not isinstance(record, dict):
            return [FieldError("", CODE_TYPE, WRONG_TYPE.format(expected="object", actual=json_type(record)))]
        errors: list[FieldError] = []
        for name, value in record.items():
            spec = self.fields.get(name)
            if spec is None:
                errors.append(
                    FieldError(str(name), CODE_UNKNOWN_FIELD, UNKNOWN_FIELD.format(entity=self.name))
                )
            elif value is not None:
                spec.check(value, name, errors)
        for name, spec in self.fields.items():
            # null counts as absent, for suite inputs as for executions, so suites and the engine agree.
            if spec.required and record.get(name) is None:
                errors.append(FieldError(name, CODE_REQUIRED, REQUIRED))
        return errors


def compile_entity(spec: Mapping[str, Any]) -> Entity:
    """Return the entity of an entity file, with its constraints compiled."""
    raw_fields = spec.get("fields") or {}
    if not isinstance(raw_fields, Mapping):
        raise BundleCompileError(NOT_A_MAPPING.format(key="fields"))
    fields = {str(name): compile_field(str(name), field_spec) for name, field_spec in raw_fields.items()}
    classifications = {name: spec.classification for name, spec in fields.items() if spec.classification}
    return Entity(spec["name"], fields, classifications)


def compile_field(name: str, spec: Any) -> FieldSpec:
    """Return the FieldSpec of one field (recursively for array items)."""
    if not isinstance(spec, Mapping):
        raise BundleCompileError(NOT_A_MAPPING.format(key=f"fields.{name}"))
    unknown = sorted(str(key) for key in spec if key not in FIELD_KEYS)
    if unknown:
        raise BundleCompileError(UNKNOWN_FIELD_KEYS.format(field=name, keys=", ".join(unknown)))
    kind = spec.get("type")
    if kind not in FIELD_TYPES:
        raise BundleCompileError(UNKNOWN_FIELD_TYPE.format(field=name, type=kind))
    for key in not_applicable(spec, kind):
        raise BundleCompileError(CONSTRAINT_NOT_APPLICABLE.format(field=name, constraint=key, type=kind))
    present = [
        (constraint, spec[constraint.key])
        for constraint in CONSTRAINTS
        if spec.get(constraint.key) is not None
    ]
    for constraint, value in present:
        if not constraint.accepts(value):
            raise BundleCompileError(
                BAD_CONSTRAINT.format(field=name, constraint=constraint.key, expected=constraint.expected)
            )
    classification = spec.get("classification")
    if classification is not None and not isinstance(classification, str):
        raise BundleCompileError(
            BAD_CONSTRAINT.format(field=name, constraint="classification", expected="a string")
        )
    rules = []
    for constraint, value in present:
        try:
            prepared = constraint.prepare(value)
        except InvalidConstraint as error:
            raise BundleCompileError(
                BAD_CONSTRAINT_VALUE.format(field=name, constraint=constraint.key, reason=error)
            ) from error
        rules.append((constraint.violated, prepared, constraint.code, constraint.message(value, kind)))
    items = spec.get(ITEMS)
    return FieldSpec(
        name=name,
        type=kind,
        required=bool(spec.get("required", False)),
        classification=classification,
        rules=tuple(rules),
        items=compile_field(f"{name}[]", items) if items is not None else None,
    )


def not_applicable(spec: Mapping[str, Any], field_type: str) -> list[str]:
    """Return the keys of `spec` that do not apply to `field_type`, in declaration order."""
    return [
        key
        for key, types in CONSTRAINT_TYPES.items()
        if spec.get(key) is not None and field_type not in types
    ]


def validate_record(entity: Mapping[str, Any], value: Any) -> list[FieldError]:
    """Return every way `value` breaks an entity file's entity; raise BundleCompileError when it is broken."""
    return compile_entity({"name": entity.get("name"), "fields": entity.get("fields") or {}}).validate(value)


# --- values ------------------------------------------------------------------------------------------


def json_type(value: Any) -> str:
    """Return the JSON type name of a Python value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def has_type(value: Any, expected: str) -> bool:
    """Return True when `value` is of the entity field type `expected` (booleans are not numbers)."""
    kind = type(value)
    if expected == "string":
        return kind is str
    if expected == "number":
        return kind is int or kind is float
    if expected == "integer":
        return kind is int or (kind is float and value.is_integer())
    if expected == "boolean":
        return kind is bool
    if expected == "array":
        return kind is list
    return False


def in_enum(value: Any, choices: tuple[Any, ...]) -> bool:
    """Return True when `value` is one of `choices`, never taking True for 1 or False for 0."""
    is_bool = type(value) is bool
    return any(value == choice and (type(choice) is bool) == is_bool for choice in choices)


def is_safe_number(value: int | float) -> bool:
    """Return True for finite numbers an RFC 8785 canonicaliser accepts."""
    if type(value) is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    return math.isfinite(value)


def ecma_pattern(pattern: str) -> str:
    """Return `pattern` with `$` meaning only end of string, as in JSON Schema (ECMA-262) regexes."""
    # Python's `$` also matches before a final newline, so "C1\n" would pass "^C[0-9]+$".
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"(?!\n)$")
            continue
        out.append(char)
    return "".join(out)
