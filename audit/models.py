"""The tenant's append-only audit log."""

from django.db import models
from django.utils import timezone


class ActorKind(models.TextChoices):
    USER = "user", "User"
    RUNTIME_KEY = "runtime_key", "Runtime key"
    SYSTEM = "system", "System"


class Record(models.Model):
    """One control-plane action or runtime decision; the database refuses UPDATE, DELETE and TRUNCATE."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_kind = models.CharField(max_length=20, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict)
    record_hash = models.CharField(max_length=64)  # read with its record, never searched for: no index

    class Meta:
        ordering = ["id"]
        # Plain B-trees only: `db_index=True` on a CharField adds a `varchar_pattern_ops` copy for LIKE, which
        # no query here runs (at 1M records each copy of the record_hash index was 119 MB).
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_record_target"),
            models.Index(fields=["action"], name="audit_record_action"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.action} by {self.actor_name or self.actor_kind}"


class VerificationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"


class VerificationRun(models.Model):
    """One full verification of the tenant's log, run by a worker in chunks and resumable where it stopped.

    It checks every record up to `upto_id` (the newest when it was requested) in id order; `position` is the
    last id checked, so a run whose worker died goes on from there. Findings keep the first MAX_FINDINGS bad
    records; `bad_records` counts them all.
    """

    status = models.CharField(
        max_length=10, choices=VerificationStatus.choices, default=VerificationStatus.QUEUED
    )
    requested_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    upto_id = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0, help_text="Records to check (estimated when requested).")
    position = models.BigIntegerField(default=0)
    checked = models.BigIntegerField(default=0)
    bad_records = models.BigIntegerField(default=0)
    first_bad_record = models.BigIntegerField(null=True, blank=True)
    findings = models.JSONField(default=list, blank=True)
    seconds = models.FloatField(default=0.0, help_text="Time spent checking, over every chunk.")

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"verification #{self.pk} ({self.status}, {self.checked}/{self.total})"

    @property
    def intact(self) -> bool | None:
        """Return whether every record verified (None until the run has finished)."""
        return self.bad_records == 0 if self.status == VerificationStatus.FINISHED else None
