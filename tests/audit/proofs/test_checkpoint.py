"""Checkpoints are written and parsed strictly in the C2SP tlog-checkpoint format and signed as notes."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.proofs.checkpoint import (
    BAD_ROOT_HASH,
    BAD_TENANT_SCHEMA,
    BAD_TREE_SIZE,
    EMPTY_EXTENSION,
    MALFORMED_CHECKPOINT,
    TOO_FEW_LINES,
    WRONG_ORIGIN,
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
    tenant_origin,
)
from audit.proofs.merkle import EMPTY_ROOT, build_tree, leaf_hash, tree_root
from audit.proofs.note import (
    InvalidSignatureError,
    Signer,
    UnverifiedNoteError,
    parse_note,
    parse_verifier_key,
)

# The example of https://c2sp.org/tlog-checkpoint (C2SP/C2SP, tlog-checkpoint.md).
SPEC_EXAMPLE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()


def signer(name: str = "contractor/alpha") -> Signer:
    return Signer(name=name, private_key=Ed25519PrivateKey.generate())


def malformed(reason: str) -> str:
    return MALFORMED_CHECKPOINT.format(reason=reason)


def test_the_spec_example_parses_into_origin_size_and_root():
    note = parse_note(SPEC_EXAMPLE)

    checkpoint = parse_checkpoint(note.text)

    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.text() == note.text
    assert [signature.name for signature in note.signatures] == ["example.com/behind-the-sofa"]


def test_the_spec_example_is_not_trusted_without_its_key():
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(SPEC_EXAMPLE, [parse_verifier_key(signer().verifier_key())], origin="example.com/x")


def test_a_checkpoint_writes_three_lines_then_its_extensions():
    checkpoint = Checkpoint(origin="contractor/alpha", size=8, root_hash=ROOT, extensions=("sealed 2026",))

    assert checkpoint.text() == f"contractor/alpha\n8\n{ROOT_B64}\nsealed 2026\n"
    assert parse_checkpoint(checkpoint.text()) == checkpoint


def test_the_empty_tree_has_size_zero_and_the_empty_root():
    checkpoint = parse_checkpoint(f"contractor/alpha\n0\n{base64.b64encode(EMPTY_ROOT).decode()}\n")

    assert (checkpoint.size, checkpoint.root_hash) == (0, EMPTY_ROOT)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("contractor/alpha\n8\n", TOO_FEW_LINES),
        ("contractor/alpha\n008\n" + ROOT_B64 + "\n", BAD_TREE_SIZE.format(size="008")),
        ("contractor/alpha\n-8\n" + ROOT_B64 + "\n", BAD_TREE_SIZE.format(size="-8")),
        ("contractor/alpha\n+8\n" + ROOT_B64 + "\n", BAD_TREE_SIZE.format(size="+8")),
        ("contractor/alpha\n8 \n" + ROOT_B64 + "\n", BAD_TREE_SIZE.format(size="8 ")),
        ("contractor/alpha\n\u0668\n" + ROOT_B64 + "\n", BAD_TREE_SIZE.format(size="\u0668")),  # Arabic 8
        (f"contractor/alpha\n{2**64}\n{ROOT_B64}\n", BAD_TREE_SIZE.format(size=str(2**64))),
        ("contractor/alpha\nbananas\n" + ROOT_B64 + "\n", BAD_TREE_SIZE.format(size="bananas")),
        ("contractor/alpha\n8\nYmFuYW5hcw==\n", BAD_ROOT_HASH.format(root="YmFuYW5hcw==", size=32)),
        ("contractor/alpha\n8\nThisIsn'tBase64\n", BAD_ROOT_HASH.format(root="ThisIsn'tBase64", size=32)),
        ("contractor/alpha\n8\n" + ROOT_B64 + "\n\n", EMPTY_EXTENSION),
    ],
)
def test_malformed_checkpoint_texts_are_refused_with_the_reason(text, reason):
    with pytest.raises(CheckpointError) as error:
        parse_checkpoint(text)

    assert str(error.value) == malformed(reason)


def test_a_checkpoint_text_must_end_with_a_newline_and_have_an_origin():
    with pytest.raises(CheckpointError):
        parse_checkpoint(f"contractor/alpha\n8\n{ROOT_B64}")
    with pytest.raises(CheckpointError):
        parse_checkpoint(f"\n8\n{ROOT_B64}\n")


def test_a_checkpoint_cannot_be_built_with_a_wrong_size_or_hash():
    with pytest.raises(CheckpointError):
        Checkpoint(origin="contractor/alpha", size=-1, root_hash=ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint(origin="contractor/alpha", size=1, root_hash=ROOT[:31])
    with pytest.raises(CheckpointError):
        Checkpoint(origin="contractor/alpha", size=1, root_hash=ROOT, extensions=("two\nlines",))


def test_a_signed_checkpoint_of_a_tree_opens_with_the_log_key_for_its_origin():
    log_key = signer()
    store = build_tree(leaf_hash(bytes([value])) for value in range(5))
    checkpoint = Checkpoint(origin=tenant_origin("alpha"), size=5, root_hash=tree_root(store, 5))

    message = sign_checkpoint(checkpoint, [log_key])

    assert message.startswith(checkpoint.text() + "\n\u2014 contractor/alpha ")
    assert open_checkpoint(
        message, [parse_verifier_key(log_key.verifier_key())], origin="contractor/alpha"
    ) == (checkpoint)


def test_a_checkpoint_of_another_origin_is_refused_even_when_signed_by_a_trusted_key():
    log_key = signer()
    message = sign_checkpoint(Checkpoint(origin="contractor/beta", size=1, root_hash=ROOT), [log_key])

    with pytest.raises(CheckpointError) as error:
        open_checkpoint(message, [parse_verifier_key(log_key.verifier_key())], origin="contractor/alpha")

    assert str(error.value) == WRONG_ORIGIN.format(found="contractor/beta", expected="contractor/alpha")


def test_a_checkpoint_with_a_changed_size_or_root_no_longer_verifies():
    log_key = signer()
    message = sign_checkpoint(Checkpoint(origin="contractor/alpha", size=7, root_hash=ROOT), [log_key])
    verifiers = [parse_verifier_key(log_key.verifier_key())]

    with pytest.raises(InvalidSignatureError):
        open_checkpoint(message.replace("\n7\n", "\n8\n", 1), verifiers, origin="contractor/alpha")
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(
            message.replace(ROOT_B64, base64.b64encode(EMPTY_ROOT).decode()),
            verifiers,
            origin="contractor/alpha",
        )


def test_a_checkpoint_signed_only_by_an_unknown_key_is_refused():
    message = sign_checkpoint(Checkpoint(origin="contractor/alpha", size=1, root_hash=ROOT), [signer()])

    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(message, [parse_verifier_key(signer().verifier_key())], origin="contractor/alpha")


def test_tenant_origins_are_contractor_slash_schema_and_refuse_odd_schemas():
    assert tenant_origin("alpha") == "contractor/alpha"
    assert tenant_origin("alpha", prefix="eu.example.com/contractor") == "eu.example.com/contractor/alpha"

    for schema in ("", "al pha", "al+pha", "al/pha", "al\npha"):
        with pytest.raises(CheckpointError) as error:
            tenant_origin(schema)
        assert str(error.value) == BAD_TENANT_SCHEMA.format(schema=schema)
