"""Compile CEL expressions once and evaluate them against a context."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import cel

from policies.exceptions import PolicyEvaluationError, PolicySyntaxError

ALLOWED_VARIABLES = frozenset({"input", "output", "pipeline", "caller", "bundle"})

NOT_A_STRING = "A CEL expression must be a string, got {type_name}"
UNPARSABLE = "Syntax error"

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

    __slots__ = ("_program", "source", "variables")

    def __init__(self, source: str, program: cel.Program, variables: frozenset[str]):
        self.source = source
        self.variables = variables
        self._program = program

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"

    def evaluate(self, context: Mapping[str, Any] | cel.Context) -> Any:
        """Return the value of the expression; raise PolicyEvaluationError if evaluation fails."""
        try:
            return self._program.execute(context)
        except Exception as error:  # cel raises KeyError, TypeError, RuntimeError, ...: all mean "failed"
            raise PolicyEvaluationError(describe_evaluation_error(error)) from error


def compile_expression(source: str) -> CompiledExpression:
    """Compile a CEL expression; raise PolicySyntaxError with line and column when it does not parse."""
    if not isinstance(source, str):
        raise PolicySyntaxError(NOT_A_STRING.format(type_name=type(source).__name__))
    try:
        program = cel.compile(source)
    except ValueError as error:
        raise syntax_error_from(error) from None
    return CompiledExpression(source, program, referenced_variables(source, program.variables()))


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
