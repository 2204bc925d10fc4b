"""The audit actions of tenancy, declared once; the stored names are a contract with auditors."""

from audit.actions import AuditAction


class TenancyAction(AuditAction):
    """What tenancy writes to a tenant's audit log."""

    TENANT_CREATED = "tenant.created"
    MEMBERSHIP_CHANGED = "membership.changed"
