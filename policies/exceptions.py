"""Errors of the policy language."""


class PolicyError(Exception):
    """Base class of every error raised by the policy layer."""


class PolicySyntaxError(PolicyError, ValueError):
    """A CEL expression does not parse; `line` and `column` are 1-based (None when unknown)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.line}:{self.column}: {self.message}"


class PolicyDefinitionError(PolicyError, ValueError):
    """A policy file is structurally wrong: unknown stage or effect, missing `when`, nothing to redact."""


class PolicyEvaluationError(PolicyError, RuntimeError):
    """A CEL expression failed while evaluating (missing field, type error, undefined variable)."""


CEL_TOO_EXPENSIVE = "cel_too_expensive"


class PolicyTooExpensiveError(PolicyError, ValueError):
    """A CEL expression exceeds a cost limit by its shape alone: too long, too nested or too costly."""

    code = CEL_TOO_EXPENSIVE

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class PolicyCostExceededError(PolicyEvaluationError):
    """A CEL expression would cost more than the budget for this input: it was not evaluated."""

    code = CEL_TOO_EXPENSIVE

    def __str__(self) -> str:
        return f"{self.code}: {self.args[0]}"
