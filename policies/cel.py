"""Compile CEL expressions once and evaluate them against a context."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import cel

from policies.cost import (
    MAX_COMPREHENSION_NESTING,
    MAX_EVALUATION_COST,
    MAX_EXPRESSION_LENGTH,
    NOMINAL_SIZE,
    estimate,
    is_size_independent,
    nesting,
)
from policies.exceptions import (
    PolicyCostExceededError,
    PolicyEvaluationError,
    PolicySyntaxError,
    PolicyTooExpensiveError,
)
from policies.syntax import CelShapeError, Node, parse, position

ALLOWED_VARIABLES = frozenset({"input", "output", "pipeline", "caller", "bundle"})

NOT_A_STRING = "A CEL expression must be a string, got {type_name}"
UNPARSABLE = "Syntax error"
TOO_LONG = "the expression is {length} characters long; the limit is {limit} ({excess} over)"
TOO_NESTED = "comprehensions nest {depth} deep; the limit is {limit}"
TOO_COSTLY_STATIC = (
    "the estimated cost is {cost} units with {nominal} items per list, map or string of the input; "
    "the budget is {limit} ({ratio:.1f}x over)"
)
TOO_COSTLY = "the estimated cost is {cost} units for this input; the budget is {limit} ({ratio:.1f}x over)"
UNREADABLE_SHAPE = "the cost of the expression cannot be bounded: {reason}"
NO_VALUES = "the cost of the expression cannot be bounded without the values of its variables"

# cel reports `Failed to parse expression '...': ERROR: <input>:LINE:COL: reason\n| source\n| ...^`.
_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")
_STRING_LITERAL = re.compile(
    r"""[rRbB]*('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""", re.S
)
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# Macros whose first argument (or first two, for the two-variable forms) is a bound name, not a variable.
_ONE_BINDER = re.compile(rf"\.\s*(?:map|filter|sortBy)\s*\(\s*({_IDENT})\s*,")
_TWO_BINDERS = re.compile(
    rf"\.\s*(?:all|exists|exists_one|existsOne|transformList|transformMap|transformMapEntry)"
    rf"\s*\(\s*({_IDENT})\s*,(?:\s*({_IDENT})\s*,)?"
)
_BIND = re.compile(rf"\bcel\s*\.\s*bind\s*\(\s*({_IDENT})\s*,")


class CompiledExpression:
    """A parsed CEL expression, ready to evaluate many times."""

    __slots__ = ("_program", "_tree", "source", "variables")

    def __init__(
        self, source: str, program: cel.Program, variables: frozenset[str], tree: Node | None = None
    ):
        self.source = source
        self.variables = variables
        self._program = program
        self._tree = tree  # None when the cost does not depend on the input (checked once, at compile)

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"

    def evaluate(self, context: Mapping[str, Any] | cel.Context, *, cost_checked: bool = False) -> Any:
        """Return the value of the expression; raise PolicyEvaluationError if it fails or would cost too much.

        The cost of an expression that grows with its input is bounded from `context` (a mapping of Python
        values) before evaluating, unless the caller already did (`check_cost`) and passes a cel.Context.
        """
        if self._tree is not None and not cost_checked:
            self.check_cost(context)
        try:
            return self._program.execute(context)
        except Exception as error:  # cel raises KeyError, TypeError, RuntimeError, ...: all mean "failed"
            raise PolicyEvaluationError(describe_evaluation_error(error)) from error

    def check_cost(self, values: Any) -> None:
        """Raise PolicyCostExceededError when evaluating with `values` may pass MAX_EVALUATION_COST."""
        if self._tree is None:
            return
        if not isinstance(values, Mapping):
            raise PolicyCostExceededError(NO_VALUES)
        cost = estimate(self._tree, values).cost
        if cost > MAX_EVALUATION_COST:
            ratio = cost / MAX_EVALUATION_COST
            raise PolicyCostExceededError(
                TOO_COSTLY.format(cost=cost, limit=MAX_EVALUATION_COST, ratio=ratio)
            )


def compile_expression(source: str) -> CompiledExpression:
    """Compile a CEL expression; raise PolicySyntaxError when it does not parse, PolicyTooExpensiveError
    when its shape alone exceeds a cost limit (both with line and column)."""
    if not isinstance(source, str):
        raise PolicySyntaxError(NOT_A_STRING.format(type_name=type(source).__name__))
    if len(source) > MAX_EXPRESSION_LENGTH:
        excess = len(source) - MAX_EXPRESSION_LENGTH
        message = TOO_LONG.format(length=len(source), limit=MAX_EXPRESSION_LENGTH, excess=excess)
        raise PolicyTooExpensiveError(message, 1, 1)
    try:
        program = cel.compile(source)
    except ValueError as error:
        raise syntax_error_from(error) from None
    tree = bounded_tree(source)
    variables = referenced_variables(source, program.variables())
    return CompiledExpression(source, program, variables, None if is_size_independent(tree) else tree)


def bounded_tree(source: str) -> Node:
    """Return the tree of a compiled expression; raise PolicyTooExpensiveError for a shape over a limit."""
    try:
        tree = parse(source)
    except CelShapeError as error:
        raise PolicyTooExpensiveError(UNREADABLE_SHAPE.format(reason=error), 1, 1) from None
    depth, offset = nesting(tree)
    if depth > MAX_COMPREHENSION_NESTING:
        message = TOO_NESTED.format(depth=depth, limit=MAX_COMPREHENSION_NESTING)
        raise PolicyTooExpensiveError(message, *position(source, offset))
    static = estimate(tree, None)
    if static.cost > MAX_EVALUATION_COST:
        message = TOO_COSTLY_STATIC.format(
            cost=static.cost,
            nominal=NOMINAL_SIZE,
            limit=MAX_EVALUATION_COST,
            ratio=static.cost / MAX_EVALUATION_COST,
        )
        raise PolicyTooExpensiveError(message, *position(source, static.offset))
    return tree


def syntax_error_from(error: ValueError) -> PolicySyntaxError:
    """Return the PolicySyntaxError for a cel parse failure, with its first reported position."""
    text = str(error)
    match = _POSITION.search(text)
    if match is None:
        return PolicySyntaxError(text.splitlines()[0] if text else UNPARSABLE)
    reason = match.group(3).strip() or UNPARSABLE
    return PolicySyntaxError(reason, int(match.group(1)), int(match.group(2)))


def referenced_variables(source: str, identifiers: list[str]) -> frozenset[str]:
    """Return the top-level variables an expression reads, without names bound by macros."""
    code = _STRING_LITERAL.sub('""', source)
    bound = set(_ONE_BINDER.findall(code)) | set(_BIND.findall(code))
    for first, second in _TWO_BINDERS.findall(code):
        bound.add(first)
        if second:
            bound.add(second)
    if _BIND.search(code):
        bound.add("cel")
    return frozenset(name for name in identifiers if name not in bound)


def describe_evaluation_error(error: Exception) -> str:
    """Return a one-line reason for a failed evaluation."""
    if isinstance(error, KeyError):
        return f"no such key: {error.args[0] if error.args else ''}"
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
