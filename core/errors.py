"""The one base class of domain errors: a stable code, an HTTP status and structured details."""

from typing import Any


class DomainError(Exception):
    """A rule of the domain refused the operation; the API renders it as {"error": {...}}."""

    code = "error"
    status = 400
    default_message = "The request was refused."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: list | None = None):
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.details = details or []
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        """Return the error in the API's error shape."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class NotFound(DomainError):
    """The object does not exist, or exists where the actor may not see it (the same answer for both)."""

    code = "not_found"
    status = 404
    default_message = "Not found."


class PermissionDenied(DomainError):
    """The actor lacks the role or object permission the operation needs."""

    code = "permission_denied"
    status = 403
    default_message = "You do not have permission to perform this action."


class Conflict(DomainError):
    """The operation conflicts with the current state (already decided, already exists)."""

    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state."


class ValidationFailed(DomainError):
    """The input failed validation; details list every problem."""

    code = "validation_failed"
    status = 400
    default_message = "The input is not valid."


class TextTooLong(ValidationFailed):
    """A free-text field (justification, comment, reason) is longer than the limit; details name it."""

    code = "too_long"
