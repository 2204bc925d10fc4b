"""The Ed25519 key that signs checkpoints, loaded from what the settings give: a key file or a base64 secret.

Nothing here reads settings or the database: the caller passes the file path or the secret. A key file holds
a PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519`) or the raw 32-byte seed; a secret is the
standard base64 of the 32-byte seed (`openssl rand -base64 32`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from audit.proofs.note import Signer, strict_b64decode, verifier_key

SEED_SIZE = 32
MAX_KEY_FILE_SIZE = 16 * 1024
MIN_DISTINCT_SEED_BYTES = 16  # a random 32-byte seed has about 30; fewer means a placeholder or a pattern
PEM_MARKER = b"-----BEGIN"

ONE_SOURCE = "give exactly one of a key file and a base64 secret"
KEY_FILE_UNREADABLE = "cannot read the signing key file {path}: {reason}"
KEY_FILE_TOO_LARGE = "the signing key file {path} is larger than {limit} bytes: not a key"
KEY_FILE_WRITABLE = "the signing key file {path} is writable by group or others: anyone could replace the key"
KEY_FILE_NOT_REGULAR = "the signing key file {path} is not a regular file"
PEM_UNREADABLE = "the signing key file {path} is not an unencrypted PKCS#8 PEM private key: {reason}"
PEM_NOT_ED25519 = "the signing key file {path} holds a private key of another type than Ed25519"
RAW_WRONG_SIZE = "the signing key file {path} is neither a PEM key nor a raw 32-byte seed ({size} bytes)"
SEED_NOT_BASE64 = "the signing key secret is not standard base64"
SEED_WRONG_SIZE = "the signing key secret decodes to {size} bytes, not a 32-byte Ed25519 seed"
WEAK_SEED = "the signing key seed has only {distinct} distinct byte values: generate a random one"


class SigningKeyError(ValueError):
    """The configured signing key is missing, malformed, weak or stored unsafely."""


def load_signing_key(
    *, path: str | os.PathLike | None = None, secret: str | None = None
) -> Ed25519PrivateKey:
    """Return the Ed25519 private key from a key file or a base64 seed; raise SigningKeyError if unusable."""
    if (path is None) == (secret is None):
        raise SigningKeyError(ONE_SOURCE)
    if path is not None:
        return key_from_file(Path(path))
    return key_from_seed(seed_from_secret(secret))


def key_from_file(path: Path) -> Ed25519PrivateKey:
    """Return the private key in a PEM or raw-seed file that only its owner may change."""
    content = read_key_file(path)
    if content.lstrip().startswith(PEM_MARKER):
        return key_from_pem(content, path)
    if len(content) != SEED_SIZE:
        raise SigningKeyError(RAW_WRONG_SIZE.format(path=path, size=len(content)))
    return key_from_seed(content)


def read_key_file(path: Path) -> bytes:
    """Return the bytes of a small regular key file not writable by group or others."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise SigningKeyError(KEY_FILE_NOT_REGULAR.format(path=path))
        if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise SigningKeyError(KEY_FILE_WRITABLE.format(path=path))
        if status.st_size > MAX_KEY_FILE_SIZE:
            raise SigningKeyError(KEY_FILE_TOO_LARGE.format(path=path, limit=MAX_KEY_FILE_SIZE))
        return path.read_bytes()
    except OSError as error:
        raise SigningKeyError(KEY_FILE_UNREADABLE.format(path=path, reason=error.strerror)) from None


def key_from_pem(content: bytes, path: Path) -> Ed25519PrivateKey:
    """Return the Ed25519 key of an unencrypted PEM file."""
    try:
        key = load_pem_private_key(content, password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(PEM_UNREADABLE.format(path=path, reason=error)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(PEM_NOT_ED25519.format(path=path))
    return key_from_seed(key.private_bytes_raw())


def seed_from_secret(secret: str) -> bytes:
    """Return the 32-byte seed that a base64 secret encodes."""
    try:
        seed = strict_b64decode(secret.strip())
    except ValueError:
        raise SigningKeyError(SEED_NOT_BASE64) from None
    if len(seed) != SEED_SIZE:
        raise SigningKeyError(SEED_WRONG_SIZE.format(size=len(seed)))
    return seed


def key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """Return the key of a 32-byte seed that does not look like a placeholder."""
    distinct = len(set(seed))
    if distinct < MIN_DISTINCT_SEED_BYTES:
        raise SigningKeyError(WEAK_SEED.format(distinct=distinct))
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    """Return the raw 32-byte public key of a private key."""
    return key.public_key().public_bytes_raw()


def signer_for(name: str, key: Ed25519PrivateKey) -> Signer:
    """Return the note Signer that signs as `name` with `key`."""
    return Signer(name=name, private_key=key)


def verifier_key_for(name: str, key: Ed25519PrivateKey) -> str:
    """Return the verifier key string that auditors configure to trust `key` under `name`."""
    return verifier_key(name, public_key_bytes(key))
