"""Failure modes of the audit log."""

from core.errors import ValidationFailed

OUTSIDE_TRANSACTION = (
    "audit.record() must run inside the caller's transaction, so the action and its record commit together."
)


class AuditOutsideTransaction(RuntimeError):
    """record() was called outside an atomic block: the action and its record could diverge."""


INVALID_TIME = "Query parameter {name!r} must be an ISO-8601 time, got {value!r}."
UNKNOWN_HISTORY_MODEL = "No change history for model {model!r}; tracked models: {models}."


class InvalidTimeFilter(ValidationFailed):
    """A since/until filter is not an ISO-8601 time."""

    code = "invalid_time"


class UnknownHistoryModel(ValidationFailed):
    """The model named is not history-tracked in tenant schemas."""

    code = "unknown_history_model"
