"""The pipeline engine: run one pipeline of a compiled bundle on one input, purely and deterministically.

validate input → `pre` policies (deny stops, redact removes fields) → render template → call the model →
parse and validate the output → `post` policies → Decision. The model is an argument, so quality gates
(replayed answers) and the runtime (real providers) run exactly this code. No Django, no I/O of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

import rfc8785
from jinja2 import Environment, Template, TemplateSyntaxError
from jinja2.sandbox import SecurityError

from audit.canonical import MAX_SAFE_INTEGER, canonical_json
from bundles.digest import bundle_digest
from bundles.templating import template_environment
from policies import EvaluationContext, Policy, PolicyError, PolicyResult, compile_policy

STATUS_ALLOWED = "allowed"
STATUS_DENIED = "denied"
STATUS_INVALID_INPUT = "invalid_input"
STATUS_INVALID_OUTPUT = "invalid_output"
STATUS_ERROR = "error"
STATUSES = (STATUS_ALLOWED, STATUS_DENIED, STATUS_INVALID_INPUT, STATUS_INVALID_OUTPUT, STATUS_ERROR)

MANIFEST_PATH = "bundle.yaml"
# Text without any of these renders to itself (no line statements are configured).
JINJA_MARKERS = ("{{", "{%", "{#")
BUNDLE_CACHE_SIZE = 64
FIELD_TYPES = ("string", "number", "integer", "boolean", "array")
# Which types each type-specific constraint applies to.
CONSTRAINT_TYPES = {
    "pattern": ("string",),
    "minimum": ("number", "integer"),
    "maximum": ("number", "integer"),
    "minLength": ("string", "array"),
    "maxLength": ("string", "array"),
    "items": ("array",),
}
FIELD_KEYS = frozenset(
    {
        "type",
        "required",
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "classification",
        "items",
        "description",
    }
)
# RFC 8785 (I-JSON) numbers: integers beyond this cannot be hashed canonically, so they are refused.

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
CODE_NOT_JSON = "not_json"

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
NOT_JSON = "the model's answer is not JSON: {reason}"
NON_STANDARD_JSON = "non-standard JSON constant {constant}"

# Reasons of status `error`.
RENDER_FAILED = "template {template} could not be rendered: {reason}"
MODEL_FAILED = "model call failed: {reason}"
NOT_A_MODEL_RESPONSE = "the model returned {type_name}, not a ModelResponse with text"

# Compile errors.
MISSING_MANIFEST = "the bundle has no bundle.yaml mapping"
MISSING_KEY = "missing `{key}`"
NOT_A_MAPPING = "`{key}` must be a mapping"
NOT_A_LIST = "`{key}` must be a list"
DUPLICATE_NAME = "duplicate {kind} name {name!r}"
UNKNOWN_REFERENCE = "pipeline {pipeline!r} refers to unknown {kind} {name!r}"
UNKNOWN_FIELD_TYPE = "field {field!r} has unknown type {type!r}"
UNKNOWN_FIELD_KEYS = "field {field!r} has unknown keys: {keys}"
BAD_PATTERN = "field {field!r} has an invalid pattern: {reason}"
BAD_CONSTRAINT = "field {field!r}: `{constraint}` must be {expected}"
CONSTRAINT_NOT_APPLICABLE = "field {field!r}: `{constraint}` does not apply to type {type}"
BAD_TEMPLATE = "template {template!r} does not compile: line {line}: {reason}"
BAD_POLICY = "policy does not compile: {reason}"
UNKNOWN_PIPELINE = "bundle {bundle} has no pipeline {pipeline!r}"

_FENCE = re.compile(r"\A```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```\Z", re.S)


class BundleCompileError(ValueError):
    """The bundle content cannot be compiled: missing manifest, bad reference, bad policy or template."""

    def __init__(self, message: str, file: str | None = None):
        super().__init__(f"{file}: {message}" if file else message)
        self.message = message
        self.file = file


class UnknownPipelineError(LookupError):
    """The requested pipeline is not defined by the bundle."""


class ModelError(Exception):
    """The model could not answer (transport failure, timeout, refusal); the decision is `error`."""


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """What the engine sends to a model: the rendered system and prompt, and the pipeline's model params."""

    system: str
    prompt: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """A model's raw answer and, when known, its token usage."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


Model = Callable[[ModelRequest], ModelResponse]


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
    """The type and constraints of one entity field (or of the items of an array field)."""

    name: str
    type: str
    required: bool = False
    enum: tuple[Any, ...] | None = None
    pattern: re.Pattern[str] | None = None
    pattern_source: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    classification: str | None = None
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
        if self.enum is not None and not in_enum(value, self.enum):
            choices = ", ".join(json.dumps(choice) for choice in self.enum)
            errors.append(FieldError(path, CODE_ENUM, NOT_IN_ENUM.format(choices=choices)))
        if self.pattern is not None and self.pattern.search(value) is None:
            errors.append(
                FieldError(path, CODE_PATTERN, PATTERN_MISMATCH.format(pattern=self.pattern_source))
            )
        if self.minimum is not None and value < self.minimum:
            errors.append(FieldError(path, CODE_MINIMUM, BELOW_MINIMUM.format(limit=self.minimum)))
        if self.maximum is not None and value > self.maximum:
            errors.append(FieldError(path, CODE_MAXIMUM, ABOVE_MAXIMUM.format(limit=self.maximum)))
        if self.min_length is not None or self.max_length is not None:
            self.check_length(value, path, errors)
        if self.items is not None:
            for index, item in enumerate(value):
                self.items.check(item, f"{path}[{index}]", errors)

    def check_length(self, value: str | list[Any], path: str, errors: list[FieldError]) -> None:
        """Append length errors of a string (characters) or an array (items)."""
        unit = "characters" if self.type == "string" else "items"
        if self.min_length is not None and len(value) < self.min_length:
            errors.append(
                FieldError(path, CODE_MIN_LENGTH, TOO_SHORT.format(limit=self.min_length, unit=unit))
            )
        if self.max_length is not None and len(value) > self.max_length:
            errors.append(
                FieldError(path, CODE_MAX_LENGTH, TOO_LONG.format(limit=self.max_length, unit=unit))
            )


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
            # null counts as absent, as in bundle validation (bundles.entities), so suites and engine agree.
            if spec.required and record.get(name) is None:
                errors.append(FieldError(name, CODE_REQUIRED, REQUIRED))
        return errors


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A prompt template compiled once in the sandbox: system and prompt."""

    name: str
    system: Template | str
    prompt: Template | str

    def render(self, input: Mapping[str, Any]) -> tuple[str, str]:
        """Return the rendered (system, prompt) for `input`; raise whatever the sandbox raises."""
        variables = {"input": input}
        system = self.system if type(self.system) is str else self.system.render(variables)
        prompt = self.prompt if type(self.prompt) is str else self.prompt.render(variables)
        return system, prompt


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A pipeline resolved against its bundle: entities, template, model params, policies by stage."""

    name: str
    input: Entity
    output: Entity
    template: CompiledTemplate
    model: dict[str, Any]
    policies: tuple[str, ...]
    pre: tuple[Policy, ...]
    post: tuple[Policy, ...]


@dataclass(frozen=True, slots=True)
class CompiledBundle:
    """A bundle's content indexed and compiled once: entities, policies, templates, pipelines, suites."""

    name: str
    version: str
    digest: str
    content: Mapping[str, Any]
    entities: dict[str, Entity]
    policies: dict[str, Policy]
    templates: dict[str, CompiledTemplate]
    pipelines: dict[str, Pipeline]
    suites: tuple[tuple[str, Any], ...]

    @property
    def identity(self) -> dict[str, str]:
        """Return {name, version, digest}: the `bundle` variable of policies and decisions."""
        return {"name": self.name, "version": self.version, "digest": self.digest}

    def pipeline(self, name: str) -> Pipeline:
        """Return the named pipeline; raise UnknownPipelineError."""
        try:
            return self.pipelines[name]
        except (KeyError, TypeError):
            raise UnknownPipelineError(UNKNOWN_PIPELINE.format(bundle=self.name, pipeline=name)) from None


