"""The audit actions of tenancy, declared once; the stored names are a contract with auditors."""

from audit.actions import AuditAction


class TenancyAction(AuditAction):
    """What tenancy writes to a tenant's audit log."""

    TENANT_CREATED = "tenant.created"
    MEMBERSHIP_CHANGED = "membership.changed"
    MEMBERSHIP_GROUPS_CHANGED = "membership.groups_changed"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    SIGN_IN_LOCKED = "auth.locked_out"
    SSO_CONFIG_CHANGED = "sso.config_changed"
    SSO_SIGNED_IN = "auth.sso_signed_in"
    SSO_REFUSED = "auth.sso_refused"
    BREAK_GLASS_SIGN_IN = "auth.break_glass_sign_in"
