"""The audit actions and notification events of promotions, each name declared once.

Audit action names and webhook event names are contracts (auditors filter on the first, webhook receivers
subscribe to the second). Where a notification reports the same fact as an audit record it reuses the
action's name; two events have no audit action of the same name.
"""

from enum import StrEnum

from audit.actions import AuditAction


class PromotionAction(AuditAction):
    """What promotions write to the audit log."""

    ENVIRONMENT_CREATED = "environment.created"
    ENVIRONMENT_CHANGED = "environment.changed"
    APPROVER_GRANTED = "environment.approver_granted"
    APPROVER_REVOKED = "environment.approver_revoked"
    GATE_STARTED = "gate.started"
    GATE_FINISHED = "gate.finished"
    GATE_REDISPATCHED = "gate.redispatched"
    PROMOTION_REQUESTED = "promotion.requested"
    PROMOTION_APPROVED = "promotion.approved"
    PROMOTION_REJECTED = "promotion.rejected"
    PROMOTION_CANCELLED = "promotion.cancelled"
    PROMOTION_FAILED = "promotion.failed"
    DEPLOYMENT_CREATED = "deployment.created"
    ROLLBACK = "rollback"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_DELETED = "webhook.deleted"


class PromotionEvent(StrEnum):
    """The notifications the outbox publishes and webhooks subscribe to, in the order clients see them."""

    PROMOTION_REQUESTED = PromotionAction.PROMOTION_REQUESTED.value
    PROMOTION_APPROVED = PromotionAction.PROMOTION_APPROVED.value
    PROMOTION_REJECTED = PromotionAction.PROMOTION_REJECTED.value
    PROMOTION_PROMOTED = "promotion.promoted"
    PROMOTION_CANCELLED = PromotionAction.PROMOTION_CANCELLED.value
    PROMOTION_FAILED = PromotionAction.PROMOTION_FAILED.value
    ROLLED_BACK = "deployment.rolled_back"
    GATE_FINISHED = PromotionAction.GATE_FINISHED.value
