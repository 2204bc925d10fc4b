"""JSON Schemas (draft 2020-12) of every bundle file kind, published at `GET /api/v1/bundle-schema/`.

The schemas carry the shape of each file (DESIGN §5); cross-file references (entities, templates, policies,
concepts), CEL and Jinja syntax are checked by `bundles.language.checks`. Every object is closed
(`additionalProperties: false`) so a misspelt key is an error rather than silently ignored.
"""

from __future__ import annotations

import copy
from typing import Any

from bundles.language.decisions import STATUSES
from bundles.language.fields import CLASSIFICATIONS, CONSTRAINTS, FIELD_TYPES, ITEM_TYPES, ITEMS
from bundles.language.versioning import SEMVER
from policies.rules import (
    CONDITIONAL_EFFECTS,
    EFFECTS,
    POLICY_KEYS,
    REDACT,
    REDACT_TARGETS,
    REQUIRED_KEYS,
    STAGES,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URI = "https://contractor.invalid/schemas/bundle/v1/"
API_VERSION = "contractor/v1"

MANIFEST = "manifest"
ONTOLOGY = "ontology"
ENTITY = "entity"
POLICY = "policy"
TEMPLATE = "template"
SUITE = "suite"
KINDS = (MANIFEST, ONTOLOGY, ENTITY, POLICY, TEMPLATE, SUITE)

SLUG_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"
TYPE_NAME_PATTERN = "^[A-Za-z][A-Za-z0-9_]{0,62}$"
FIELD_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,62}$"
RELATION_NAME_PATTERN = "^[A-Za-z][A-Za-z0-9_-]{0,62}$"
SEMVER_PATTERN = SEMVER.pattern


# What a suite case's `expect` may assert, in the order it is documented.
ASSERTIONS = ("status", "denied_by", "output", "redacted", "cel")

_DESCRIPTION = {"type": "string", "maxLength": 4000}
_NAME_LIST = {"type": "array", "items": {"type": "string"}}


def _closed(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    """Return an object schema that accepts only the given properties."""
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **extra,
    }


def _forbidden(*names: str) -> dict[str, Any]:
    """Return a schema refusing each of the given properties (one `not` per name, for precise errors)."""
    return {"allOf": [{"not": {"required": [name]}} for name in names]}


