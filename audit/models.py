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
