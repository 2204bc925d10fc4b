"""Validate a bundle's files and report every error at once, each with file, path, line and column.

`validate_files` parses every YAML file into a node tree (so errors map back to lines and columns), checks
each file against its JSON Schema (`bundles.schemas`), then checks what crosses files: names are unique per
kind, references resolve (concepts, entities, templates, policies, pipelines), CEL and Jinja parse, templates
only read fields of their pipelines' input entities, suite cases match their entities, and nothing looks like
a credential. Validation never stops at the first problem: users fix a bundle in one round trip.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml
from jinja2 import TemplateSyntaxError
from jsonschema import Draft202012Validator, ValidationError

from bundles import archive
from bundles.archive import (
    ABSOLUTE_PATH,
    ARCHIVE_TOO_LARGE,
    BAD_ARCHIVE,
    FILE_TOO_LARGE,
    LINK_NOT_ALLOWED,
    NOT_UTF8,
    PATH_TRAVERSAL,
    SPECIAL_FILE,
    TOO_MANY_FILES,
    UNEXPECTED_FILE,
    BundleArchiveError,
    BundleError,
)
from bundles.engine import CONSTRAINT_TYPES, MAX_SAFE_INTEGER, ecma_pattern, has_type, json_type
from bundles.entities import BundleCompileError, validate_record
from bundles.schemas import (
    API_VERSION,
    ENTITY,
    FIELD_NAME_PATTERN,
    MANIFEST,
    ONTOLOGY,
    POLICY,
    RELATION_NAME_PATTERN,
    SLUG_PATTERN,
    SUITE,
    TEMPLATE,
    TYPE_NAME_PATTERN,
    schema_for,
)
from bundles.templating import template_variables
from policies import ALLOWED_VARIABLES, PolicySyntaxError, compile_expression

# The archive codes are re-exported so callers import every code from this module.
__all__ = [
    "ABSOLUTE_PATH",
    "ARCHIVE_TOO_LARGE",
    "BAD_ARCHIVE",
    "FILE_TOO_LARGE",
    "LINK_NOT_ALLOWED",
    "NOT_UTF8",
    "PATH_TRAVERSAL",
    "SPECIAL_FILE",
    "TOO_MANY_FILES",
    "UNEXPECTED_FILE",
    "BundleArchiveError",
    "BundleError",
    "ValidationResult",
    "validate_files",
]

YAML_SYNTAX = "yaml_syntax"
YAML_ALIAS = "yaml_alias"
DUPLICATE_KEY = "duplicate_key"
NOT_A_MAPPING = "not_a_mapping"
MISSING_FILE = "missing_file"
UNKNOWN_FIELD = "unknown_field"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
INVALID_VALUE = "invalid_value"
BAD_SEMVER = "bad_semver"
DUPLICATE_NAME = "duplicate_name"
UNKNOWN_CONCEPT = "unknown_concept"
UNKNOWN_ENTITY = "unknown_entity"
UNKNOWN_TEMPLATE = "unknown_template"
UNKNOWN_POLICY = "unknown_policy"
UNKNOWN_PIPELINE = "unknown_pipeline"
UNKNOWN_FIELD_REFERENCE = "unknown_field_reference"
CEL_SYNTAX = "cel_syntax"
CEL_UNKNOWN_VARIABLE = "cel_unknown_variable"
JINJA_SYNTAX = "jinja_syntax"
TEMPLATE_VARIABLE_UNDEFINED = "template_variable_undefined"
SUITE_INPUT_INVALID = "suite_input_invalid"
SUITE_EXPECT_INVALID = "suite_expect_invalid"
SECRET_IN_BUNDLE = "secret_in_bundle"  # noqa: S105 (an error code, not a secret)

MESSAGE_YAML_SYNTAX = "YAML syntax error: {problem}"
MESSAGE_YAML_ALIAS = "YAML anchors and aliases are not allowed in bundles"
MESSAGE_YAML_TAG = "YAML type {tag} is not allowed; use strings, numbers, booleans, lists and mappings"
MESSAGE_KEY_NOT_STRING = "mapping keys must be strings; quote {key!r}"
MESSAGE_DUPLICATE_KEY = "key '{key}' appears more than once in this mapping"
MESSAGE_NOT_FINITE = "numbers must be finite"
MESSAGE_INTEGER_TOO_LARGE = "integers must be between -(2**53-1) and 2**53-1"
MESSAGE_NOT_A_MAPPING = "the file must be a YAML mapping, got {actual}"
MESSAGE_FILE_NOT_TEXT = "the file content must be text, got {actual}"
MESSAGE_MISSING_FILE = "the bundle has no {file}"
MESSAGE_UNEXPECTED_LOCATION = (
    "unexpected file: a bundle holds bundle.yaml, ontology.yaml, README.md and "
    "entities/, policies/, templates/, suites/ with one .yaml file each"
)
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
MESSAGE_DUPLICATE_NAME = "{kind} '{name}' is already defined in {other}"
MESSAGE_DUPLICATE_IN_LIST = "'{name}' is listed more than once"
MESSAGE_UNKNOWN_CONCEPT = "'{name}' is not a concept of the ontology"
MESSAGE_UNKNOWN_ENTITY = "'{name}' is not an entity of the bundle"
MESSAGE_UNKNOWN_TEMPLATE = "'{name}' is not a template of the bundle"
MESSAGE_UNKNOWN_POLICY = "'{name}' is not a policy of the bundle"
MESSAGE_UNKNOWN_PIPELINE = "'{name}' is not a pipeline of bundle.yaml"
MESSAGE_UNKNOWN_FIELD_REFERENCE = "'{field}' is not a field of entity {entity} (pipeline '{pipeline}')"
MESSAGE_CONSTRAINT_NOT_APPLICABLE = "'{constraint}' does not apply to {type} fields"
MESSAGE_ENUM_VALUE_TYPE = "enum value {value!r} is not a {type}"
MESSAGE_BAD_PATTERN = "not a valid regular expression: {reason}"
MESSAGE_EMPTY_RANGE = "'{low}' ({low_value}) is greater than '{high}' ({high_value})"
MESSAGE_CEL_SYNTAX = "CEL syntax error: {reason}"
MESSAGE_CEL_UNKNOWN_VARIABLE = "unknown variable '{variable}'; available: {allowed}"
MESSAGE_CEL_OUTPUT_IN_PRE = "a pre policy runs before the model: 'output' is not available"
MESSAGE_JINJA_SYNTAX = "Jinja syntax error: {reason}"
MESSAGE_TEMPLATE_VARIABLE = (
    "the template reads input.{field}, but {entity} (input of pipeline '{pipeline}') has no field '{field}'"
)
MESSAGE_SUITE_INPUT = "{field} {reason} (input entity {entity})"
MESSAGE_DENIED_BY_NOT_IN_PIPELINE = "'{policy}' is not a policy of pipeline '{pipeline}'"
MESSAGE_DENIED_BY_NOT_DENY = "'{policy}' is a {effect} policy; only deny policies deny"
MESSAGE_DENIED_BY_STATUS = "denied_by needs status 'denied', got '{status}'"
MESSAGE_EXPECT_FIELD = "'{field}' is not a field of {entity}"
MESSAGE_EXPECT_REDACTED = "'{field}' is not a field of {entities}"
MESSAGE_NEEDS_MODEL_OUTPUT = "a case expecting '{status}' reaches the model and needs a model_output"
MESSAGE_INPUT_IS_VALID = "the case expects 'invalid_input' but its input is a valid {entity}"
MESSAGE_SECRET = "this looks like {kind}; keep credentials out of bundles"  # noqa: S105 (a message)

MANIFEST_FILE = "bundle.yaml"
ONTOLOGY_FILE = "ontology.yaml"
REQUIRED_FILES = (MANIFEST_FILE, ONTOLOGY_FILE)
ROOT_FILE_KINDS = {MANIFEST_FILE: MANIFEST, ONTOLOGY_FILE: ONTOLOGY}
DIRECTORY_KINDS = {"entities": ENTITY, "policies": POLICY, "templates": TEMPLATE, "suites": SUITE}
README_KIND = "readme"
# Per kind referred to by name (pipelines are defined by the manifest): the error of a dangling reference.
REFERENCE_ERRORS = {
    ENTITY: (UNKNOWN_ENTITY, MESSAGE_UNKNOWN_ENTITY),
    TEMPLATE: (UNKNOWN_TEMPLATE, MESSAGE_UNKNOWN_TEMPLATE),
    POLICY: (UNKNOWN_POLICY, MESSAGE_UNKNOWN_POLICY),
    MANIFEST: (UNKNOWN_PIPELINE, MESSAGE_UNKNOWN_PIPELINE),
}

# Variables a suite's `expect.cel` assertion may read (the engine decision is exposed as `decision`).
SUITE_CEL_VARIABLES = frozenset({"input", "output", "decision"})
STATUSES_NEEDING_MODEL = frozenset({"allowed", "invalid_output"})
JSON_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
STR_TAG = "tag:yaml.org,2002:str"
STRING_LIKE_TAGS = frozenset({"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"})

SECRET_PATTERNS = (
    ("an API secret key (sk-...)", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Stripe secret key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{20,}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("a CONTRACTOR runtime key", re.compile(r"\bck_[0-9a-f]{8}_[A-Za-z0-9_-]{40,64}")),
    ("a CONTRACTOR webhook secret", re.compile(r"\bwhsec_[A-Za-z0-9_-]{40,}")),
)

NAME_RULES = {
    SLUG_PATTERN: "lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters",
    TYPE_NAME_PATTERN: "letters, digits and '_', starting with a letter, at most 63 characters",
    FIELD_NAME_PATTERN: "letters, digits and '_', not starting with a digit, at most 63 characters",
    RELATION_NAME_PATTERN: "letters, digits, '_' and '-', starting with a letter, at most 63 characters",
}
NOT_APPLICABLE_REASONS = {
    "items": "only array fields have 'items'",
    "fields": "only redact policies remove fields",
    "classifications": "only redact policies remove fields",
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
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

Parts = tuple[str | int, ...]


@dataclass
class ValidationResult:
    """The parsed content (path → value), every error found, and the manifest (None if unreadable)."""

    content: dict[str, Any]
    errors: list[BundleError]
    manifest: dict[str, Any] | None

    @property
    def valid(self) -> bool:
        """Return whether the bundle has no error."""
        return not self.errors


@dataclass
class ParsedFile:
    """One bundle file: its kind, source text, YAML node tree (for positions) and parsed value."""

    path: str
    kind: str
    text: str
    node: yaml.Node | None = None
    value: Any = None
    usable: bool = False  # parsed into a mapping that later checks may read


@dataclass
class Definition:
    """A named thing defined in a file (an entity, a policy, ...)."""

    name: str
    file: ParsedFile
    parts: Parts
    body: dict[str, Any] = field(default_factory=dict)


class _ContentLoader(yaml.SafeLoader):
    """SafeLoader that reads dates and a bare `=` as strings, so every value stays JSON-compatible."""


_ContentLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in STRING_LIKE_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


_SCALARS = yaml.constructor.SafeConstructor()


@cache
def schema_validator(kind: str) -> Draft202012Validator:
    """Return the (cached) JSON Schema validator of one file kind."""
    return Draft202012Validator(schema_for(kind))


def validate_files(files: dict[str, str]) -> ValidationResult:
    """Return the parsed content of a bundle's files and every error they contain."""
    return _BundleValidation(files).run()


