"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, as golang.org/x/mod/sumdb/note signs.

A note is a text ending in a newline, a blank line, then signature lines `— <key name> <base64(key id ||
signature)>`. A verifier key is written `<name>+<hex key id>+<base64(0x01 || public key)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
KEY_ID_SIZE = 4
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16; Go's note package stops at 100

MALFORMED_NOTE = "malformed note: {reason}"
NOT_UTF8 = "the note is not valid UTF-8"
CONTROL_CHARACTER = "the note contains a control character other than newline"
NO_SIGNATURE_BLOCK = "no blank line before the signatures"
TEXT_WITHOUT_NEWLINE = "the text does not end with a newline"
EMPTY_TEXT = "the text is empty"
SIGNATURES_UNTERMINATED = "the last signature line does not end with a newline"
NOT_A_SIGNATURE_LINE = "line {line!r} is not '— <key name> <base64 signature>'"
BAD_KEY_NAME = "key name {name!r} is empty or contains a space or '+'"
BAD_SIGNATURE_ENCODING = "the signature of {name!r} is not canonical base64 of a key id and a signature"
TOO_MANY_SIGNATURES = "more than {limit} signatures"
MALFORMED_VERIFIER_KEY = "malformed verifier key {key!r}: {reason}"
VERIFIER_KEY_SHAPE = "expected <name>+<8 hex digits>+<base64 key>"
VERIFIER_KEY_TYPE = "only Ed25519 keys (type 0x01 and 32 bytes) are supported"
VERIFIER_KEY_ID = "the key id does not match the name and key"
AMBIGUOUS_KEY = "two verifiers share the key name {name!r} and key id {key_id}"
INVALID_SIGNATURE = "the signature by known key {name}+{key_id} does not verify"
UNVERIFIED_NOTE = "no signature by a known key"


class NoteError(ValueError):
    """A note, a signature or a key is not what the signed-note format allows."""


class MalformedNoteError(NoteError):
    """The text of a note or its signature lines break the signed-note format."""


class MalformedVerifierKeyError(NoteError):
    """A verifier key string is not a well-formed Ed25519 verifier key."""


class AmbiguousVerifierError(NoteError):
    """Two trusted verifiers share name and key id, so a signature could not say which one made it."""


class InvalidSignatureError(NoteError):
    """A signature by a trusted key does not verify: the note has been altered or forged."""


class UnverifiedNoteError(NoteError):
    """No signature of the note comes from a trusted key."""


def is_valid_key_name(name: str) -> bool:
    """Return whether `name` may name a key: non-empty, no Unicode space, no '+'."""
    return bool(name) and "+" not in name and not any(char.isspace() for char in name)


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte key id: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    encoded = name.encode("utf-8") + b"\n" + bytes([ED25519]) + public_key
    return hashlib.sha256(encoded).digest()[:KEY_ID_SIZE]


def strict_b64decode(text: str) -> bytes:
    """Return the bytes of standard, padded, canonical base64 `text`; raise ValueError otherwise."""
    try:
        value = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError(str(error)) from error
    if base64.b64encode(value).decode("ascii") != text:  # refuse non-zero padding bits: one text per value
        raise ValueError("non-canonical base64")
    return value


@dataclass(frozen=True)
class Signer:
    """A named Ed25519 private key that signs notes."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self):
        if not is_valid_key_name(self.name):
            raise NoteError(BAD_KEY_NAME.format(name=self.name))

    @property
    def public_key(self) -> bytes:
        """Return the raw 32-byte public key."""
        return self.private_key.public_key().public_bytes_raw()

    @property
    def key_id(self) -> bytes:
        """Return this key's 4-byte key id."""
        return key_id(self.name, self.public_key)

    def verifier_key(self) -> str:
        """Return the verifier key string that checks this signer's signatures."""
        return verifier_key(self.name, self.public_key)

    def signature_line(self, text: str) -> str:
        """Return the signature line of this key over `text`."""
        signature = self.private_key.sign(text.encode("utf-8"))
        encoded = base64.b64encode(self.key_id + signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class Verifier:
    """A trusted named Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: bytes

    def __post_init__(self):
        if not is_valid_key_name(self.name):
            raise NoteError(BAD_KEY_NAME.format(name=self.name))
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise NoteError(VERIFIER_KEY_TYPE)
        if key_id(self.name, self.public_key) != self.key_id:
            raise NoteError(VERIFIER_KEY_ID)

    def verifies(self, text: str, signature: bytes) -> bool:
        """Return whether `signature` is this key's Ed25519 signature of `text`."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text.encode("utf-8"))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: who claims to have signed, and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    """A parsed note: its text and its signatures, not verified yet."""

    text: str
    signatures: tuple[Signature, ...]


@dataclass(frozen=True)
class OpenedNote:
    """A note with at least one verified signature; `text` may be trusted."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def verifier_key(name: str, public_key: bytes) -> str:
    """Return the verifier key string `<name>+<hex key id>+<base64(0x01 || key)>`."""
    if not is_valid_key_name(name):
        raise NoteError(BAD_KEY_NAME.format(name=name))
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise NoteError(VERIFIER_KEY_TYPE)
    encoded = base64.b64encode(bytes([ED25519]) + public_key).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_verifier_key(text: str) -> Verifier:
    """Return the Verifier a verifier key string describes; raise MalformedVerifierKeyError if malformed."""
    name, _, rest = text.partition("+")
    hex_id, _, encoded = rest.partition("+")
    if not is_valid_key_name(name) or len(hex_id) != 2 * KEY_ID_SIZE or hex_id != hex_id.lower():
        raise MalformedVerifierKeyError(MALFORMED_VERIFIER_KEY.format(key=text, reason=VERIFIER_KEY_SHAPE))
    try:
        claimed_id = bytes.fromhex(hex_id)
        typed_key = strict_b64decode(encoded)
    except ValueError:
        raise MalformedVerifierKeyError(
            MALFORMED_VERIFIER_KEY.format(key=text, reason=VERIFIER_KEY_SHAPE)
        ) from None
    if len(typed_key) != 1 + PUBLIC_KEY_SIZE or typed_key[0] != ED25519:
        raise MalformedVerifierKeyError(MALFORMED_VERIFIER_KEY.format(key=text, reason=VERIFIER_KEY_TYPE))
    public_key = typed_key[1:]
    if key_id(name, public_key) != claimed_id:
        raise MalformedVerifierKeyError(MALFORMED_VERIFIER_KEY.format(key=text, reason=VERIFIER_KEY_ID))
    return Verifier(name=name, key_id=claimed_id, public_key=public_key)


def check_note_text(text: str) -> str:
    """Return `text` if it may be the text of a note; raise MalformedNoteError otherwise."""
    if not text:
        raise MalformedNoteError(MALFORMED_NOTE.format(reason=EMPTY_TEXT))
    if not text.endswith("\n"):
        raise MalformedNoteError(MALFORMED_NOTE.format(reason=TEXT_WITHOUT_NEWLINE))
    check_characters(text)
    return text


def check_characters(text: str) -> None:
    """Raise MalformedNoteError if `text` holds a control character other than newline or a lone surrogate."""
    if any(char < " " and char != "\n" for char in text):
        raise MalformedNoteError(MALFORMED_NOTE.format(reason=CONTROL_CHARACTER))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedNoteError(MALFORMED_NOTE.format(reason=NOT_UTF8)) from None


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """Return the signed note of `text` with one signature line per signer."""
    check_note_text(text)
    lines = [signer.signature_line(text) for signer in signers]
    if not lines:
        raise NoteError(UNVERIFIED_NOTE)
    return text + "\n" + "".join(lines)


def parse_note(message: str | bytes) -> Note:
    """Return the text and signatures of a signed note, checking its form but no signature."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNoteError(MALFORMED_NOTE.format(reason=NOT_UTF8)) from None
    check_characters(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError(MALFORMED_NOTE.format(reason=NO_SIGNATURE_BLOCK))
    text, block = message[: split + 1], message[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNoteError(MALFORMED_NOTE.format(reason=SIGNATURES_UNTERMINATED))
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(
            MALFORMED_NOTE.format(reason=TOO_MANY_SIGNATURES.format(limit=MAX_SIGNATURES))
        )
    return Note(text=text, signatures=tuple(parse_signature_line(line) for line in lines))


def parse_signature_line(line: str) -> Signature:
    """Return the Signature of one line `— <key name> <base64>`; raise MalformedNoteError otherwise."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedNoteError(MALFORMED_NOTE.format(reason=NOT_A_SIGNATURE_LINE.format(line=line)))
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not is_valid_key_name(name):
        raise MalformedNoteError(MALFORMED_NOTE.format(reason=BAD_KEY_NAME.format(name=name)))
    try:
        raw = strict_b64decode(encoded)
    except ValueError:
        raw = b""
    if len(raw) <= KEY_ID_SIZE:
        raise MalformedNoteError(MALFORMED_NOTE.format(reason=BAD_SIGNATURE_ENCODING.format(name=name)))
    return Signature(name=name, key_id=raw[:KEY_ID_SIZE], signature=raw[KEY_ID_SIZE:])


def open_note(message: str | bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Return the note with its signatures checked against trusted verifiers.

    Signatures by unknown keys are kept aside; every signature by a known key must verify
    (InvalidSignatureError otherwise) and at least one must exist (UnverifiedNoteError otherwise).
    """
    trusted = verifier_index(verifiers)
    note = parse_note(message)
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for signature in note.signatures:
        verifier = trusted.get((signature.name, signature.key_id))
        if verifier is None:
            if signature not in unverified:
                unverified.append(signature)
            continue
        if not verifier.verifies(note.text, signature.signature):
            raise InvalidSignatureError(
                INVALID_SIGNATURE.format(name=signature.name, key_id=signature.key_id.hex())
            )
        if signature not in verified:
            verified.append(signature)
    if not verified:
        raise UnverifiedNoteError(UNVERIFIED_NOTE)
    return OpenedNote(text=note.text, verified=tuple(verified), unverified=tuple(unverified))


def verifier_index(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    """Return the verifiers by (name, key id); raise AmbiguousVerifierError if two share both."""
    index: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        key = (verifier.name, verifier.key_id)
        if key in index and index[key] != verifier:
            raise AmbiguousVerifierError(
                AMBIGUOUS_KEY.format(name=verifier.name, key_id=verifier.key_id.hex())
            )
        index[key] = verifier
    return index
