"""Governance change requests: a change that would loosen control, waiting for another admin's approval."""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class ChangeStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


class GovernanceChangeRequest(models.Model):
    """A proposed change of a control (rules, roles, grants, keys, webhooks, endpoints) and its before-state.

    `kind` names a change kind registered by the app that owns the control (governance.registry); `target`
    identifies the object for that kind; `before` is the state the change was proposed against: if it no
    longer holds when the change would apply, the request is superseded instead (stale_change).
    """

    kind = models.CharField(max_length=60, db_index=True)
    target = models.JSONField(help_text="What the kind needs to find the object (names, not ids).")
    summary = models.CharField(max_length=300)
    before = models.JSONField(null=True, help_text="The state the change was proposed against; null: none.")
    proposed = models.JSONField()
    sealed = models.JSONField(
        default=dict,
        blank=True,
        help_text="What applying needs but nobody may read (a webhook's signing secret, a key's hash).",
    )
    status = models.CharField(max_length=12, choices=ChangeStatus.choices, default=ChangeStatus.PENDING)
    status_reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    beneficiary = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    required_approvals = models.PositiveIntegerField(help_text="Snapshot of the rule when it was requested.")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(
        history_user_id_field=models.IntegerField(null=True), excluded_fields=["sealed"]
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "kind"], name="governance_status_kind")]

    def __str__(self):
        return f"change #{self.pk} {self.kind}: {self.summary} ({self.status})"


class ChangeDecision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class GovernanceApproval(models.Model):
    """One admin's decision on a change request; an admin counts once."""

    change = models.ForeignKey(GovernanceChangeRequest, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=ChangeDecision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["change", "approver"], name="governance_approval_once_per_admin")
        ]

    def __str__(self):
        return f"{self.decision} by {self.approver_id} on change {self.change_id}"
