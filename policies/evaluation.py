"""Compiled policies and their evaluation; an evaluation that fails denies (fail closed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

from policies.cel import ALLOWED_VARIABLES, CompiledExpression, compile_expression
from policies.exceptions import PolicyDefinitionError, PolicyEvaluationError
from policies.redaction import fields_to_redact
from policies.rules import EFFECTS, POLICY_KEYS, REDACT, STAGE_TARGETS, STAGES, stage_variables

# Definition errors.
NOT_A_MAPPING = "a policy must be a mapping, got {type_name}"
MISSING_NAME = "a policy needs a non-empty string `name`"
UNKNOWN_KEYS = "unknown keys: {keys}"
UNKNOWN_STAGE = "stage must be one of " + ", ".join(STAGES) + "; got {stage!r}"
UNKNOWN_EFFECT = "effect must be one of " + ", ".join(EFFECTS) + "; got {effect!r}"
MISSING_WHEN = "effect {effect} needs a `when` expression"
NOT_A_STRING_LIST = "`{key}` must be a list of strings"
NOTHING_TO_REDACT = "effect redact needs `fields` or `classifications`"
REDACT_KEYS_WITHOUT_REDACT = "`fields` and `classifications` only apply to effect redact"
UNKNOWN_VARIABLE = "unknown variable `{name}` (allowed: caller, bundle, input, output, pipeline)"
OUTPUT_IN_PRE = "a pre policy runs before the model: it cannot read `output`"
BAD_MESSAGE = "`message` must be a string"

# Evaluation outcomes.
WHEN_NOT_BOOL = "`when` must evaluate to a bool, got {type_name}"
WHEN_FAILED = "`when` could not be evaluated: {reason}"
UNCONVERTIBLE = "variable `{name}` cannot be passed to CEL: {reason}"
TARGET_NOT_A_MAPPING = "`{variable}` is not an object: nothing can be redacted"
FAIL_CLOSED = "Policy {name} could not be evaluated: denied (fail closed)"
DEFAULT_MESSAGES = {
    "deny": "Denied by policy {name}",
    "redact": "Fields redacted by policy {name}",
    "warn": "Warning from policy {name}",
}


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """What one policy did to one execution."""

    name: str
    stage: str
    effect: str
    fired: bool
    message: str | None = None
    error: str | None = None
    redacted: list[str] = field(default_factory=list)

    @property
    def denies(self) -> bool:
        """Return True when this result stops the execution."""
        return self.fired and self.effect == "deny"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-compatible form recorded in decisions."""
        return {
            "name": self.name,
            "stage": self.stage,
            "effect": self.effect,
            "fired": self.fired,
            "message": self.message,
            "error": self.error,
            "redacted": list(self.redacted),
        }


class EvaluationContext:
    """The variables of one execution, converted to CEL once and only when an expression reads them."""

    __slots__ = ("_cel", "_loaded", "variables")

    def __init__(self, variables: Mapping[str, Any]):
        self.variables = dict(variables)
        self._cel: cel.Context | None = None
        self._loaded: set[str] = set()

    def set(self, name: str, value: Any) -> None:
        """Bind (or rebind) a variable."""
        self.variables[name] = value
        if name in self._loaded:
            self._cel.add_variable(name, value)

    def cel_context(self, names: Iterable[str]) -> cel.Context:
        """Return the CEL context with at least `names` loaded (those bound); raise PolicyEvaluationError."""
        if self._cel is None:
            self._cel = cel.Context()
        for name in names:
            if name not in self._loaded and name in self.variables:
                try:
                    self._cel.add_variable(name, self.variables[name])
                except Exception as error:  # a value CEL cannot represent (a set, an object): fail closed
                    raise PolicyEvaluationError(UNCONVERTIBLE.format(name=name, reason=error)) from error
                self._loaded.add(name)
        return self._cel


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled policy: a CEL condition and the effect it has when the condition holds."""

    name: str
    stage: str
    effect: str
    when: CompiledExpression | None
    message: str
    fields: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()

    @property
    def variables(self) -> frozenset[str]:
        """Return the variables the condition reads."""
        return self.when.variables if self.when is not None else frozenset()

    def targets(self, field_classifications: Mapping[str, str] | None = None) -> tuple[str, ...]:
        """Return the field names this policy redacts, given the entity's field → classification map."""
        return fields_to_redact(self.fields, self.classifications, field_classifications)

    def evaluate(
        self,
        context: EvaluationContext | Mapping[str, Any],
        *,
        field_classifications: Mapping[str, str] | None = None,
    ) -> PolicyResult:
        """Return this policy's result; never raise: a failing condition is a fired deny."""
        if not isinstance(context, EvaluationContext):
            context = EvaluationContext(context)
        if self.when is not None:
            try:
                # Bounded before the input is converted: a refused expression costs no conversion either.
                self.when.check_cost(context.variables)
                holds = self.when.evaluate(context.cel_context(self.when.variables), cost_checked=True)
            except PolicyEvaluationError as error:
                return self.failed(WHEN_FAILED.format(reason=error))
            if type(holds) is not bool:
                return self.failed(WHEN_NOT_BOOL.format(type_name=cel_type_name(holds)))
            if not holds:
                return PolicyResult(self.name, self.stage, self.effect, False)
        if self.effect != REDACT:
            return PolicyResult(self.name, self.stage, self.effect, True, self.message)
        return self.redaction(context, field_classifications)

    def redaction(
        self, context: EvaluationContext, field_classifications: Mapping[str, str] | None
    ) -> PolicyResult:
        """Return the result of a redaction whose condition holds; it fired only if a field was present."""
        variable = STAGE_TARGETS[self.stage]
        target = context.variables.get(variable)
        if not isinstance(target, Mapping):
            return self.failed(TARGET_NOT_A_MAPPING.format(variable=variable))
        redacted = [name for name in self.targets(field_classifications) if name in target]
        if not redacted:
            return PolicyResult(self.name, self.stage, self.effect, False)
        return PolicyResult(self.name, self.stage, self.effect, True, self.message, redacted=redacted)

    def failed(self, reason: str) -> PolicyResult:
        """Return the fail-closed result: a fired deny carrying the reason."""
        return PolicyResult(self.name, self.stage, "deny", True, FAIL_CLOSED.format(name=self.name), reason)


