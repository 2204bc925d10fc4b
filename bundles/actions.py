"""The audit actions of bundles, declared once; the stored names are a contract with auditors."""

from audit.actions import AuditAction


class BundleAction(AuditAction):
    """What bundles write to the audit log."""

    VERSION_PUSHED = "bundle.version_pushed"
    CREATED = "bundle.created"
    PUSH_GRANT_CHANGED = "bundle.push_grant_changed"
    DRAFT_CREATED = "bundle.draft_created"
    DRAFT_DISCARDED = "bundle.draft_discarded"
