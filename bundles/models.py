"""Bundles, their immutable versions, and drafts being edited in the console."""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class Bundle(models.Model):
    """A named line of versions (claims-triage); created by its first push."""

    name = models.SlugField(max_length=63, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(history_user_id_field=models.IntegerField(null=True))

    class Meta:
        ordering = ["name"]
        permissions = [("push_version", "Can push new versions of this bundle")]

    def __str__(self):
        return self.name


class BundleVersion(models.Model):
    """One immutable version: the database refuses UPDATE, DELETE and TRUNCATE of these rows."""

    bundle = models.ForeignKey(Bundle, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64)
    digest = models.CharField(max_length=71, db_index=True)
    description = models.TextField(blank=True)
    manifest = models.JSONField()
    content = models.JSONField(help_text="Parsed files, path -> value; what the digest covers.")
    files = models.JSONField(help_text="Source text of each file, path -> text, as pushed.")
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["bundle__name", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["bundle", "version"], name="bundle_version_unique")]

    def __str__(self):
        return f"{self.bundle.name}@{self.version}"


class Draft(models.Model):
    """A member's editable copy of a version's files, published as a new version when valid."""

    bundle = models.ForeignKey(Bundle, on_delete=models.PROTECT, related_name="drafts")
    base_version = models.ForeignKey(BundleVersion, on_delete=models.PROTECT, related_name="+", null=True)
    files = models.JSONField(default=dict)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_version = models.ForeignKey(
        BundleVersion, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    history = HistoricalRecords(history_user_id_field=models.IntegerField(null=True))

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self):
        return f"draft of {self.bundle.name} by {self.author_id}"
