"""C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): a log's tree size and root, signed as a note.

The note text is the origin line, the tree size in decimal, the base64 root hash, then optional extension
lines. The product's origin for a tenant's log is `contractor/<tenant schema>`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from audit.proofs.merkle import HASH_SIZE
from audit.proofs.note import (
    Signer,
    Verifier,
    check_note_text,
    is_valid_key_name,
    open_note,
    sign_note,
    strict_b64decode,
)

ORIGIN_PREFIX = "contractor"
MAX_TREE_SIZE = 2**64 - 1
DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)")

MALFORMED_CHECKPOINT = "malformed checkpoint: {reason}"
TOO_FEW_LINES = "fewer than three lines (origin, tree size, root hash)"
TEXT_WITHOUT_NEWLINE = "the text does not end with a newline"
BAD_ORIGIN = "origin {origin!r} is empty or contains a control character"
BAD_TREE_SIZE = "tree size {size!r} is not a decimal number without leading zeros below 2**64"
BAD_ROOT_HASH = "root hash {root!r} is not the base64 of a {size}-byte hash"
EMPTY_EXTENSION = "an extension line is empty"
WRONG_ORIGIN = "the checkpoint is for origin {found!r}, not {expected!r}"
BAD_TENANT_SCHEMA = "tenant schema {schema!r} cannot be part of an origin"


class CheckpointError(ValueError):
    """A checkpoint's text breaks the tlog-checkpoint format, or belongs to another log."""


@dataclass(frozen=True)
class Checkpoint:
    """A log's commitment to its first `size` leaves under `root_hash`."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.origin, str) or not self.origin or any(char < " " for char in self.origin):
            raise CheckpointError(MALFORMED_CHECKPOINT.format(reason=BAD_ORIGIN.format(origin=self.origin)))
        if type(self.size) is not int or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(MALFORMED_CHECKPOINT.format(reason=BAD_TREE_SIZE.format(size=self.size)))
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            reason = BAD_ROOT_HASH.format(root=self.root_hash, size=HASH_SIZE)
            raise CheckpointError(MALFORMED_CHECKPOINT.format(reason=reason))
        if any(not line or "\n" in line for line in self.extensions):
            raise CheckpointError(MALFORMED_CHECKPOINT.format(reason=EMPTY_EXTENSION))

    def text(self) -> str:
        """Return the checkpoint's note text."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions))


def tenant_origin(schema: str, *, prefix: str = ORIGIN_PREFIX) -> str:
    """Return the origin of a tenant's audit log: `<prefix>/<tenant schema>`."""
    origin = f"{prefix}/{schema}"
    if not schema or "/" in schema or not is_valid_key_name(origin) or any(char < " " for char in origin):
        raise CheckpointError(BAD_TENANT_SCHEMA.format(schema=schema))
    return origin


def parse_checkpoint(text: str) -> Checkpoint:
    """Return the checkpoint a note text states; raise CheckpointError if it breaks the format."""
    if not text.endswith("\n"):
        raise CheckpointError(MALFORMED_CHECKPOINT.format(reason=TEXT_WITHOUT_NEWLINE))
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(MALFORMED_CHECKPOINT.format(reason=TOO_FEW_LINES))
    origin, size, root, *extensions = lines
    if not DECIMAL.fullmatch(size) or int(size) > MAX_TREE_SIZE:
        raise CheckpointError(MALFORMED_CHECKPOINT.format(reason=BAD_TREE_SIZE.format(size=size)))
    try:
        root_hash = strict_b64decode(root)
    except ValueError:
        root_hash = b""
    if len(root_hash) != HASH_SIZE:
        raise CheckpointError(
            MALFORMED_CHECKPOINT.format(reason=BAD_ROOT_HASH.format(root=root, size=HASH_SIZE))
        )
    return Checkpoint(origin=origin, size=int(size), root_hash=root_hash, extensions=tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Iterable[Signer]) -> str:
    """Return the checkpoint as a signed note."""
    return sign_note(check_note_text(checkpoint.text()), signers)


def open_checkpoint(message: str | bytes, verifiers: Iterable[Verifier], *, origin: str) -> Checkpoint:
    """Return the checkpoint of a signed note from a trusted key for the expected origin.

    Raises the note module's errors when no trusted signature verifies, CheckpointError when the text is
    not a checkpoint of `origin`.
    """
    checkpoint = parse_checkpoint(open_note(message, verifiers).text)
    if checkpoint.origin != origin:
        raise CheckpointError(WRONG_ORIGIN.format(found=checkpoint.origin, expected=origin))
    return checkpoint
