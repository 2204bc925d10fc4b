"""The canonical form of an audit record and its hash."""

import hashlib
import json
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder

from audit.canonical import canonical_json


def json_ready(value):
    """Return `value` as plain JSON types, the way it will read back from the database."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def timestamp(moment: datetime) -> str:
    """Return the canonical UTC timestamp with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_record(
    *,
    tenant: str,
    created_at: datetime,
    actor_kind: str,
    actor_id: str,
    actor_name: str,
    action: str,
    target_type: str,
    target_id: str,
    data,
) -> dict:
    """Return the canonical dict a record hash covers."""
    return {
        "tenant": tenant,
        "created_at": timestamp(created_at),
        "actor": {"kind": actor_kind, "id": actor_id, "name": actor_name},
        "action": action,
        "target": {"type": target_type, "id": target_id},
        "data": data,
    }


def record_hash(canonical: dict) -> str:
    """Return the hex SHA-256 of the RFC 8785 form of a canonical record."""
    return hashlib.sha256(canonical_json(canonical)).hexdigest()