def format_path(parts: Parts) -> str:
    """Return a readable location inside a file, e.g. `pipelines[0].template` or `fields.amount.type`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def file_kind(path: str) -> str | None:
    """Return the kind of file a bundle path holds, or None when it has no place in a bundle."""
    if path in ROOT_FILE_KINDS:
        return ROOT_FILE_KINDS[path]
    if path == archive.README_NAME:
        return README_KIND
    directory, _, name = path.partition("/")
    stem = name.rsplit(".", 1)[0]
    if directory in DIRECTORY_KINDS and "/" not in name and name.endswith(archive.YAML_SUFFIXES) and stem:
        return DIRECTORY_KINDS[directory]
    return None


def locate_node(node: yaml.Node | None, parts: Parts, *, key: bool = False) -> yaml.Node | None:
    """Return the node at `parts` (its key node when `key`), or the deepest ancestor that exists."""
    current = node
    for index, part in enumerate(parts):
        child = None
        if isinstance(current, yaml.MappingNode):
            want_key = key and index == len(parts) - 1
            for key_node, value_node in current.value:  # the last duplicate wins, as in the parsed value
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    child = key_node if want_key else value_node
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            child = current.value[part]
        if child is None:
            return current
        current = child
    return current


def yaml_problem(error: yaml.YAMLError, text: str) -> tuple[str, tuple[int | None, int | None]]:
    """Return the reason of a YAML error and its 1-based (line, column) when known."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or str(error)
        return problem, ((mark.line + 1, mark.column + 1) if mark else (None, None))
    if isinstance(error, yaml.reader.ReaderError):
        before = text[: error.position]
        column = error.position - (before.rfind("\n") + 1) + 1
        return f"{error.reason} (#x{error.character:04x})", (before.count("\n") + 1, column)
    return str(error), (None, None)


