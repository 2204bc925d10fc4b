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
    since=None,
    until=None,
):
    """Return the tenant's records, newest first, filtered."""
    filters = {
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "actor_name": actor_name,
        "created_at__gte": since,
        "created_at__lt": until,
    }
    return Record.objects.filter(**{key: value for key, value in filters.items() if value}).order_by("-id")


def record_is_intact(entry: Record) -> bool:
    """Return whether the stored hash of `entry` matches its content."""
    return entry.record_hash == record_hash(canonical_form(entry, tenant=connection.schema_name))


def first_tampered_record(batch_size: int = 2000) -> Record | None:
    """Return the first record whose hash does not match its content, or None when all verify."""
    report = verification_report(batch_size)
    return None if report["intact"] else Record.objects.get(pk=report["first_bad_record"])


def verification_report(batch_size: int = 2000) -> dict:
    """Recompute every record hash of the tenant; return counts and the first record that does not verify."""
    checked = 0
    for entry in Record.objects.order_by("id").iterator(chunk_size=batch_size):
        checked += 1
        if not record_is_intact(entry):
            return {"intact": False, "checked": checked, "first_bad_record": entry.pk}
    return {"intact": True, "checked": checked, "first_bad_record": None}
