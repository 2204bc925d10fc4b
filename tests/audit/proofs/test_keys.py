"""The checkpoint signing key loads from a key file or a base64 seed, and weak or unsafe input is refused."""

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.proofs.keys import (
    KEY_FILE_NOT_REGULAR,
    KEY_FILE_TOO_LARGE,
    KEY_FILE_WRITABLE,
    ONE_SOURCE,
    PEM_NOT_ED25519,
    RAW_WRONG_SIZE,
    SEED_NOT_BASE64,
    SEED_WRONG_SIZE,
    WEAK_SEED,
    SigningKeyError,
    load_signing_key,
    public_key_bytes,
    signer_for,
    verifier_key_for,
)
from audit.proofs.note import open_note, parse_verifier_key, sign_note

# golang.org/x/mod, sumdb/note/note_test.go: the seed in "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALV..."
# (after its type byte 0x01) and the verifier key the Go package derives from it.
PETER_SEED_B64 = base64.b64encode(
    base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
).decode()
PETER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes_raw()


def key_file(tmp_path, content: bytes, mode: int = 0o600):
    path = tmp_path / "checkpoint.key"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_a_base64_seed_gives_the_key_the_go_package_derives_from_it():
    key = load_signing_key(secret=PETER_SEED_B64)

    assert verifier_key_for("PeterNeumann", key) == PETER_KEY


def test_a_pem_file_and_a_raw_seed_file_load_the_same_key(tmp_path):
    key = Ed25519PrivateKey.generate()

    from_pem = load_signing_key(path=key_file(tmp_path, pem(key)))
    from_raw = load_signing_key(path=str(key_file(tmp_path, raw(key), 0o400)))

    assert raw(from_pem) == raw(from_raw) == raw(key)
    assert public_key_bytes(from_pem) == key.public_key().public_bytes_raw()


def test_the_derived_verifier_key_checks_what_the_loaded_key_signs():
    key = load_signing_key(secret=base64.b64encode(os.urandom(32)).decode())
    message = sign_note(
        "contractor/alpha\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        [signer_for("contractor/alpha", key)],
    )

    opened = open_note(message, [parse_verifier_key(verifier_key_for("contractor/alpha", key))])

    assert opened.verified[0].name == "contractor/alpha"


def test_exactly_one_source_is_required():
    with pytest.raises(SigningKeyError) as neither:
        load_signing_key()
    with pytest.raises(SigningKeyError) as both:
        load_signing_key(path="/nonexistent", secret=PETER_SEED_B64)

    assert str(neither.value) == str(both.value) == ONE_SOURCE


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not base64!", SEED_NOT_BASE64),
        (PETER_SEED_B64.rstrip("="), SEED_NOT_BASE64),
        (base64.urlsafe_b64encode(b"\xfb" * 16 + bytes(range(16))).decode(), SEED_NOT_BASE64),
        (base64.b64encode(bytes(range(31))).decode(), SEED_WRONG_SIZE.format(size=31)),
        (base64.b64encode(bytes(range(64))).decode(), SEED_WRONG_SIZE.format(size=64)),
        (base64.b64encode(bytes(32)).decode(), WEAK_SEED.format(distinct=1)),
        (base64.b64encode(b"changeme" * 4).decode(), WEAK_SEED.format(distinct=7)),
    ],
)
def test_malformed_or_weak_secrets_are_refused_with_the_reason(secret, message):
    with pytest.raises(SigningKeyError) as error:
        load_signing_key(secret=secret)

    assert str(error.value) == message


def test_a_key_file_writable_by_others_is_refused(tmp_path):
    path = key_file(tmp_path, raw(Ed25519PrivateKey.generate()), 0o620)

    with pytest.raises(SigningKeyError) as error:
        load_signing_key(path=path)

    assert str(error.value) == KEY_FILE_WRITABLE.format(path=path)


def test_a_pem_file_of_another_key_type_is_refused(tmp_path):
    path = key_file(tmp_path, pem(ec.generate_private_key(ec.SECP256R1())))

    with pytest.raises(SigningKeyError) as error:
        load_signing_key(path=path)

    assert str(error.value) == PEM_NOT_ED25519.format(path=path)


def test_an_encrypted_or_broken_pem_file_is_refused(tmp_path):
    encrypted = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )

    with pytest.raises(SigningKeyError):
        load_signing_key(path=key_file(tmp_path, encrypted))
    with pytest.raises(SigningKeyError):
        load_signing_key(path=key_file(tmp_path, pem(Ed25519PrivateKey.generate())[:-40]))


def test_a_raw_file_of_the_wrong_size_is_refused(tmp_path):
    path = key_file(tmp_path, bytes(range(33)))

    with pytest.raises(SigningKeyError) as error:
        load_signing_key(path=path)

    assert str(error.value) == RAW_WRONG_SIZE.format(path=path, size=33)


def test_a_weak_raw_seed_file_is_refused(tmp_path):
    with pytest.raises(SigningKeyError) as error:
        load_signing_key(path=key_file(tmp_path, bytes(32)))

    assert str(error.value) == WEAK_SEED.format(distinct=1)


def test_a_missing_file_a_directory_and_a_huge_file_are_refused(tmp_path):
    huge = key_file(tmp_path, b"x" * 20_000)

    with pytest.raises(SigningKeyError):
        load_signing_key(path=tmp_path / "missing.key")
    with pytest.raises(SigningKeyError) as directory:
        load_signing_key(path=tmp_path)
    with pytest.raises(SigningKeyError) as too_large:
        load_signing_key(path=huge)

    assert str(directory.value) == KEY_FILE_NOT_REGULAR.format(path=tmp_path)
    assert str(too_large.value) == KEY_FILE_TOO_LARGE.format(path=huge, limit=16 * 1024)