def _mapping(value: Any) -> dict[str, Any]:
    """Return the value if it is a mapping, else an empty one (the schema already reported it)."""
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    """Return the value if it is a list, else an empty one (the schema already reported it)."""
    return value if isinstance(value, list) else []


def _source_position(text: str, needle: re.Pattern[str]) -> tuple[int, int] | None:
    """Return the 1-based (line, column) of the first match of `needle` in a value's text."""
    match = needle.search(text)
    if match is None:
        return None
    before = text[: match.start()]
    return before.count("\n") + 1, match.start() - (before.rfind("\n") + 1) + 1


class _BundleValidation:
    """One validation run over a bundle's files; every check appends to `errors`."""

    def __init__(self, files: dict[str, str]):
        self.files = files
        self.errors: list[BundleError] = []
        self.parsed: dict[str, ParsedFile] = {}
        self.concepts: set[str] | None = None
        self.entities: dict[str, Definition] = {}
        self.policies: dict[str, Definition] = {}
        self.templates: dict[str, Definition] = {}
        self.pipelines: dict[str, Definition] = {}
        self.reported: set[tuple[str, str, str, str]] = set()
        self.unreadable: set[str] = set()  # kinds with a file that did not parse into a mapping

    def run(self) -> ValidationResult:
        """Run every check and return the result."""
        self.errors.extend(archive.limit_errors(self.files))
        too_large = {error.file for error in self.errors if error.code == FILE_TOO_LARGE}
        for path in sorted(self.files):
            if path not in too_large:
                self.read_file(path, self.files[path])
        for required in REQUIRED_FILES:
            if required not in self.files:
                self.report(MISSING_FILE, required, (), MESSAGE_MISSING_FILE.format(file=required))
        self.unreadable = {parsed.kind for parsed in self.parsed.values() if not parsed.usable}
        if MANIFEST_FILE not in self.parsed:
            self.unreadable.add(MANIFEST)
        for parsed in self.yaml_files():
            self.check_schema(parsed)
        self.index_definitions()
        self.check_ontology()
        self.check_entities()
        self.check_policies()
        self.check_templates()
        self.check_pipelines()
        self.check_suites()
        self.check_secrets()
        return self.result()

    def result(self) -> ValidationResult:
        """Return the content read and the errors sorted by file and position."""
        content = {
            path: parsed.text if parsed.kind == README_KIND else parsed.value
            for path, parsed in sorted(self.parsed.items())
            if parsed.usable or parsed.kind == README_KIND
        }
        manifest = self.parsed.get(MANIFEST_FILE)
        errors = sorted(
            self.errors, key=lambda e: (e.file, e.line or 0, e.column or 0, e.path, e.code, e.message)
        )
        return ValidationResult(content, errors, manifest.value if manifest and manifest.usable else None)

    # -- reporting -------------------------------------------------------------------------------------

    def report(
        self,
        code: str,
        file: str | ParsedFile,
        parts: Parts,
        message: str,
        *,
        key: bool = False,
        position: tuple[int | None, int | None] | None = None,
    ) -> None:
        """Record one error, positioned on the YAML node at `parts` unless `position` is given."""
        parsed = file if isinstance(file, ParsedFile) else self.parsed.get(file)
        path = parsed.path if parsed else str(file)
        if position is None:
            position = self.node_position(parsed, parts, key=key)
        signature = (code, path, format_path(parts), message)
        if signature in self.reported:
            return
        self.reported.add(signature)
        self.errors.append(BundleError(code, path, format_path(parts), message, *position))

    def node_position(self, parsed: ParsedFile | None, parts: Parts, *, key: bool = False) -> tuple:
        """Return the 1-based (line, column) of the node at `parts`, or (None, None)."""
        node = locate_node(parsed.node, parts, key=key) if parsed else None
        if node is None:
            return None, None
        return node.start_mark.line + 1, node.start_mark.column + 1

    def value_position(self, parsed: ParsedFile, parts: Parts, line: int | None, column: int | None) -> tuple:
        """Return the file position of (line, column) inside the scalar string at `parts`."""
        node = locate_node(parsed.node, parts)
        if not isinstance(node, yaml.ScalarNode) or line is None:
            return self.node_position(parsed, parts)
        start = node.start_mark
        lines = node.value.rstrip("\n").split("\n")
        if line > len(lines):
            # Errors "at end of input" sit after the final newline: point at the end of the last line.
            line, column = len(lines), len(lines[-1]) + 1
        if node.style in ("|", ">"):
            # Block scalar content starts on the line after the indicator, at the block's indentation.
            source_lines = parsed.text.splitlines()
            content = [text for text in source_lines[start.line + 1 : node.end_mark.line + 1] if text.strip()]
            indent = len(content[0]) - len(content[0].lstrip(" ")) if content else 0
            return start.line + line + 1, (indent + column if column is not None else None)
        if line == 1 and start.line == node.end_mark.line:
            quote = 1 if node.style in ("'", '"') else 0
            return start.line + 1, (start.column + quote + column if column is not None else None)
        return start.line + line, None

    # -- reading ---------------------------------------------------------------------------------------

    def read_file(self, path: str, text: Any) -> None:
        """Check one file's path and parse it."""
        unsafe = archive.path_errors(path)
        if unsafe:
            self.errors.extend(unsafe)
            return
        kind = file_kind(path)
        if kind is None:
            if not archive.is_junk(path):
                self.report(UNEXPECTED_FILE, path, (), MESSAGE_UNEXPECTED_LOCATION)
            return
        if not isinstance(text, str):
            self.report(WRONG_TYPE, path, (), MESSAGE_FILE_NOT_TEXT.format(actual=json_type(text)))
            return
        parsed = ParsedFile(path, kind, text)
        self.parsed[path] = parsed
        if kind != README_KIND:
            self.parse_yaml(parsed)

    def parse_yaml(self, parsed: ParsedFile) -> None:
        """Parse a YAML file into its node tree and value, reporting syntax and type problems."""
        try:
            self.load_yaml(parsed)
        except yaml.YAMLError as exc:
            problem, position = yaml_problem(exc, parsed.text)
            self.report(
                YAML_SYNTAX, parsed, (), MESSAGE_YAML_SYNTAX.format(problem=problem), position=position
            )
            return
        if parsed.node is None:
            message = MESSAGE_NOT_A_MAPPING.format(actual="an empty file")
            self.report(NOT_A_MAPPING, parsed, (), message, position=(1, 1))
        elif parsed.value is not None and not parsed.usable:
            message = MESSAGE_NOT_A_MAPPING.format(actual=json_type(parsed.value))
            self.report(NOT_A_MAPPING, parsed, (), message)

    def load_yaml(self, parsed: ParsedFile) -> None:
        """Compose the node tree, check it, and build the value when it is safe to."""
        loader = _ContentLoader(parsed.text)  # reads the whole text: raises ReaderError on control characters
        try:
            parsed.node = loader.get_single_node()
            if parsed.node is not None and self.check_nodes(parsed):
                parsed.value = loader.construct_document(parsed.node)
                parsed.usable = isinstance(parsed.value, dict)
        finally:
            loader.dispose()

    def check_nodes(self, parsed: ParsedFile) -> bool:
        """Report aliases, non-JSON types and duplicate keys; return whether the value may be built."""
        buildable = True
        seen: set[int] = set()
        # Breadth-first and in document order, so an alias is reported where it is used, not at its anchor.
        stack: deque[tuple[yaml.Node, Parts]] = deque([(parsed.node, ())])
        while stack:
            node, parts = stack.popleft()
            if id(node) in seen:
                self.report(YAML_ALIAS, parsed, parts, MESSAGE_YAML_ALIAS, key=True)
                buildable = False
                continue
            seen.add(id(node))
            if node.tag not in JSON_TAGS:
                self.report(WRONG_TYPE, parsed, parts, MESSAGE_YAML_TAG.format(tag=node.tag))
                buildable = False
            elif isinstance(node, yaml.MappingNode):
                buildable &= self.check_mapping_node(parsed, node, parts, stack)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((child, (*parts, index)) for index, child in enumerate(node.value))
            else:
                self.check_number_node(parsed, node, parts)
        return buildable

    def check_mapping_node(
        self, parsed: ParsedFile, node: yaml.MappingNode, parts: Parts, stack: deque
    ) -> bool:
        """Check one mapping's keys and queue its values; return whether it may be built."""
        buildable = True
        keys: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != STR_TAG:
                key_text = getattr(key_node, "value", "?")
                self.report(
                    WRONG_TYPE,
                    parsed,
                    parts,
                    MESSAGE_KEY_NOT_STRING.format(key=key_text),
                    position=(key_node.start_mark.line + 1, key_node.start_mark.column + 1),
                )
                buildable = False
                continue
            if key_node.value in keys:
                self.report(
                    DUPLICATE_KEY,
                    parsed,
                    (*parts, key_node.value),
                    MESSAGE_DUPLICATE_KEY.format(key=key_node.value),
                    position=(key_node.start_mark.line + 1, key_node.start_mark.column + 1),
                )
            keys.add(key_node.value)
            stack.append((value_node, (*parts, key_node.value)))
        return buildable

    def check_number_node(self, parsed: ParsedFile, node: yaml.ScalarNode, parts: Parts) -> None:
        """Report numbers that JSON (and so the canonical digest) cannot represent exactly."""
        if node.tag == FLOAT_TAG:
            number = _SCALARS.construct_yaml_float(node)
            if not math.isfinite(number):
                self.report(INVALID_VALUE, parsed, parts, MESSAGE_NOT_FINITE)
        elif node.tag == INT_TAG:
            number = _SCALARS.construct_yaml_int(node)
            if abs(number) > MAX_SAFE_INTEGER:
                self.report(INVALID_VALUE, parsed, parts, MESSAGE_INTEGER_TOO_LARGE)

    def yaml_files(self, kind: str | None = None) -> Iterator[ParsedFile]:
        """Yield the usable YAML files, of one kind when given, in path order."""
        for path in sorted(self.parsed):
            parsed = self.parsed[path]
            if parsed.usable and (kind is None or parsed.kind == kind):
                yield parsed

    # -- schema ----------------------------------------------------------------------------------------

    def check_schema(self, parsed: ParsedFile) -> None:
        """Report every way a file breaks its kind's JSON Schema."""
        for error in schema_validator(parsed.kind).iter_errors(parsed.value):
            self.report_schema_error(parsed, error)

    def report_schema_error(self, parsed: ParsedFile, error: ValidationError) -> None:
        """Translate one JSON Schema error into bundle errors with stable codes."""
        parts: Parts = tuple(error.absolute_path)
        kind = error.validator
        if "propertyNames" in error.schema_path:
            rule = NAME_RULES.get(error.validator_value, error.validator_value)
            message = MESSAGE_BAD_FIELD_NAME.format(value=error.instance, rule=rule)
            self.report(INVALID_VALUE, parsed, (*parts, error.instance), message, key=True)
        elif kind == "additionalProperties":
            allowed = ", ".join(error.schema.get("properties", {}))
            for name in error.instance:
                if name not in error.schema.get("properties", {}):
                    message = MESSAGE_UNKNOWN_FIELD.format(field=name, allowed=allowed)
                    self.report(UNKNOWN_FIELD, parsed, (*parts, name), message, key=True)
        elif kind == "not" and set(error.validator_value) == {"required"}:
            for name in error.validator_value["required"]:
                reason = NOT_APPLICABLE_REASONS.get(name, "it does not apply")
                message = MESSAGE_FIELD_NOT_APPLICABLE.format(field=name, reason=reason)
                self.report(UNKNOWN_FIELD, parsed, (*parts, name), message, key=True)
        elif kind == "required":
            for name in error.validator_value:
                if name not in error.instance:
                    self.report(
                        MISSING_FIELD, parsed, (*parts, name), MESSAGE_MISSING_FIELD.format(field=name)
                    )
        elif kind == "anyOf" and parsed.kind == POLICY:
            self.report(MISSING_FIELD, parsed, (*parts, "fields"), MESSAGE_REDACT_NEEDS_TARGET)
        elif parsed.kind == MANIFEST and parts == ("version",) and kind in ("type", "pattern"):
            self.report(BAD_SEMVER, parsed, parts, MESSAGE_BAD_SEMVER.format(value=error.instance))
        elif kind == "type":
            types = (
                error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
            )
            expected = " or ".join(JSON_TYPE_NAMES.get(name, f"a {name}") for name in types)
            message = MESSAGE_WRONG_TYPE.format(expected=expected, actual=json_type(error.instance))
            self.report(WRONG_TYPE, parsed, parts, message)
        else:
            self.report(INVALID_VALUE, parsed, parts, self.value_message(error))

    def value_message(self, error: ValidationError) -> str:
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

    # -- definitions -----------------------------------------------------------------------------------

    def index_definitions(self) -> None:
        """Collect the named definitions of each kind, reporting duplicate names."""
        for kind, registry in (
            (ENTITY, self.entities),
            (POLICY, self.policies),
            (TEMPLATE, self.templates),
        ):
            for parsed in self.yaml_files(kind):
                self.define(registry, kind, parsed, (), parsed.value)
        manifest = self.parsed.get(MANIFEST_FILE)
        if manifest and manifest.usable:
            for index, pipeline in enumerate(_sequence(manifest.value.get("pipelines"))):
                self.define(self.pipelines, "pipeline", manifest, ("pipelines", index), pipeline)

    def define(self, registry: dict, kind: str, parsed: ParsedFile, parts: Parts, body: Any) -> None:
        """Register one named definition unless its name is taken (then report the duplicate)."""
        name = _mapping(body).get("name")
        if not isinstance(name, str):
            return
        if name in registry:
            other = registry[name]
            where = other.file.path if other.file is not parsed else format_path((*other.parts, "name"))
            message = MESSAGE_DUPLICATE_NAME.format(kind=kind, name=name, other=where)
            self.report(DUPLICATE_NAME, parsed, (*parts, "name"), message)
            return
        registry[name] = Definition(name, parsed, parts, body)

    def unique_names(self, parsed: ParsedFile, items: list[Any], parts: Parts, kind: str) -> set[str]:
        """Return the names of a list of named mappings, reporting repeats."""
        first_seen: dict[str, int] = {}
        for index, item in enumerate(items):
            name = _mapping(item).get("name")
            if not isinstance(name, str):
                continue
            if name in first_seen:
                where = format_path((*parts, first_seen[name], "name"))
                message = MESSAGE_DUPLICATE_NAME.format(kind=kind, name=name, other=where)
                self.report(DUPLICATE_NAME, parsed, (*parts, index, "name"), message)
            else:
                first_seen[name] = index
        return set(first_seen)

    # -- ontology and entities -------------------------------------------------------------------------

    def check_ontology(self) -> None:
        """Check concept and relation names, and that relations join concepts."""
        ontology = self.parsed.get(ONTOLOGY_FILE)
        if not (ontology and ontology.usable):
            return
        concepts = _sequence(ontology.value.get("concepts"))
        self.concepts = self.unique_names(ontology, concepts, ("concepts",), "concept")
        relations = _sequence(ontology.value.get("relations"))
        self.unique_names(ontology, relations, ("relations",), "relation")
        for index, relation in enumerate(relations):
            for end in ("from", "to"):
                self.check_concept(ontology, ("relations", index, end), _mapping(relation).get(end))

    def check_concept(self, parsed: ParsedFile, parts: Parts, name: Any) -> None:
        """Report a reference to a concept the ontology does not define."""
        if isinstance(name, str) and self.concepts is not None and name not in self.concepts:
            self.report(UNKNOWN_CONCEPT, parsed, parts, MESSAGE_UNKNOWN_CONCEPT.format(name=name))

    def check_entities(self) -> None:
        """Check each entity's concept and the consistency of its field constraints."""
        for parsed in self.yaml_files(ENTITY):
            self.check_concept(parsed, ("concept",), parsed.value.get("concept"))
            for name, spec in _mapping(parsed.value.get("fields")).items():
                spec = _mapping(spec)
                self.check_constraints(parsed, ("fields", name), spec)
                if spec.get("type") == "array" and isinstance(spec.get("items"), dict):
                    self.check_constraints(parsed, ("fields", name, "items"), spec["items"])

    def check_constraints(self, parsed: ParsedFile, parts: Parts, spec: dict[str, Any]) -> None:
        """Report constraints that do not fit the field's type or cannot be satisfied."""
        field_type = spec.get("type")
        if not isinstance(field_type, str):
            return
        for constraint, types in CONSTRAINT_TYPES.items():
            if constraint in spec and constraint != "items" and field_type not in types:
                message = MESSAGE_CONSTRAINT_NOT_APPLICABLE.format(constraint=constraint, type=field_type)
                self.report(INVALID_VALUE, parsed, (*parts, constraint), message, key=True)
        for index, value in enumerate(_sequence(spec.get("enum"))):
            if not has_type(value, field_type):
                message = MESSAGE_ENUM_VALUE_TYPE.format(value=value, type=field_type)
                self.report(INVALID_VALUE, parsed, (*parts, "enum", index), message)
        if isinstance(spec.get("pattern"), str):
            try:
                re.compile(ecma_pattern(spec["pattern"]))
            except re.error as exc:
                self.report(
                    INVALID_VALUE, parsed, (*parts, "pattern"), MESSAGE_BAD_PATTERN.format(reason=exc)
                )
        self.check_range(parsed, parts, spec, "minimum", "maximum")
        self.check_range(parsed, parts, spec, "minLength", "maxLength")

    def check_range(self, parsed: ParsedFile, parts: Parts, spec: dict, low: str, high: str) -> None:
        """Report a lower bound above its upper bound (no value could ever be valid)."""
        low_value, high_value = spec.get(low), spec.get(high)
        numbers = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low_value, high_value)
        )
        if numbers and low_value > high_value:
            message = MESSAGE_EMPTY_RANGE.format(
                low=low, low_value=low_value, high=high, high_value=high_value
            )
            self.report(INVALID_VALUE, parsed, (*parts, low), message)

    # -- policies and templates ------------------------------------------------------------------------

    def check_policies(self) -> None:
        """Check every policy's CEL condition: syntax and the variables it may read."""
        for parsed in self.yaml_files(POLICY):
            when = parsed.value.get("when")
            if isinstance(when, str):
                allowed = set(ALLOWED_VARIABLES)
                if parsed.value.get("stage") == "pre":
                    allowed.discard("output")
                self.check_cel(parsed, ("when",), when, allowed)

    def check_cel(self, parsed: ParsedFile, parts: Parts, source: str, allowed: set[str]) -> None:
        """Report a CEL expression that does not parse or reads variables it may not."""
        try:
            compiled = compile_expression(source)
        except PolicySyntaxError as exc:
            position = self.value_position(parsed, parts, exc.line, exc.column)
            self.report(
                CEL_SYNTAX, parsed, parts, MESSAGE_CEL_SYNTAX.format(reason=exc.message), position=position
            )
            return
        for variable in sorted(set(compiled.variables) - allowed):
            if variable == "output" and "input" in allowed:  # a policy that runs before the model
                message = MESSAGE_CEL_OUTPUT_IN_PRE
            else:
                message = MESSAGE_CEL_UNKNOWN_VARIABLE.format(
                    variable=variable, allowed=", ".join(sorted(allowed))
                )
            found = _source_position(source, re.compile(rf"\b{re.escape(variable)}\b"))
            position = self.value_position(parsed, parts, *(found or (None, None)))
            self.report(CEL_UNKNOWN_VARIABLE, parsed, parts, message, position=position)

    def check_templates(self) -> None:
        """Report Jinja syntax errors in templates."""
        for parsed in self.yaml_files(TEMPLATE):
            for key in ("system", "prompt"):
                source = parsed.value.get(key)
                if not isinstance(source, str):
                    continue
                try:
                    template_variables(source)
                except TemplateSyntaxError as exc:
                    position = self.value_position(parsed, (key,), exc.lineno, None)
                    message = MESSAGE_JINJA_SYNTAX.format(reason=exc.message)
                    self.report(JINJA_SYNTAX, parsed, (key,), message, position=position)

    # -- pipelines -------------------------------------------------------------------------------------

    def check_pipelines(self) -> None:
        """Check each pipeline's references and what its template and policies read from the entities."""
        manifest = self.parsed.get(MANIFEST_FILE)
        if not (manifest and manifest.usable):
            return
        for index, pipeline in enumerate(_sequence(manifest.value.get("pipelines"))):
            pipeline = _mapping(pipeline)
            parts: Parts = ("pipelines", index)
            input_entity = self.resolve(manifest, (*parts, "input"), pipeline.get("input"), ENTITY)
            output_entity = self.resolve(manifest, (*parts, "output"), pipeline.get("output"), ENTITY)
            template = self.resolve(manifest, (*parts, "template"), pipeline.get("template"), TEMPLATE)
            policies = self.pipeline_policies(manifest, parts, pipeline)
            name = pipeline.get("name")
            if template and input_entity:
                self.check_template_fields(template, input_entity, name)
            for policy in policies:
                entity = input_entity if policy.body.get("stage") == "pre" else output_entity
                if entity and policy.body.get("effect") == "redact":
                    self.check_redacted_fields(policy, entity, name)

    def resolve(self, parsed: ParsedFile, parts: Parts, name: Any, kind: str) -> Definition | None:
        """Return the definition of `kind` a reference names, reporting it when it does not exist."""
        if not isinstance(name, str):
            return None
        registry = {ENTITY: self.entities, TEMPLATE: self.templates, POLICY: self.policies}.get(
            kind, self.pipelines
        )
        if name in registry:
            return registry[name]
        # An unreadable file of that kind may well define the name: one error for it is enough.
        if kind not in self.unreadable:
            code, message = REFERENCE_ERRORS[kind]
            self.report(code, parsed, parts, message.format(name=name))
        return None

    def pipeline_policies(self, manifest: ParsedFile, parts: Parts, pipeline: dict) -> list[Definition]:
        """Return the policies a pipeline lists, reporting unknown and repeated names."""
        policies, seen = [], set()
        for index, name in enumerate(_sequence(pipeline.get("policies"))):
            where = (*parts, "policies", index)
            if not isinstance(name, str):
                continue  # reported by the schema
            if name in seen:
                self.report(DUPLICATE_NAME, manifest, where, MESSAGE_DUPLICATE_IN_LIST.format(name=name))
                continue
            seen.add(name)
            policy = self.resolve(manifest, where, name, POLICY)
            if policy:
                policies.append(policy)
        return policies

    def check_template_fields(self, template: Definition, entity: Definition, pipeline: Any) -> None:
        """Report template reads of `input.x` where x is not a field of the pipeline's input entity."""
        fields = _mapping(entity.body.get("fields"))
        for key in ("system", "prompt"):
            source = template.body.get(key)
            if not isinstance(source, str):
                continue
            try:
                used = template_variables(source)
            except TemplateSyntaxError:
                continue  # reported by check_templates
            for name in sorted(used - set(fields)):
                needle = re.compile(
                    rf"\binput\s*(?:\.\s*{re.escape(name)}\b|\[\s*['\"]{re.escape(name)}['\"])"
                )
                found = _source_position(source, needle)
                position = self.value_position(template.file, (key,), *(found or (None, None)))
                message = MESSAGE_TEMPLATE_VARIABLE.format(field=name, entity=entity.name, pipeline=pipeline)
                self.report(TEMPLATE_VARIABLE_UNDEFINED, template.file, (key,), message, position=position)

    def check_redacted_fields(self, policy: Definition, entity: Definition, pipeline: Any) -> None:
        """Report redact `fields` that the entity the policy applies to does not have."""
        fields = _mapping(entity.body.get("fields"))
        for index, name in enumerate(_sequence(policy.body.get("fields"))):
            if isinstance(name, str) and name not in fields:
                message = MESSAGE_UNKNOWN_FIELD_REFERENCE.format(
                    field=name, entity=entity.name, pipeline=pipeline
                )
                self.report(UNKNOWN_FIELD_REFERENCE, policy.file, ("fields", index), message)

    # -- suites ----------------------------------------------------------------------------------------

    def check_suites(self) -> None:
        """Check every suite: its pipeline, case names, inputs and expectations."""
        suites: dict[str, Definition] = {}
        for parsed in self.yaml_files(SUITE):
            self.define(suites, "suite", parsed, (), parsed.value)
            cases = _sequence(parsed.value.get("cases"))
            self.unique_names(parsed, cases, ("cases",), "case")
            pipeline = self.resolve(parsed, ("pipeline",), parsed.value.get("pipeline"), MANIFEST)
            for index, case in enumerate(cases):
                self.check_case(parsed, ("cases", index), _mapping(case), pipeline)

    def check_case(self, parsed: ParsedFile, parts: Parts, case: dict, pipeline: Definition | None) -> None:
        """Check one suite case against its pipeline's entities and policies."""
        expect = _mapping(case.get("expect"))
        for cel_parts, expression in self.case_expressions(parts, expect.get("cel")):
            self.check_cel(parsed, cel_parts, expression, set(SUITE_CEL_VARIABLES))
        status = expect.get("status")
        if status in STATUSES_NEEDING_MODEL and "model_output" not in case:
            self.report(
                SUITE_EXPECT_INVALID,
                parsed,
                (*parts, "expect", "status"),
                MESSAGE_NEEDS_MODEL_OUTPUT.format(status=status),
            )
        if pipeline is None:
            return
        input_entity = self.entities.get(pipeline.body.get("input"))
        output_entity = self.entities.get(pipeline.body.get("output"))
        if input_entity and isinstance(case.get("input"), dict):
            self.check_case_input(parsed, parts, case["input"], input_entity, status)
        self.check_denied_by(parsed, parts, case, pipeline)
        if output_entity:
            output_fields = _mapping(output_entity.body.get("fields"))
            for name in _mapping(expect.get("output")):
                if name not in output_fields:
                    message = MESSAGE_EXPECT_FIELD.format(field=name, entity=output_entity.name)
                    self.report(
                        SUITE_EXPECT_INVALID, parsed, (*parts, "expect", "output", name), message, key=True
                    )
        if input_entity and output_entity:
            self.check_expected_redactions(parsed, parts, expect, [input_entity, output_entity])

    def case_expressions(self, parts: Parts, cel: Any) -> list[tuple[Parts, str]]:
        """Return a case's `expect.cel` expressions (one string or a list) with their locations."""
        where = (*parts, "expect", "cel")
        if isinstance(cel, str):
            return [(where, cel)]
        return [((*where, index), text) for index, text in enumerate(_sequence(cel)) if isinstance(text, str)]

    def check_case_input(
        self, parsed: ParsedFile, parts: Parts, value: dict, entity: Definition, status: Any
    ) -> None:
        """Report a case input that does not match the pipeline's input entity (unless that is the point)."""
        try:
            problems = validate_record(entity.body, value)
        except BundleCompileError:
            return  # the entity itself is broken, and reported against its own file
        if status == "invalid_input":
            if not problems:
                self.report(
                    SUITE_EXPECT_INVALID,
                    parsed,
                    (*parts, "expect", "status"),
                    MESSAGE_INPUT_IS_VALID.format(entity=entity.name),
                )
            return
        for problem in problems:
            where = (*parts, "input", *self.record_parts(problem.path))
            field_name = problem.path or "the input"
            message = MESSAGE_SUITE_INPUT.format(field=field_name, reason=problem.message, entity=entity.name)
            self.report(SUITE_INPUT_INVALID, parsed, where, message)

    def record_parts(self, record_path: str) -> Parts:
        """Return the parts of a record error path such as `tags[2]`."""
        parts: list[str | int] = []
        for token in re.findall(r"[^.\[\]]+|\[\d+\]", record_path):
            parts.append(int(token[1:-1]) if token.startswith("[") else token)
        return tuple(parts)

    def check_denied_by(self, parsed: ParsedFile, parts: Parts, case: dict, pipeline: Definition) -> None:
        """Report a `denied_by` that names no deny policy of the pipeline, or contradicts the status."""
        expect = _mapping(case.get("expect"))
        denied_by = expect.get("denied_by")
        if not isinstance(denied_by, str):
            return
        where = (*parts, "expect", "denied_by")
        status = expect.get("status")
        if isinstance(status, str) and status != "denied":
            self.report(SUITE_EXPECT_INVALID, parsed, where, MESSAGE_DENIED_BY_STATUS.format(status=status))
        if denied_by not in _sequence(pipeline.body.get("policies")):
            message = MESSAGE_DENIED_BY_NOT_IN_PIPELINE.format(policy=denied_by, pipeline=pipeline.name)
            self.report(SUITE_EXPECT_INVALID, parsed, where, message)
            return
        policy = self.policies.get(denied_by)
        if policy and policy.body.get("effect") != "deny":
            message = MESSAGE_DENIED_BY_NOT_DENY.format(policy=denied_by, effect=policy.body.get("effect"))
            self.report(SUITE_EXPECT_INVALID, parsed, where, message)
        elif policy and policy.body.get("stage") == "post" and "model_output" not in case:
            message = MESSAGE_NEEDS_MODEL_OUTPUT.format(status="denied")
            self.report(SUITE_EXPECT_INVALID, parsed, where, message)

    def check_expected_redactions(
        self, parsed: ParsedFile, parts: Parts, expect: dict, entities: list
    ) -> None:
        """Report expected redactions naming no field of the pipeline's entities."""
        known = {name for entity in entities for name in _mapping(entity.body.get("fields"))}
        for index, name in enumerate(_sequence(expect.get("redacted"))):
            if isinstance(name, str) and name not in known:
                names = " or ".join(entity.name for entity in entities)
                message = MESSAGE_EXPECT_REDACTED.format(field=name, entities=names)
                self.report(SUITE_EXPECT_INVALID, parsed, (*parts, "expect", "redacted", index), message)

    # -- secrets ---------------------------------------------------------------------------------------

    def check_secrets(self) -> None:
        """Report strings that look like credentials, anywhere in any file."""
        for parsed in self.parsed.values():
            if parsed.kind == README_KIND:
                self.check_readme_secrets(parsed)
            elif parsed.value is not None:
                for parts, text in _strings(parsed.value, ()):
                    for kind, pattern in SECRET_PATTERNS:
                        if pattern.search(text):
                            self.report(SECRET_IN_BUNDLE, parsed, parts, MESSAGE_SECRET.format(kind=kind))

    def check_readme_secrets(self, parsed: ParsedFile) -> None:
        """Report credential-looking text in the README, by line."""
        for kind, pattern in SECRET_PATTERNS:
            found = _source_position(parsed.text, pattern)
            if found:
                self.report(SECRET_IN_BUNDLE, parsed, (), MESSAGE_SECRET.format(kind=kind), position=found)


def _strings(value: Any, parts: Parts) -> Iterator[tuple[Parts, str]]:
    """Yield every string (keys included) inside a parsed value with its location."""
    if isinstance(value, str):
        yield parts, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*parts, key), str(key)
            yield from _strings(item, (*parts, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*parts, index))