@dataclass(slots=True)
class Decision:
    """The outcome of one execution; `decision_hash` covers everything but the timings."""

    status: str
    pipeline: str
    bundle: dict[str, str]
    model: dict[str, Any]
    output: dict[str, Any] | None = None
    denied_by: str | None = None
    reason: str | None = None
    policies: list[dict[str, Any]] = field(default_factory=list)
    redactions: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    hashes: dict[str, str | None] = field(default_factory=dict)
    usage: dict[str, int | None] = field(default_factory=dict)
    decision_hash: str = ""
    # Nanoseconds per phase; not part of the record (not deterministic).
    timings: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-compatible, deterministic form (with its hash, without timings)."""
        record = self.hashed_fields()
        record["decision_hash"] = self.decision_hash
        return record

    def hashed_fields(self) -> dict[str, Any]:
        """Return the fields `decision_hash` is computed over."""
        return {
            "status": self.status,
            "pipeline": self.pipeline,
            "bundle": self.bundle,
            "model": self.model,
            "output": self.output,
            "denied_by": self.denied_by,
            "reason": self.reason,
            "policies": self.policies,
            "redactions": self.redactions,
            "errors": self.errors,
            "hashes": self.hashes,
            "usage": self.usage,
        }

    @property
    def fired(self) -> list[str]:
        """Return the names of the policies that fired."""
        return [result["name"] for result in self.policies if result["fired"]]


# --- hashing -----------------------------------------------------------------------------------------


def content_hash(value: Any) -> str:
    """Return the sha256 hex of the canonical JSON of `value` (of its repr if it is not I-JSON)."""
    try:
        data = canonical_json(value)
    except rfc8785.CanonicalizationError:
        # Only invalid inputs get here (validation refuses NaN, unsafe integers); hash them all the same.
        data = b"repr:" + repr(value).encode("utf-8", "backslashreplace")
    return hashlib.sha256(data).hexdigest()


def text_hash(text: str) -> str:
    """Return the sha256 hex of the UTF-8 bytes of `text`."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def prompt_hash(system: str, prompt: str) -> str:
    """Return the hash of what the model was shown (system and prompt, unambiguously joined)."""
    return content_hash({"system": system, "prompt": prompt})


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


