"""Remove fields from a record, by name or by the classification of each field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def fields_to_redact(
    fields: Iterable[str],
    classifications: Iterable[str],
    field_classifications: Mapping[str, str] | None,
) -> tuple[str, ...]:
    """Return the field names a redaction targets: the named ones, then those with a listed classification."""
    targets = list(dict.fromkeys(fields))
    wanted = set(classifications)
    if wanted and field_classifications:
        targets.extend(
            name
            for name, classification in field_classifications.items()
            if classification in wanted and name not in targets
        )
    return tuple(targets)


def redact(data: Mapping[str, Any], fields: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """Return a copy of `data` without `fields`, and the names actually removed (in `fields` order)."""
    removed = [name for name in dict.fromkeys(fields) if name in data]
    if not removed:
        return dict(data), []
    dropped = set(removed)
    return {name: value for name, value in data.items() if name not in dropped}, removed
