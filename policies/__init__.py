"""The policy language: CEL conditions compiled once, evaluated fail-closed, and redaction.

Imports no other project app (and no Django), so it runs anywhere the engine runs.
"""

from policies.cel import ALLOWED_VARIABLES, CompiledExpression, compile_expression
from policies.evaluation import (
    EvaluationContext,
    Policy,
    PolicyResult,
    compile_policy,
    evaluate_policies,
)
from policies.exceptions import (
    CEL_TOO_EXPENSIVE,
    PolicyCostExceededError,
    PolicyDefinitionError,
    PolicyError,
    PolicyEvaluationError,
    PolicySyntaxError,
    PolicyTooExpensiveError,
)
from policies.redaction import fields_to_redact, redact
from policies.rules import EFFECTS, STAGES

__all__ = [
    "ALLOWED_VARIABLES",
    "CEL_TOO_EXPENSIVE",
    "EFFECTS",
    "STAGES",
    "CompiledExpression",
    "EvaluationContext",
    "Policy",
    "PolicyCostExceededError",
    "PolicyDefinitionError",
    "PolicyError",
    "PolicyEvaluationError",
    "PolicyResult",
    "PolicySyntaxError",
    "PolicyTooExpensiveError",
    "compile_expression",
    "compile_policy",
    "evaluate_policies",
    "fields_to_redact",
    "redact",
]
