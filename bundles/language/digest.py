"""The identity of a bundle: a sha256 over the RFC 8785 canonical JSON of its parsed files.

The digest is computed over parsed content, not file bytes, so YAML formatting (key order, quoting, flow or
block style, comments) never changes it, while any change of meaning does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from audit.canonical import canonical_json

DIGEST_ALGORITHM = "sha256"
DIGEST_PREFIX = f"{DIGEST_ALGORITHM}:"


def canonical_bytes(content: Mapping[str, Any]) -> bytes:
    """Return the RFC 8785 canonical JSON of a bundle's parsed content (path → value, keys sorted)."""
    return canonical_json(dict(content))


def bundle_digest(content: Mapping[str, Any]) -> str:
    """Return the bundle digest, "sha256:<hex>", of a bundle's parsed content."""
    return DIGEST_PREFIX + hashlib.sha256(canonical_bytes(content)).hexdigest()
