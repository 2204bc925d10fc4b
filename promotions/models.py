"""Environments, gate runs, promotion requests and approvals, and the append-only release pointer."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from simple_history.models import HistoricalRecords

from bundles.models import Bundle, BundleVersion


class Environment(models.Model):
    """A stage versions are promoted through (staging, current), with its promotion rules."""

    name = models.SlugField(max_length=40, unique=True)
    position = models.PositiveIntegerField(default=0, help_text="Order in the promotion path.")
    description = models.TextField(blank=True)
    requires_gates = models.BooleanField(default=True)
    required_approvals = models.PositiveIntegerField(default=0)
    requires_live_in = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="A version must have been live in this environment before it may be promoted here.",
    )
    forbid_author_approval = models.BooleanField(
        default=False,
        help_text="Separation of duties: members holding the author role may not approve here, nor be "
        "granted approve_promotion, and the version's author never approves it.",
    )
    required_groups = ArrayField(
        models.CharField(max_length=64),
        default=list,
        blank=True,
        help_text="One approval from a distinct member of each group (Membership.groups).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(history_user_id_field=models.IntegerField(null=True))

    class Meta:
        ordering = ["position", "name"]
        permissions = [("approve_promotion", "Can approve promotions to this environment")]

    def __str__(self):
        return self.name


class GateStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    STALE = "stale"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


class GateRun(models.Model):
    """One run of every suite of a version; once finished the database refuses any change.

    `attempts` counts the workers that claimed the run; the attempt number is also the claim's token, so only
    the worker holding the latest claim may beat or store the result. `heartbeat_at` is the last sign of
    life: set when the run is queued or marked stale, and every few seconds while a worker runs it.
    """

    version = models.ForeignKey(BundleVersion, on_delete=models.PROTECT, related_name="gate_runs")
    digest = models.CharField(max_length=71, db_index=True)
    status = models.CharField(max_length=10, choices=GateStatus.choices, default=GateStatus.QUEUED)
    report = models.JSONField(null=True, blank=True, help_text="Per-suite and per-case results.")
    pass_rate = models.FloatField(null=True, blank=True)
    policy_coverage = models.FloatField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When a message for this run was last sent to the workers."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="gaterun_status_heartbeat")]

    def __str__(self):
        return f"gates of {self.version} ({self.status})"


class PromotionStatus(models.TextChoices):
    PENDING = "pending"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"


class PromotionRequest(models.Model):
    """A request to make a version live in an environment; applied once gates and approvals suffice."""

    version = models.ForeignKey(BundleVersion, on_delete=models.PROTECT, related_name="promotion_requests")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="promotion_requests")
    justification = models.TextField()
    status = models.CharField(max_length=10, choices=PromotionStatus.choices, default=PromotionStatus.PENDING)
    status_reason = models.TextField(blank=True)
    gate_reruns = models.PositiveIntegerField(
        default=0,
        db_default=0,  # code of the previous release still inserts requests during a rolling upgrade
        help_text="Gate runs the system started again for this request after a run ended in error.",
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    rules = models.JSONField(
        default=dict,
        blank=True,
        help_text="The environment's approval rules when the request was made; it is decided under these.",
    )

    history = HistoricalRecords(history_user_id_field=models.IntegerField(null=True))

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["environment", "status"], name="promotion_env_status")]

    def __str__(self):
        return f"{self.version} -> {self.environment} ({self.status})"


class ApprovalDecision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class Approval(models.Model):
    """One reviewer's decision on a request; a reviewer counts once."""

    request = models.ForeignKey(PromotionRequest, on_delete=models.PROTECT, related_name="approvals")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=ApprovalDecision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["request", "reviewer"], name="approval_once_per_reviewer")
        ]

    def __str__(self):
        return f"{self.decision} by {self.reviewer_id} on {self.request_id}"


class DeploymentKind(models.TextChoices):
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class Deployment(models.Model):
    """The release pointer, append-only: the latest row per (bundle, environment) is live."""

    bundle = models.ForeignKey(Bundle, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deployments")
    version = models.ForeignKey(BundleVersion, on_delete=models.PROTECT, related_name="deployments")
    kind = models.CharField(max_length=10, choices=DeploymentKind.choices)
    request = models.ForeignKey(
        PromotionRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="deployments"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_by = ArrayField(
        models.CharField(max_length=150),
        default=list,
        blank=True,
        help_text="Usernames of the reviewers whose approvals made this promotion (empty: none were needed).",
    )
    justification = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    previous = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="next",
        help_text="The row this one replaced as live; unique, so two transitions can never fork the pointer.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["bundle", "environment", "-id"], name="deployment_pointer")]
        constraints = [
            models.UniqueConstraint(
                fields=["bundle", "environment"],
                condition=models.Q(previous__isnull=True),
                name="deployment_one_first_per_pointer",
            )
        ]

    def __str__(self):
        return f"{self.version} live in {self.environment} ({self.kind})"


class OutboxEvent(models.Model):
    """A notification written in the same transaction as the change it reports; delivered afterwards."""

    event = models.CharField(max_length=40, db_index=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.event} #{self.pk}"


class Webhook(models.Model):
    """A tenant's endpoint for notifications, signed with its secret (kept to sign, never shown again)."""

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128)
    events = models.JSONField(default=list, help_text="Event names delivered; empty means every event.")
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(
        history_user_id_field=models.IntegerField(null=True), excluded_fields=["secret"]
    )

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"webhook {self.pk} -> {self.url}"

    def wants(self, event: str) -> bool:
        """Return whether this webhook subscribes to `event`."""
        return not self.events or event in self.events


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one webhook; append-only."""

    webhook = models.ForeignKey(Webhook, on_delete=models.PROTECT, related_name="deliveries")
    event = models.ForeignKey(OutboxEvent, on_delete=models.PROTECT, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    succeeded = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "event", "attempt"], name="webhook_delivery_attempt_once"
            )
        ]

    def __str__(self):
        return f"delivery of {self.event_id} to {self.webhook_id} (attempt {self.attempt})"
