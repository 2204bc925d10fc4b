"""Merkle tree hashing and proofs agree with the RFC 6962 reference vectors and a naive reference tree."""

import hashlib
import math
import random

import pytest

from audit.proofs.merkle import (
    BAD_HASH_SIZE,
    EMPTY_ROOT,
    EMPTY_TREE_ROOT,
    FIRST_ROOT_MISMATCH,
    LEAF_OUT_OF_RANGE,
    MISSING_NODE,
    PROOF_WRONG_LENGTH,
    ROOT_MISMATCH,
    SIZES_OUT_OF_ORDER,
    ConsistencyProofError,
    InclusionProofError,
    InMemoryNodeStore,
    MerkleError,
    MissingNodeError,
    Node,
    TreeAppender,
    build_tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

# The reference tree of the Certificate Transparency implementations: google/certificate-transparency,
# cpp/merkletree/merkle_tree_test.cc (kInputs, kSHA256Roots, kSHA256Paths, kSHA256Proofs), the same values
# as transparency-dev/merkle, proof/verify_test.go (leaves, roots, inclusionProofs, consistencyProofs).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")] + [
    bytes.fromhex("606162636465666768696a6b6c6d6e6f")
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
SHA256_OF_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# (leaf index counted from 0, tree size, path): the references count leaves from 1.
INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    # Only in transparency-dev/merkle, proof/verify_test.go.
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


# A naive tree over all leaves, written straight from RFC 9162 §2.1 as a reference, like the CT tests'
# ReferenceMerkleTreeHash / ReferenceMerklePath / ReferenceSnapshotConsistency.
def naive_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def naive_path(index: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if index < k:
        return [*naive_path(index, leaves[:k]), naive_root(leaves[k:])]
    return [*naive_path(index - k, leaves[k:]), naive_root(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    if m == len(leaves):
        return [] if whole else [naive_root(leaves)]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m <= k:
        return [*naive_subproof(m, leaves[:k], whole), naive_root(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_root(leaves[:k])]


def reference_store() -> InMemoryNodeStore:
    return build_tree(leaf_hash(data) for data in LEAVES)


def hashes(hex_values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in hex_values]


def test_leaf_and_node_hashes_are_domain_separated():
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert leaf_hash(b"\x01" + b"a" * 32 + b"b" * 32) != node_hash(b"a" * 32, b"b" * 32)


def test_the_empty_tree_has_the_hash_of_the_empty_string():
    assert EMPTY_ROOT.hex() == SHA256_OF_EMPTY
    assert root([]) == EMPTY_ROOT
    assert tree_root(InMemoryNodeStore(), 0) == EMPTY_ROOT
    assert TreeAppender(InMemoryNodeStore(), 0).root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_reference_tree_match_the_published_vectors(size):
    leaf_hashes = [leaf_hash(data) for data in LEAVES[:size]]

    assert root(leaf_hashes) == ROOTS[size - 1]
    assert tree_root(reference_store(), size) == ROOTS[size - 1]
    appender = TreeAppender(InMemoryNodeStore(), 0)
    appender.append(leaf_hashes)
    assert appender.root() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_PROOFS)
def test_inclusion_proofs_of_the_reference_tree_match_the_published_vectors(index, size, path):
    assert inclusion_proof(reference_store(), index, size) == hashes(path)
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, hashes(path), ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY_PROOFS)
def test_consistency_proofs_of_the_reference_tree_match_the_published_vectors(first, second, path):
    assert consistency_proof(reference_store(), first, second) == hashes(path)
    verify_consistency(first, second, hashes(path), ROOTS[first - 1], ROOTS[second - 1])


def corrupted_inclusions(index, size, proof, expected_root, leaf):
    """Yield (description, arguments) that must fail, as transparency-dev's corruptInclusionProof does."""
    yield "index - 1", (leaf, index - 1, size, proof, expected_root)
    yield "index + 1", (leaf, index + 1, size, proof, expected_root)
    yield "index ^ 2", (leaf, index ^ 2, size, proof, expected_root)
    yield "size * 2", (leaf, index, size * 2, proof, expected_root)
    yield "size // 2", (leaf, index, size // 2, proof, expected_root)
    yield "wrong leaf", (leaf_hash(b"WrongLeaf"), index, size, proof, expected_root)
    yield "empty root", (leaf, index, size, proof, EMPTY_ROOT)
    yield "random root", (leaf, index, size, proof, SOME_HASH)
    yield "trailing root", (leaf, index, size, [*proof, expected_root], expected_root)
    yield "preceding root", (leaf, index, size, [expected_root, *proof], expected_root)
    for position in range(len(proof)):
        flipped = [*proof]
        flipped[position] = bytes([proof[position][0] ^ 8]) + proof[position][1:]
        yield f"bit flipped in proof[{position}]", (leaf, index, size, flipped, expected_root)
    if proof:
        yield "removed component", (leaf, index, size, proof[:-1], expected_root)
    if len(proof) > 1:
        yield "inserted component", (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], expected_root)


def corrupted_consistencies(first, second, first_root, second_root, proof):
    """Yield (description, arguments) that must fail, as transparency-dev's corruptConsistencyProof does."""
    yield "first - 1", (first - 1, second, proof, first_root, second_root)
    yield "first + 1", (first + 1, second, proof, first_root, second_root)
    yield "first ^ 2", (first ^ 2, second, proof, first_root, second_root)
    yield "second * 2", (first, second * 2, proof, first_root, second_root)
    yield "second // 2", (first, second // 2, proof, first_root, second_root)
    yield "wrong first root", (first, second, proof, SOME_HASH, second_root)
    yield "wrong second root", (first, second, proof, first_root, SOME_HASH)
    yield "swapped roots", (first, second, proof, second_root, first_root)
    yield "empty proof", (first, second, [], first_root, second_root)
    yield "trailing first root", (first, second, [*proof, first_root], first_root, second_root)
    yield "trailing second root", (first, second, [*proof, second_root], first_root, second_root)
    yield "preceding first root", (first, second, [first_root, *proof], first_root, second_root)
    yield "preceding second root", (first, second, [second_root, *proof], first_root, second_root)
    yield "preceding proof[0]", (first, second, [proof[0], *proof], first_root, second_root)
    yield "truncated proof", (first, second, proof[:-1], first_root, second_root)
    for position in range(len(proof)):
        flipped = [*proof]
        flipped[position] = bytes([proof[position][0] ^ 16]) + proof[position][1:]
        yield f"bit flipped in proof[{position}]", (first, second, flipped, first_root, second_root)


def inclusion_accepted(*arguments) -> bool:
    try:
        verify_inclusion(*arguments)
    except (InclusionProofError, MerkleError):
        return False
    return True


def consistency_accepted(*arguments) -> bool:
    try:
        verify_consistency(*arguments)
    except (ConsistencyProofError, MerkleError):
        return False
    return True


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_PROOFS[1:])
def test_corrupted_reference_inclusion_proofs_are_refused(index, size, path):
    cases = corrupted_inclusions(index, size, hashes(path), ROOTS[size - 1], leaf_hash(LEAVES[index]))

    accepted = [description for description, arguments in cases if inclusion_accepted(*arguments)]

    assert accepted == []


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY_PROOFS[1:])
def test_corrupted_reference_consistency_proofs_are_refused(first, second, path):
    cases = corrupted_consistencies(first, second, ROOTS[first - 1], ROOTS[second - 1], hashes(path))

    accepted = [description for description, arguments in cases if consistency_accepted(*arguments)]

    assert accepted == []


def test_inclusion_verification_refuses_an_index_outside_the_tree():
    with pytest.raises(InclusionProofError) as error:
        verify_inclusion(ROOTS[0], 1, 1, [], ROOTS[0])
    assert str(error.value) == LEAF_OUT_OF_RANGE.format(index=1, size=1)

    for index, size in ((0, 0), (1, 0), (2, 1)):
        assert not inclusion_accepted(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_inclusion_verification_names_a_wrong_root_and_a_proof_of_the_wrong_length():
    path = hashes(INCLUSION_PROOFS[2][2])
    leaf = leaf_hash(LEAVES[5])

    with pytest.raises(InclusionProofError) as wrong_root:
        verify_inclusion(leaf, 5, 8, path, ROOTS[6])
    with pytest.raises(InclusionProofError) as too_short:
        verify_inclusion(leaf, 5, 8, path[:-1], ROOTS[7])
    with pytest.raises(InclusionProofError) as too_long:
        verify_inclusion(leaf, 5, 8, [*path, SOME_HASH], ROOTS[7])

    assert str(wrong_root.value) == ROOT_MISMATCH
    assert str(too_short.value) == PROOF_WRONG_LENGTH
    assert str(too_long.value) == PROOF_WRONG_LENGTH


def test_hashes_of_the_wrong_size_are_refused_not_hashed():
    with pytest.raises(MerkleError) as error:
        verify_inclusion(b"short", 0, 1, [], ROOTS[0])
    assert str(error.value) == BAD_HASH_SIZE.format(size=32, got=5)

    with pytest.raises(MerkleError):
        verify_inclusion(leaf_hash(LEAVES[0]), 0, 2, [b""], ROOTS[1])
    with pytest.raises(MerkleError):
        root([b"x" * 33])
    with pytest.raises(MerkleError):
        TreeAppender(InMemoryNodeStore(), 0).append([b"x" * 31])


def test_consistency_of_a_tree_with_itself_needs_an_empty_proof_and_equal_roots():
    verify_consistency(3, 3, [], ROOTS[2], ROOTS[2])

    with pytest.raises(ConsistencyProofError) as different:
        verify_consistency(3, 3, [], ROOTS[2], ROOTS[3])
    with pytest.raises(ConsistencyProofError) as not_empty:
        verify_consistency(3, 3, [ROOTS[2]], ROOTS[2], ROOTS[2])

    assert str(different.value) == ROOT_MISMATCH
    assert str(not_empty.value) == PROOF_WRONG_LENGTH


def test_the_empty_tree_is_consistent_with_any_tree_only_under_the_empty_root():
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 8, [], EMPTY_ROOT, ROOTS[7])

    with pytest.raises(ConsistencyProofError) as wrong_root:
        verify_consistency(0, 8, [], ROOTS[0], ROOTS[7])
    with pytest.raises(ConsistencyProofError) as not_empty:
        verify_consistency(0, 1, [EMPTY_ROOT], EMPTY_ROOT, ROOTS[0])

    assert str(wrong_root.value) == EMPTY_TREE_ROOT
    assert str(not_empty.value) == PROOF_WRONG_LENGTH


def test_consistency_never_travels_back_in_time():
    with pytest.raises(ConsistencyProofError) as error:
        verify_consistency(2, 1, [], ROOTS[1], ROOTS[0])
    assert str(error.value) == SIZES_OUT_OF_ORDER.format(first=2, second=1)

    with pytest.raises(MerkleError):
        consistency_proof(reference_store(), 5, 4)


def test_consistency_verification_says_which_root_does_not_match():
    path = hashes(CONSISTENCY_PROOFS[2][2])

    with pytest.raises(ConsistencyProofError) as first:
        verify_consistency(6, 8, path, ROOTS[4], ROOTS[7])
    with pytest.raises(ConsistencyProofError) as second:
        verify_consistency(6, 8, path, ROOTS[5], ROOTS[6])

    assert str(first.value) == FIRST_ROOT_MISMATCH
    assert str(second.value) == ROOT_MISMATCH


def test_proof_generation_refuses_sizes_and_indexes_outside_the_tree():
    store = reference_store()

    with pytest.raises(MerkleError) as error:
        inclusion_proof(store, 8, 8)
    assert str(error.value) == LEAF_OUT_OF_RANGE.format(index=8, size=8)
    with pytest.raises(MerkleError):
        inclusion_proof(store, -1, 8)
    with pytest.raises(MerkleError):
        tree_root(store, -1)


def test_a_proof_beyond_the_stored_tree_names_the_missing_node():
    with pytest.raises(MissingNodeError) as error:
        inclusion_proof(reference_store(), 3, 9)

    assert str(error.value) == MISSING_NODE.format(level=0, index=8)


@pytest.mark.parametrize("seed", range(6))
def test_proofs_from_stored_subtrees_match_the_naive_tree_at_random_sizes(seed):
    chooser = random.Random(seed)
    size = chooser.choice([chooser.randint(1, 70), chooser.randint(70, 700)])
    leaves = [leaf_hash(chooser.randbytes(chooser.randint(0, 40))) for _ in range(size)]
    store = build_tree(leaves)

    for tree_size in sorted({1, size, *chooser.sample(range(1, size + 1), min(size, 12))}):
        expected_root = naive_root(leaves[:tree_size])
        assert tree_root(store, tree_size) == expected_root
        assert root(leaves[:tree_size]) == expected_root
        for index in chooser.sample(range(tree_size), min(tree_size, 8)):
            path = inclusion_proof(store, index, tree_size)
            assert path == naive_path(index, leaves[:tree_size])
            verify_inclusion(leaves[index], index, tree_size, path, expected_root)
            tampered = corrupted_inclusions(index, tree_size, path, expected_root, leaves[index])
            assert [name for name, arguments in tampered if inclusion_accepted(*arguments)] == []
        for first in chooser.sample(range(1, tree_size + 1), min(tree_size, 8)):
            path = consistency_proof(store, first, tree_size)
            assert path == naive_subproof(first, leaves[:tree_size], True)
            first_root = naive_root(leaves[:first])
            verify_consistency(first, tree_size, path, first_root, expected_root)
            if path:
                tampered = corrupted_consistencies(first, tree_size, first_root, expected_root, path)
                assert [name for name, arguments in tampered if consistency_accepted(*arguments)] == []


def test_the_appender_hands_out_exactly_the_subtrees_each_batch_completes():
    chooser = random.Random(7)
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(300)]
    store = InMemoryNodeStore()
    size = 0
    while size < len(leaves):
        batch = leaves[size : size + chooser.randint(1, 40)]
        appender = TreeAppender(store, size)  # a fresh appender per batch, as a sealer run would be

        new_nodes = appender.append(batch)

        new_size = size + len(batch)
        expected = {
            (level, index)
            for level in range(new_size.bit_length())
            for index in range(new_size >> level)
            if (index + 1) << level > size
        }
        assert [(node.level, node.index) for node in new_nodes] == sorted(
            expected, key=lambda key: ((key[1] + 1) << key[0], key[0])
        )
        store.put(new_nodes)
        assert appender.size == new_size
        assert appender.root() == naive_root(leaves[:new_size]) == tree_root(store, new_size)
        size = new_size


def test_the_appender_reads_only_the_subtrees_on_the_right_edge_of_the_tree():
    store = CountingStore(build_tree(leaf_hash(i.to_bytes(4, "big")) for i in range(1000)))

    TreeAppender(store, 1000)

    assert store.reads == bin(1000).count("1")


def test_the_in_memory_store_refuses_nodes_out_of_order():
    store = InMemoryNodeStore()

    with pytest.raises(MerkleError):
        store.put([Node(0, 1, SOME_HASH)])


class CountingStore:
    """A NodeStore that counts the nodes read from the store it wraps."""

    def __init__(self, store):
        self.store = store
        self.reads = 0

    def get(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.store.get(level, index)


@pytest.fixture(scope="module")
def million_leaf_tree():
    store = InMemoryNodeStore()
    appender = TreeAppender(store, 0)
    for start in range(0, 1_000_000, 50_000):
        store.put(appender.append(leaf_hash(i.to_bytes(8, "big")) for i in range(start, start + 50_000)))
    return store, appender.root()


def test_proofs_in_a_million_leaf_tree_read_a_logarithmic_number_of_nodes(million_leaf_tree):
    store, million_root = million_leaf_tree
    counting = CountingStore(store)
    bound = 2 * math.ceil(math.log2(1_000_000))

    assert tree_root(counting, 1_000_000) == million_root
    assert counting.reads == bin(1_000_000).count("1")

    for index, size in ((0, 1_000_000), (765_432, 1_000_000), (999_999, 1_000_000), (123_457, 999_999)):
        counting.reads = 0
        path = inclusion_proof(counting, index, size)
        assert counting.reads <= bound
        verify_inclusion(leaf_hash(index.to_bytes(8, "big")), index, size, path, tree_root(store, size))

    for first in (1, 524_288, 700_001, 999_999):
        counting.reads = 0
        path = consistency_proof(counting, first, 1_000_000)
        assert counting.reads <= bound
        verify_consistency(first, 1_000_000, path, tree_root(store, first), million_root)
