"""The audit actions of the runtime, declared once; the stored names are a contract with auditors."""

from audit.actions import AuditAction


class RuntimeAction(AuditAction):
    """What the runtime's control plane and data plane write to the audit log."""

    KEY_CREATED = "runtime_key.created"
    KEY_REVOKED = "runtime_key.revoked"
    ENDPOINT_CREATED = "model_endpoint.created"
    ENDPOINT_UPDATED = "model_endpoint.updated"
    ENDPOINT_DELETED = "model_endpoint.deleted"
    # The data plane's records; the restricted runtime role may insert only these (runtime/grants.py).
    DECISION = "runtime.decision"