def cel_type_name(value: Any) -> str:
    """Return the CEL-ish type name of an evaluation result, for messages."""
    names = {type(None): "null", int: "int", float: "double", str: "string", list: "list", dict: "map"}
    return names.get(type(value), type(value).__name__)


def compile_policy(spec: Mapping[str, Any]) -> Policy:
    """Return the compiled Policy of a policy file; raise PolicyDefinitionError or PolicySyntaxError."""
    if not isinstance(spec, Mapping):
        raise PolicyDefinitionError(NOT_A_MAPPING.format(type_name=type(spec).__name__))
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyDefinitionError(MISSING_NAME)
    unknown = sorted(str(key) for key in spec if key not in POLICY_KEYS)
    if unknown:
        raise PolicyDefinitionError(UNKNOWN_KEYS.format(keys=", ".join(unknown)))
    stage, effect = spec.get("stage"), spec.get("effect")
    if stage not in STAGES:
        raise PolicyDefinitionError(UNKNOWN_STAGE.format(stage=stage))
    if effect not in EFFECTS:
        raise PolicyDefinitionError(UNKNOWN_EFFECT.format(effect=effect))
    when = compile_condition(spec.get("when"), stage, effect)
    fields, classifications = string_list(spec, "fields"), string_list(spec, "classifications")
    if effect == REDACT and not (fields or classifications):
        raise PolicyDefinitionError(NOTHING_TO_REDACT)
    if effect != REDACT and (fields or classifications):
        raise PolicyDefinitionError(REDACT_KEYS_WITHOUT_REDACT)
    message = spec.get("message") or DEFAULT_MESSAGES[effect].format(name=name)
    if not isinstance(message, str):
        raise PolicyDefinitionError(BAD_MESSAGE)
    return Policy(name, stage, effect, when, message, fields, classifications)


def compile_condition(source: Any, stage: str, effect: str) -> CompiledExpression | None:
    """Return the compiled `when` of a policy, checking the variables it may read at its stage."""
    if source is None:
        if effect != REDACT:
            raise PolicyDefinitionError(MISSING_WHEN.format(effect=effect))
        return None
    expression = compile_expression(source)
    check_variables(expression.variables, stage)
    return expression


def check_variables(variables: Iterable[str], stage: str) -> None:
    """Raise PolicyDefinitionError for a variable the stage does not provide."""
    for name in sorted(variables):
        if name not in ALLOWED_VARIABLES:
            raise PolicyDefinitionError(UNKNOWN_VARIABLE.format(name=name))
        if name not in stage_variables(stage):
            raise PolicyDefinitionError(OUTPUT_IN_PRE)


def string_list(spec: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """Return spec[key] as a tuple of strings (empty when absent)."""
    value = spec.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyDefinitionError(NOT_A_STRING_LIST.format(key=key))
    return tuple(value)


def evaluate_policies(
    policies: Iterable[Policy],
    context: EvaluationContext | Mapping[str, Any],
    *,
    field_classifications: Mapping[str, str] | None = None,
    stop_on_deny: bool = True,
) -> list[PolicyResult]:
    """Return the results of `policies` in order, sharing one CEL context; stop after a deny if asked."""
    if not isinstance(context, EvaluationContext):
        context = EvaluationContext(context)
    results = []
    for policy in policies:
        result = policy.evaluate(context, field_classifications=field_classifications)
        results.append(result)
        if stop_on_deny and result.denies:
            break
    return results