def parse_model_output(text: str) -> Any:
    """Return the JSON value of a model answer (surrounding whitespace and a ```json fence tolerated)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced is not None:
        body = fenced.group(1).strip()
    return json.loads(body, parse_constant=refuse_constant)


def refuse_constant(constant: str) -> None:
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(NON_STANDARD_JSON.format(constant=constant))


# --- compiling ---------------------------------------------------------------------------------------


_BUNDLE_CACHE: OrderedDict[str, CompiledBundle] = OrderedDict()
_BUNDLE_CACHE_LOCK = threading.Lock()


def compile_bundle(content: Mapping[str, Any], digest: str | None = None) -> CompiledBundle:
    """Return the compiled bundle, from the cache when its digest was compiled before."""
    digest = digest or bundle_digest(content)
    with _BUNDLE_CACHE_LOCK:
        cached = _BUNDLE_CACHE.get(digest)
        if cached is not None:
            _BUNDLE_CACHE.move_to_end(digest)
            return cached
    compiled = build_bundle(content, digest)
    with _BUNDLE_CACHE_LOCK:
        _BUNDLE_CACHE[digest] = compiled
        _BUNDLE_CACHE.move_to_end(digest)
        while len(_BUNDLE_CACHE) > BUNDLE_CACHE_SIZE:
            _BUNDLE_CACHE.popitem(last=False)
    return compiled


def clear_bundle_cache() -> None:
    """Forget every compiled bundle."""
    with _BUNDLE_CACHE_LOCK:
        _BUNDLE_CACHE.clear()


def build_bundle(content: Mapping[str, Any], digest: str) -> CompiledBundle:
    """Return a freshly compiled bundle; raise BundleCompileError naming the file at fault."""
    manifest = content.get(MANIFEST_PATH)
    if not isinstance(manifest, Mapping):
        raise BundleCompileError(MISSING_MANIFEST, MANIFEST_PATH)
    for key in ("name", "version"):
        if key not in manifest:
            raise BundleCompileError(MISSING_KEY.format(key=key), MANIFEST_PATH)
    entities = index_files(content, "entities/", "entity", compile_entity)
    policies = index_files(content, "policies/", "policy", compile_policy_file)
    templates = index_files(content, "templates/", "template", compile_template)
    pipelines: dict[str, Pipeline] = {}
    specs = manifest.get("pipelines") or []
    if not isinstance(specs, list):
        raise BundleCompileError(NOT_A_LIST.format(key="pipelines"), MANIFEST_PATH)
    for spec in specs:
        pipeline = compile_pipeline(spec, entities, policies, templates)
        if pipeline.name in pipelines:
            raise BundleCompileError(
                DUPLICATE_NAME.format(kind="pipeline", name=pipeline.name), MANIFEST_PATH
            )
        pipelines[pipeline.name] = pipeline
    suites = tuple((path, content[path]) for path in bundle_files(content, "suites/"))
    return CompiledBundle(
        name=str(manifest["name"]),
        version=str(manifest["version"]),
        digest=digest,
        content=content,
        entities=entities,
        policies=policies,
        templates=templates,
        pipelines=pipelines,
        suites=suites,
    )


def bundle_files(content: Mapping[str, Any], folder: str) -> list[str]:
    """Return the sorted paths of the YAML files directly in `folder`."""
    return sorted(
        path
        for path in content
        if path.startswith(folder) and path.endswith((".yaml", ".yml")) and "/" not in path[len(folder) :]
    )


def index_files(
    content: Mapping[str, Any], folder: str, kind: str, compile_one: Callable[[Mapping[str, Any]], Any]
) -> dict[str, Any]:
    """Return {name: compiled} for every file of `folder`; raise BundleCompileError naming the file."""
    index: dict[str, Any] = {}
    for path in bundle_files(content, folder):
        spec = content[path]
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise BundleCompileError(MISSING_KEY.format(key="name"), path)
        if spec["name"] in index:
            raise BundleCompileError(DUPLICATE_NAME.format(kind=kind, name=spec["name"]), path)
        try:
            index[spec["name"]] = compile_one(spec)
        except BundleCompileError as error:
            raise BundleCompileError(error.message, path) from error
    return index


def compile_policy_file(spec: Mapping[str, Any]) -> Policy:
    """Return the compiled policy of a policy file."""
    try:
        return compile_policy(spec)
    except PolicyError as error:
        raise BundleCompileError(BAD_POLICY.format(reason=error)) from error


def compile_template(spec: Mapping[str, Any]) -> CompiledTemplate:
    """Return the template file compiled in the sandboxed environment."""
    environment = template_environment()
    name = spec["name"]
    if not isinstance(spec.get("prompt"), str):
        raise BundleCompileError(MISSING_KEY.format(key="prompt"))
    try:
        system = compile_template_text(environment, str(spec.get("system") or ""))
        prompt = compile_template_text(environment, spec["prompt"])
    except TemplateSyntaxError as error:
        raise BundleCompileError(
            BAD_TEMPLATE.format(template=name, line=error.lineno, reason=error.message)
        ) from error
    return CompiledTemplate(name, system, prompt)


def compile_template_text(environment: Environment, source: str) -> Template | str:
    """Return the compiled template, or the text itself when it holds no Jinja markup (nothing to render)."""
    if not any(marker in source for marker in JINJA_MARKERS):
        return source
    return environment.from_string(source)


def compile_entity(spec: Mapping[str, Any]) -> Entity:
    """Return the entity of an entity file, with its patterns compiled."""
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
    for constraint, types in CONSTRAINT_TYPES.items():
        if spec.get(constraint) is not None and kind not in types:
            raise BundleCompileError(
                CONSTRAINT_NOT_APPLICABLE.format(field=name, constraint=constraint, type=kind)
            )
    check_constraint_values(name, spec)
    pattern = spec.get("pattern")
    try:
        compiled_pattern = re.compile(ecma_pattern(pattern)) if pattern is not None else None
    except re.error as error:
        raise BundleCompileError(BAD_PATTERN.format(field=name, reason=error)) from error
    items = spec.get("items")
    enum = spec.get("enum")
    return FieldSpec(
        name=name,
        type=kind,
        required=bool(spec.get("required", False)),
        enum=tuple(enum) if enum is not None else None,
        pattern=compiled_pattern,
        pattern_source=pattern,
        minimum=spec.get("minimum"),
        maximum=spec.get("maximum"),
        min_length=spec.get("minLength"),
        max_length=spec.get("maxLength"),
        classification=spec.get("classification"),
        items=compile_field(f"{name}[]", items) if items is not None else None,
    )


def check_constraint_values(name: str, spec: Mapping[str, Any]) -> None:
    """Raise BundleCompileError for a constraint whose value has the wrong kind (so checks cannot crash)."""
    expectations = (
        ("minimum", "a number", lambda value: type(value) in (int, float)),
        ("maximum", "a number", lambda value: type(value) in (int, float)),
        ("minLength", "a non-negative integer", lambda value: type(value) is int and value >= 0),
        ("maxLength", "a non-negative integer", lambda value: type(value) is int and value >= 0),
        ("pattern", "a string", lambda value: isinstance(value, str)),
        ("enum", "a list", lambda value: isinstance(value, list)),
        ("classification", "a string", lambda value: isinstance(value, str)),
    )
    for constraint, expected, valid in expectations:
        value = spec.get(constraint)
        if value is not None and not valid(value):
            raise BundleCompileError(
                BAD_CONSTRAINT.format(field=name, constraint=constraint, expected=expected)
            )


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


def compile_pipeline(
    spec: Any,
    entities: Mapping[str, Entity],
    policies: Mapping[str, Policy],
    templates: Mapping[str, CompiledTemplate],
) -> Pipeline:
    """Return a pipeline with every reference resolved."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise BundleCompileError(MISSING_KEY.format(key="pipelines[].name"), MANIFEST_PATH)
    name = spec["name"]
    input_entity = resolve(entities, spec.get("input"), "entity", name)
    output_entity = resolve(entities, spec.get("output"), "entity", name)
    template = resolve(templates, spec.get("template"), "template", name)
    model = spec.get("model") or {}
    if not isinstance(model, Mapping):
        raise BundleCompileError(NOT_A_MAPPING.format(key="model"), MANIFEST_PATH)
    names = spec.get("policies") or []
    if not isinstance(names, list):
        raise BundleCompileError(NOT_A_LIST.format(key="policies"), MANIFEST_PATH)
    listed = [resolve(policies, policy_name, "policy", name) for policy_name in names]
    return Pipeline(
        name=name,
        input=input_entity,
        output=output_entity,
        template=template,
        model=dict(model),
        policies=tuple(names),
        pre=tuple(policy for policy in listed if policy.stage == "pre"),
        post=tuple(policy for policy in listed if policy.stage == "post"),
    )


