"""Reads of the audit log."""

from django.db import connection

from audit.hashing import record_hash
from audit.models import Record
from audit.services import canonical_form


def records(
    *,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    actor_name: str | None = None,
):
    """Return the tenant's records, newest first, filtered."""
    queryset = Record.objects.order_by("-id")
    if action:
        queryset = queryset.filter(action=action)
    if target_type:
        queryset = queryset.filter(target_type=target_type)
    if target_id:
        queryset = queryset.filter(target_id=target_id)
    if actor_name:
        queryset = queryset.filter(actor_name=actor_name)
    return queryset


def record_is_intact(entry: Record) -> bool:
    """Return whether the stored hash of `entry` matches its content."""
    return entry.record_hash == record_hash(canonical_form(entry, tenant=connection.schema_name))


def first_tampered_record(batch_size: int = 2000) -> Record | None:
    """Return the first record whose hash does not match its content, or None when all verify."""
    for entry in Record.objects.order_by("id").iterator(chunk_size=batch_size):
        if not record_is_intact(entry):
            return entry
    return None