def _document(kind: str, title: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Return a top-level schema document with its dialect, id and title."""
    return {"$schema": DIALECT, "$id": f"{SCHEMA_BASE_URI}{kind}.json", "title": title, **schema}


def _constraints() -> dict[str, Any]:
    """Return the value constraints shared by entity fields and array items (from the field model)."""
    return {constraint.key: copy.deepcopy(constraint.schema) for constraint in CONSTRAINTS}


def _manifest_schema() -> dict[str, Any]:
    """Return the schema of bundle.yaml."""
    model = _closed(
        {
            "endpoint": {"type": "string", "minLength": 1},
            "name": {"type": "string", "minLength": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "seed": {"type": "integer"},
            "max_tokens": {"type": "integer", "minimum": 1},
        },
        ["endpoint", "name"],
    )
    pipeline = _closed(
        {
            "name": {"type": "string", "pattern": SLUG_PATTERN},
            "description": _DESCRIPTION,
            "input": {"type": "string"},
            "output": {"type": "string"},
            "template": {"type": "string"},
            "model": {"$ref": "#/$defs/model"},
            "policies": _NAME_LIST,
            "store_payload": {"type": "boolean"},
        },
        ["name", "input", "output", "template", "model"],
    )
    manifest = _closed(
        {
            "apiVersion": {"const": API_VERSION},
            "name": {"type": "string", "pattern": SLUG_PATTERN},
            "version": {"type": "string", "pattern": SEMVER_PATTERN},
            "description": _DESCRIPTION,
            "pipelines": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/pipeline"}},
        },
        ["apiVersion", "name", "version", "pipelines"],
        **{"$defs": {"pipeline": pipeline, "model": model}},
    )
    return _document(MANIFEST, "Bundle manifest (bundle.yaml)", manifest)


def _ontology_schema() -> dict[str, Any]:
    """Return the schema of ontology.yaml."""
    concept = _closed(
        {"name": {"type": "string", "pattern": TYPE_NAME_PATTERN}, "description": _DESCRIPTION}, ["name"]
    )
    relation = _closed(
        {
            "name": {"type": "string", "pattern": RELATION_NAME_PATTERN},
            "from": {"type": "string"},
            "to": {"type": "string"},
            "description": _DESCRIPTION,
        },
        ["name", "from", "to"],
    )
    ontology = _closed(
        {
            "concepts": {"type": "array", "minItems": 1, "items": concept},
            "relations": {"type": "array", "items": relation},
        },
        ["concepts"],
    )
    return _document(ONTOLOGY, "Domain ontology (ontology.yaml)", ontology)


def _entity_schema() -> dict[str, Any]:
    """Return the schema of entities/*.yaml."""
    item = _closed({"type": {"enum": list(ITEM_TYPES)}, **_constraints()}, ["type"])
    field = _closed(
        {
            "type": {"enum": list(FIELD_TYPES)},
            "description": _DESCRIPTION,
            "required": {"type": "boolean"},
            "classification": {"enum": list(CLASSIFICATIONS)},
            ITEMS: {"$ref": "#/$defs/item"},
            **_constraints(),
        },
        ["type"],
        # `items` describes array elements: required for arrays, meaningless elsewhere.
        allOf=[
            {
                "if": {"properties": {"type": {"const": "array"}}, "required": ["type"]},
                "then": {"required": [ITEMS]},
                "else": _forbidden(ITEMS),
            }
        ],
    )
    entity = _closed(
        {
            "name": {"type": "string", "pattern": TYPE_NAME_PATTERN},
            "concept": {"type": "string"},
            "description": _DESCRIPTION,
            "fields": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": FIELD_NAME_PATTERN},
                "additionalProperties": {"$ref": "#/$defs/field"},
            },
        },
        ["name", "concept", "fields"],
        **{"$defs": {"field": field, "item": item}},
    )
    return _document(ENTITY, "Entity (entities/*.yaml)", entity)


def _policy_schema() -> dict[str, Any]:
    """Return the schema of policies/*.yaml."""
    properties = {
        "name": {"type": "string", "pattern": SLUG_PATTERN},
        "description": _DESCRIPTION,
        "stage": {"enum": list(STAGES)},
        "effect": {"enum": list(EFFECTS)},
        "when": {"type": "string", "minLength": 1},
        "message": {"type": "string"},
        "fields": {**_NAME_LIST, "minItems": 1},
        "classifications": {"type": "array", "minItems": 1, "items": {"enum": list(CLASSIFICATIONS)}},
    }
    policy = _closed(
        {key: properties[key] for key in POLICY_KEYS},
        list(REQUIRED_KEYS),
        allOf=[
            {
                # deny and warn fire on a condition and remove nothing.
                "if": {"properties": {"effect": {"enum": list(CONDITIONAL_EFFECTS)}}, "required": ["effect"]},
                "then": {"required": ["when"], **_forbidden(*REDACT_TARGETS)},
            },
            {
                # redact removes fields named directly or by classification (optionally only `when`).
                "if": {"properties": {"effect": {"const": REDACT}}, "required": ["effect"]},
                "then": {"anyOf": [{"required": [key]} for key in REDACT_TARGETS]},
            },
        ],
    )
    return _document(POLICY, "Policy (policies/*.yaml)", policy)


def _template_schema() -> dict[str, Any]:
    """Return the schema of templates/*.yaml."""
    template = _closed(
        {
            "name": {"type": "string", "pattern": SLUG_PATTERN},
            "description": _DESCRIPTION,
            "system": {"type": "string"},
            "prompt": {"type": "string", "minLength": 1},
        },
        ["name", "prompt"],
    )
    return _document(TEMPLATE, "Prompt template (templates/*.yaml)", template)


def _suite_schema() -> dict[str, Any]:
    """Return the schema of suites/*.yaml."""
    ratio = {"type": "number", "minimum": 0, "maximum": 1}
    expressions = {
        "type": ["string", "array"],
        "minLength": 1,
        "minItems": 1,
        "items": {"type": "string", "minLength": 1},
    }
    assertions = {
        "status": {"enum": list(STATUSES)},
        "denied_by": {"type": "string"},
        "output": {"type": "object"},
        "redacted": _NAME_LIST,
        "cel": expressions,
    }
    expect = _closed({key: assertions[key] for key in ASSERTIONS}, [], minProperties=1)
    case = _closed(
        {
            "name": {"type": "string", "pattern": SLUG_PATTERN},
            "description": _DESCRIPTION,
            "input": {"type": "object"},
            "caller": {"type": "object"},
            # The recorded answer: text, or a mapping that is replayed as its JSON.
            "model_output": {"type": ["string", "object"]},
            "expect": expect,
        },
        ["name", "input", "expect"],
    )
    suite = _closed(
        {
            "name": {"type": "string", "pattern": SLUG_PATTERN},
            "description": _DESCRIPTION,
            "pipeline": {"type": "string"},
            "thresholds": _closed({"pass_rate": ratio, "policy_coverage": ratio}, []),
            "cases": {"type": "array", "minItems": 1, "items": case},
        },
        ["name", "pipeline", "cases"],
    )
    return _document(SUITE, "Test suite (suites/*.yaml)", suite)


_SCHEMAS: dict[str, dict[str, Any]] = {
    MANIFEST: _manifest_schema(),
    ONTOLOGY: _ontology_schema(),
    ENTITY: _entity_schema(),
    POLICY: _policy_schema(),
    TEMPLATE: _template_schema(),
    SUITE: _suite_schema(),
}


def schema_for(kind: str) -> dict[str, Any]:
    """Return the JSON Schema of one file kind (shared; do not mutate)."""
    return _SCHEMAS[kind]


def all_schemas() -> dict[str, dict[str, Any]]:
    """Return every file kind's JSON Schema, keyed by kind, for publishing."""
    return copy.deepcopy(_SCHEMAS)
