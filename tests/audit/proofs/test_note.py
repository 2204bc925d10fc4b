"""Signed notes are written and checked as the C2SP spec and Go's sumdb/note package do."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.proofs.note import (
    BAD_KEY_NAME,
    CONTROL_CHARACTER,
    INVALID_SIGNATURE,
    MALFORMED_NOTE,
    TEXT_WITHOUT_NEWLINE,
    UNVERIFIED_NOTE,
    InvalidSignatureError,
    MalformedNoteError,
    MalformedVerifierKeyError,
    NoteError,
    Signature,
    Signer,
    UnverifiedNoteError,
    Verifier,
    key_id,
    open_note,
    parse_note,
    parse_verifier_key,
    sign_note,
    verifier_key,
)

# The vectors of golang.org/x/mod, sumdb/note/note_test.go (TestSign, TestOpen, TestNewVerifier). The Go
# signer key "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALV..." is base64(0x01 || Ed25519 seed).
PETER_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_KEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


def peter_signer() -> Signer:
    typed_seed = base64.b64decode(PETER_SIGNER_KEY.split("+", 4)[4])
    assert typed_seed[0] == 0x01
    return Signer(name="PeterNeumann", private_key=Ed25519PrivateKey.from_private_bytes(typed_seed[1:]))


def signature_of(line: str) -> Signature:
    name, encoded = line.removeprefix("\u2014 ").removesuffix("\n").split(" ")
    raw = base64.b64decode(encoded)
    return Signature(name=name, key_id=raw[:4], signature=raw[4:])


def malformed(reason: str) -> str:
    return MALFORMED_NOTE.format(reason=reason)


def test_signing_the_go_example_gives_the_published_note_byte_for_byte():
    signer = peter_signer()

    assert signer.key_id.hex() == "c74f20a3"
    assert signer.verifier_key() == PETER_KEY
    assert sign_note(TEXT, [signer]) == TEXT + "\n" + PETER_SIG


def test_verifier_keys_of_the_go_examples_parse_to_their_names_and_key_ids():
    peter = parse_verifier_key(PETER_KEY)
    enoch = parse_verifier_key(ENOCH_KEY)

    assert (peter.name, peter.key_id.hex()) == ("PeterNeumann", "c74f20a3")
    assert (enoch.name, enoch.key_id.hex()) == ("EnochRoot", "af0cfe78")
    assert verifier_key(peter.name, peter.public_key) == PETER_KEY
    assert key_id(enoch.name, enoch.public_key) == enoch.key_id


def test_every_mangling_of_a_verifier_key_is_refused():
    refused = 0
    for start in range(len(PETER_KEY) + 1):
        for end in range(start + 1, len(PETER_KEY) + 1):
            if (start, end) != (0, len(PETER_KEY)):
                with pytest.raises(MalformedVerifierKeyError):
                    parse_verifier_key(PETER_KEY[start:end])
                refused += 1
    for position in range(len(PETER_KEY)):
        changed = PETER_KEY[:position] + chr(ord(PETER_KEY[position]) + 1) + PETER_KEY[position + 1 :]
        with pytest.raises(MalformedVerifierKeyError):
            parse_verifier_key(changed)
        refused += 1

    assert refused > 2000
    # From the Go tests: a key of the wrong length and an unknown algorithm, each with a matching key id.
    with pytest.raises(MalformedVerifierKeyError):
        parse_verifier_key("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(MalformedVerifierKeyError):
        parse_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_a_verifier_whose_key_id_does_not_match_its_key_is_refused():
    peter = parse_verifier_key(PETER_KEY)

    with pytest.raises(NoteError):
        Verifier(name=peter.name, key_id=b"\x00\x00\x00\x00", public_key=peter.public_key)
    with pytest.raises(NoteError):
        Verifier(name="Peter Neumann", key_id=peter.key_id, public_key=peter.public_key)


def test_a_note_signed_by_an_unknown_key_only_is_refused():
    with pytest.raises(UnverifiedNoteError) as error:
        open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])

    assert str(error.value) == UNVERIFIED_NOTE


def test_signatures_by_unknown_keys_are_kept_aside_and_known_ones_verified():
    peter, enoch = parse_verifier_key(PETER_KEY), parse_verifier_key(ENOCH_KEY)
    message = TEXT + "\n" + PETER_SIG + ENOCH_SIG

    one = open_note(message, [peter])
    both = open_note(message.encode("utf-8"), [peter, enoch])

    assert one.text == TEXT
    assert one.verified == (signature_of(PETER_SIG),)
    assert one.unverified == (signature_of(ENOCH_SIG),)
    assert both.verified == (signature_of(PETER_SIG), signature_of(ENOCH_SIG))
    assert both.unverified == ()


def test_a_failing_signature_by_a_known_key_rejects_the_whole_note():
    peter = parse_verifier_key(PETER_KEY)
    corrupted = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]

    with pytest.raises(InvalidSignatureError) as error:
        open_note(TEXT + "\n" + corrupted, [peter])
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + "\n" + PETER_SIG + corrupted, [peter])  # a valid one besides does not save it
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT.replace("problem", "solution", 1) + "\n" + PETER_SIG, [peter])

    assert str(error.value) == INVALID_SIGNATURE.format(name="PeterNeumann", key_id="c74f20a3")


def test_repeated_signatures_are_listed_once():
    peter = parse_verifier_key(PETER_KEY)
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]

    opened = open_note(TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd, [peter])

    assert opened.verified == (signature_of(PETER_SIG),)
    assert opened.unverified == (signature_of(ENOCH_SIG), signature_of(enoch_abcd))


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT.replace(",", "\r") + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name").removesuffix("\n"),
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + "- PeterNeumann" + PETER_SIG.removeprefix("\u2014 PeterNeumann"),
        TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),  # same bytes, non-canonical padding bits
        TEXT + "\n" + PETER_SIG.replace("AM=", "AM"),  # unpadded
        TEXT + "\n" + "\u2014 PeterNeumann x08g\n",  # a key id and nothing signed
        TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_malformed_notes_are_refused_before_any_signature_is_checked(message):
    with pytest.raises(MalformedNoteError):
        parse_note(message)
    with pytest.raises(MalformedNoteError):
        open_note(message, [parse_verifier_key(PETER_KEY)])


def test_a_note_that_is_not_utf8_is_refused():
    with pytest.raises(MalformedNoteError):
        parse_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode("utf-8"))


def test_the_text_is_separated_from_the_signatures_by_the_last_blank_line():
    text = "first paragraph\n\nsecond paragraph\n"
    signer = peter_signer()

    opened = open_note(sign_note(text, [signer]), [parse_verifier_key(PETER_KEY)])

    assert opened.text == text


def test_signing_refuses_a_text_the_format_cannot_carry():
    signer = peter_signer()

    with pytest.raises(MalformedNoteError) as no_newline:
        sign_note("abc", [signer])
    with pytest.raises(MalformedNoteError) as control:
        sign_note("a\tb\n", [signer])
    with pytest.raises(NoteError) as no_signer:
        sign_note(TEXT, [])

    assert str(no_newline.value) == malformed(TEXT_WITHOUT_NEWLINE)
    assert str(control.value) == malformed(CONTROL_CHARACTER)
    assert str(no_signer.value) == UNVERIFIED_NOTE


def test_a_signer_needs_a_key_name_without_spaces_or_plus():
    key = Ed25519PrivateKey.generate()

    for name in ("", "a b", "a+b", "a\u00a0b"):
        with pytest.raises(NoteError) as error:
            Signer(name=name, private_key=key)
        assert str(error.value) == BAD_KEY_NAME.format(name=name)


def test_notes_signed_by_several_fresh_keys_open_with_any_of_them():
    first = Signer(name="contractor/alpha", private_key=Ed25519PrivateKey.generate())
    second = Signer(name="witness.example/one", private_key=Ed25519PrivateKey.generate())
    message = sign_note("contractor/alpha\n5\n\u00e9t\u00e9\n", [first, second])

    for signer in (first, second):
        opened = open_note(message, [parse_verifier_key(signer.verifier_key())])
        assert len(opened.verified) == 1
        assert opened.verified[0].name == signer.name
    impostor = Signer(name="contractor/alpha", private_key=Ed25519PrivateKey.generate())
    with pytest.raises(UnverifiedNoteError):
        open_note(message, [parse_verifier_key(impostor.verifier_key())])  # same name, other key id
