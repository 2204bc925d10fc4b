"""Failure modes of the audit log."""

OUTSIDE_TRANSACTION = (
    "audit.record() must run inside the caller's transaction, so the action and its record commit together."
)


class AuditOutsideTransaction(RuntimeError):
    """record() was called outside an atomic block: the action and its record could diverge."""
