"""The runtime key format: `ck_<prefix>_<secret>`; only the SHA-256 of the secret is ever stored.

The prefix is public (shown in the console, used to find the key); the secret is 256 random bits. A plain
SHA-256 suffices for secrets of that entropy (no password-style stretching), and keeps authentication cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from runtime.models import KEY_PREFIX_LENGTH

KEY_SCHEME = "ck"
SECRET_BYTES = 32
KEY_PATTERN = re.compile(rf"\A{KEY_SCHEME}_([0-9a-f]{{{KEY_PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{40,64}})\Z")
BEARER = "bearer"


def new_key() -> tuple[str, str, str]:
    """Return (prefix, secret, full key) of a fresh random key."""
    prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return prefix, secret, f"{KEY_SCHEME}_{prefix}_{secret}"


def hash_secret(secret: str) -> str:
    """Return the stored form of a secret: its SHA-256 in hex."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Return whether `secret` hashes to `stored_hash`, in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def parse_key(text: str) -> tuple[str, str] | None:
    """Return (prefix, secret) of a well-formed key, else None."""
    match = KEY_PATTERN.match(text)
    return (match.group(1), match.group(2)) if match else None


def bearer_key(authorization: str) -> tuple[str, str] | None:
    """Return (prefix, secret) from an `Authorization: Bearer ck_...` header value, else None."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != BEARER:
        return None
    return parse_key(credentials.strip())
