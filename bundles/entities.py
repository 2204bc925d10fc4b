"""Check a record (a suite case's input, say) against an entity definition of a bundle.

Validation asks the engine's own entity checker, so a suite case that validation accepts is exactly an input
the engine accepts: the two can never disagree about types, null-as-absent, patterns or unknown fields.
"""

from __future__ import annotations

from typing import Any

from bundles.engine import BundleCompileError, FieldError, compile_entity

__all__ = ["BundleCompileError", "FieldError", "validate_record"]


def validate_record(entity: dict[str, Any], value: Any) -> list[FieldError]:
    """Return every way `value` breaks `entity`; raise BundleCompileError when `entity` itself is broken."""
    return compile_entity({"name": entity.get("name"), "fields": entity.get("fields") or {}}).validate(value)
