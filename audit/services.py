"""Writes to the audit log. Callers record inside their own transaction."""

from typing import Any

from django.db import connections, router

from audit.actions import AuditAction
from audit.exceptions import OUTSIDE_TRANSACTION, AuditOutsideTransaction
from audit.hashing import canonical_record, json_ready, record_hash
from audit.models import ActorKind, Record


def actor_fields(actor) -> tuple[str, str, str]:
    """Return (kind, id, name) for a user, an object with `audit_actor`, or None (the system)."""
    if actor is None:
        return ActorKind.SYSTEM, "", "system"
    if hasattr(actor, "audit_actor"):
        return actor.audit_actor
    if getattr(actor, "is_authenticated", False):
        return ActorKind.USER, str(actor.pk), actor.get_username()
    return ActorKind.SYSTEM, "", "anonymous"


def target_fields(target) -> tuple[str, str]:
    """Return (type, id) for a model instance, a (type, id) pair, or None."""
    if target is None:
        return "", ""
    if isinstance(target, tuple):
        return str(target[0]), str(target[1])
    return target._meta.label_lower, str(target.pk)


def in_callers_transaction(connection) -> bool:
    """Return whether an atomic block of the application (not the test harness's) is open."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def record(
    *,
    actor,
    action: AuditAction | str,
    target=None,
    data: dict[str, Any] | None = None,
    using: str | None = None,
) -> Record:
    """Append one record of `action` to the current tenant's audit log, in the caller's transaction.

    `action` is a member of an app's AuditAction enum (tests may pass a plain string); the stored name is the
    same either way.
    """
    alias = using or router.db_for_write(Record)
    connection = connections[alias]
    if not in_callers_transaction(connection):
        raise AuditOutsideTransaction(OUTSIDE_TRANSACTION)
    kind, actor_id, actor_name = actor_fields(actor)
    target_type, target_id = target_fields(target)
    entry = Record(
        actor_kind=kind,
        actor_id=actor_id,
        actor_name=actor_name,
        # The plain name: the canonical encoder dispatches on exact types (an enum member is not a str there).
        action=str(action),
        target_type=target_type,
        target_id=target_id,
        data=json_ready(data or {}),
    )
    entry.record_hash = record_hash(canonical_form(entry, tenant=connection.schema_name))
    entry.save(using=alias, force_insert=True)
    return entry


def canonical_form(entry: Record, *, tenant: str) -> dict:
    """Return the canonical dict that `entry.record_hash` covers."""
    return canonical_record(
        tenant=tenant,
        created_at=entry.created_at,
        actor_kind=entry.actor_kind,
        actor_id=entry.actor_id,
        actor_name=entry.actor_name,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target_id,
        data=entry.data,
    )