def resolve(index: Mapping[str, Any], name: Any, kind: str, pipeline: str) -> Any:
    """Return index[name]; raise BundleCompileError for an unknown reference."""
    try:
        return index[name]
    except (KeyError, TypeError):
        raise BundleCompileError(
            UNKNOWN_REFERENCE.format(pipeline=pipeline, kind=kind, name=name), MANIFEST_PATH
        ) from None


# --- executing ---------------------------------------------------------------------------------------


def execute(
    bundle: CompiledBundle,
    pipeline: str,
    input: Any,
    model: Model,
    *,
    caller: Mapping[str, Any] | None = None,
) -> Decision:
    """Return the Decision of running `pipeline` on `input` with `model`; raise only for a bad pipeline."""
    run = Execution(bundle, bundle.pipeline(pipeline), input, caller)
    run.perform(model)
    return run.decide()


class Execution:
    """The state of one execution as it moves through the phases; `decide()` freezes it into a Decision."""

    __slots__ = (
        "_clock",
        "bundle",
        "context",
        "denied_by",
        "errors",
        "hashes",
        "input",
        "output",
        "pipeline",
        "reason",
        "redactions",
        "results",
        "status",
        "timings",
        "usage",
    )

    def __init__(
        self, bundle: CompiledBundle, pipeline: Pipeline, input: Any, caller: Mapping[str, Any] | None
    ):
        self._clock = perf_counter_ns()
        self.bundle = bundle
        self.pipeline = pipeline
        self.input = input
        self.context = EvaluationContext(
            {
                "input": input,
                "pipeline": pipeline.name,
                "caller": dict(caller or {}),
                "bundle": bundle.identity,
            }
        )
        self.status = STATUS_ALLOWED
        self.output: dict[str, Any] | None = None
        self.denied_by: str | None = None
        self.reason: str | None = None
        self.results: list[PolicyResult] = []
        self.redactions: list[str] = []
        self.errors: list[FieldError] = []
        self.hashes: dict[str, str | None] = {"input": None, "prompt": None, "output": None}
        self.usage: dict[str, int | None] = {"prompt_tokens": None, "completion_tokens": None}
        self.timings: dict[str, int] = {}

    def lap(self, phase: str) -> None:
        """Add the time since the previous lap to `phase`."""
        now = perf_counter_ns()
        self.timings[phase] = self.timings.get(phase, 0) + now - self._clock
        self._clock = now

    def perform(self, model: Model) -> None:
        """Run the phases in order, stopping at the first that ends the execution."""
        self.errors = self.pipeline.input.validate(self.input)
        self.lap("validation")
        if self.errors:
            self.status = STATUS_INVALID_INPUT
            return
        prompt_input = self.apply_policies(self.pipeline.pre, self.input, self.pipeline.input)
        self.lap("policies")
        if prompt_input is None:
            return
        rendered = self.render(prompt_input)
        self.lap("rendering")
        if rendered is None:
            return
        text = self.ask(model, ModelRequest(rendered[0], rendered[1], dict(self.pipeline.model)))
        self.lap("model")
        if text is None:
            return
        output = self.parse(text)
        self.lap("parsing")
        if output is None:
            return
        self.context.set("output", output)
        self.output = self.apply_policies(self.pipeline.post, output, self.pipeline.output)
        self.lap("policies")

    def apply_policies(self, policies: tuple[Policy, ...], record: dict[str, Any], entity: Entity) -> Any:
        """Evaluate one stage's policies; return the record left after redactions, or None when denied."""
        for policy in policies:
            result = policy.evaluate(self.context, field_classifications=entity.classifications)
            self.results.append(result)
            if result.denies:
                self.status = STATUS_DENIED
                self.denied_by = policy.name
                return None
            if result.redacted:
                dropped = set(result.redacted)
                record = {name: value for name, value in record.items() if name not in dropped}
                self.redactions.extend(name for name in result.redacted if name not in self.redactions)
        return record

    def render(self, prompt_input: dict[str, Any]) -> tuple[str, str] | None:
        """Return the rendered (system, prompt), or None with status `error` when the sandbox refuses."""
        template = self.pipeline.template
        try:
            system, prompt = template.render(prompt_input)
        except SecurityError as error:
            return self.fail(RENDER_FAILED.format(template=template.name, reason=f"SecurityError: {error}"))
        except Exception as error:  # the template is bundle content: any failure of it is an `error` decision
            return self.fail(
                RENDER_FAILED.format(template=template.name, reason=f"{type(error).__name__}: {error}")
            )
        self.hashes["prompt"] = prompt_hash(system, prompt)
        return system, prompt

    def ask(self, model: Model, request: ModelRequest) -> str | None:
        """Return the model's answer text, or None with status `error` when the model fails."""
        try:
            response = model(request)
        except ModelError as error:
            return self.fail(MODEL_FAILED.format(reason=str(error) or type(error).__name__))
        if not isinstance(response, ModelResponse) or not isinstance(response.text, str):
            return self.fail(NOT_A_MODEL_RESPONSE.format(type_name=type(response).__name__))
        self.usage = {
            "prompt_tokens": response.prompt_tokens,
            "completion_tokens": response.completion_tokens,
        }
        self.hashes["output"] = text_hash(response.text)
        return response.text

    def parse(self, text: str) -> dict[str, Any] | None:
        """Return the validated output, or None with status `invalid_output` and its errors."""
        try:
            output = parse_model_output(text)
        except ValueError as error:
            self.errors = [FieldError("", CODE_NOT_JSON, NOT_JSON.format(reason=error))]
        else:
            self.errors = self.pipeline.output.validate(output)
        if self.errors:
            self.status = STATUS_INVALID_OUTPUT
            return None
        return output

    def fail(self, reason: str) -> None:
        """Record status `error` with its reason; return None so phases can `return self.fail(...)`."""
        self.status = STATUS_ERROR
        self.reason = reason
        return None

    def decide(self) -> Decision:
        """Return the Decision with its hashes."""
        self.hashes["input"] = content_hash(self.input)
        decision = Decision(
            status=self.status,
            pipeline=self.pipeline.name,
            bundle=self.bundle.identity,
            model=dict(self.pipeline.model),
            output=self.output if self.status == STATUS_ALLOWED else None,
            denied_by=self.denied_by,
            reason=self.reason,
            policies=[result.to_dict() for result in self.results],
            redactions=self.redactions,
            errors=[error.to_dict() for error in self.errors],
            hashes=self.hashes,
            usage=self.usage,
        )
        decision.decision_hash = content_hash(decision.hashed_fields())
        self.lap("hashing")
        decision.timings = self.timings
        return decision
