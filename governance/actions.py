"""The audit actions of governance changes, declared once."""

from audit.actions import AuditAction


class GovernanceAction(AuditAction):
    """What governance writes to a tenant's audit log (the applied change itself is recorded by its app)."""

    CHANGE_REQUESTED = "governance.change_requested"
    CHANGE_APPROVED = "governance.change_approved"
    CHANGE_REJECTED = "governance.change_rejected"
    CHANGE_CANCELLED = "governance.change_cancelled"
    CHANGE_APPLIED = "governance.change_applied"
    CHANGE_SUPERSEDED = "governance.change_superseded"
    CHANGE_BOOTSTRAP = "governance.bootstrap_change"
