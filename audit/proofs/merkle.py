"""Merkle tree hashing and proofs of RFC 9162 §2.1 (the same tree as RFC 6962), over a store of subtrees.

A node is addressed by `(level, index)`: the hash of the complete subtree of `2**level` leaves that starts
at leaf `index * 2**level` (level 0 holds the leaf hashes). Complete subtrees never change once their last
leaf is appended, so a sealer stores each one once (`TreeAppender` says which) and every root and proof
reads O(log n) of them from a `NodeStore`; no proof needs the leaves themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

BAD_HASH_SIZE = "a tree hash must be {size} bytes, got {got}"
BAD_TREE_SIZE = "a tree size must be a non-negative integer, got {size!r}"
LEAF_OUT_OF_RANGE = "leaf index {index} is not inside a tree of {size} leaves"
SIZES_OUT_OF_ORDER = "the first tree size {first} is larger than the second {second}"
MISSING_NODE = "the store has no node at level {level}, index {index}"
UNALIGNED_RANGE = "leaves [{start}, {end}) are not a range of complete subtrees"
ROOT_MISMATCH = "the proof does not lead to the expected root"
FIRST_ROOT_MISMATCH = "the proof does not lead to the expected first root"
PROOF_WRONG_LENGTH = "the proof has the wrong number of hashes for these tree sizes"
EMPTY_TREE_ROOT = "a tree of 0 leaves has the root of the empty string"
NODE_OUT_OF_ORDER = "node ({level}, {index}) is not the next node of its level"


class MerkleError(ValueError):
    """A tree size, index or hash given to the tree is not valid."""


class MissingNodeError(LookupError):
    """The node store lacks a complete subtree that the tree's size says it holds."""


class ProofError(ValueError):
    """A proof does not verify."""


class InclusionProofError(ProofError):
    """An inclusion proof does not lead from the leaf to the root."""


class ConsistencyProofError(ProofError):
    """A consistency proof does not show the first tree to be a prefix of the second."""


class Node(NamedTuple):
    """A complete subtree: `2**level` leaves starting at leaf `index * 2**level`."""

    level: int
    index: int
    hash: bytes


class NodeStore(Protocol):
    """Where complete subtrees are kept: a table for the sealer, memory for tests and the offline verifier."""

    def get(self, level: int, index: int) -> bytes:
        """Return the hash of the complete subtree at (level, index); raise MissingNodeError if absent."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 hash of a leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def check_hash(value: bytes) -> bytes:
    """Return `value` if it is a SHA-256 hash; raise MerkleError otherwise."""
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        got = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise MerkleError(BAD_HASH_SIZE.format(size=HASH_SIZE, got=got))
    return bytes(value)


def check_size(size: int) -> int:
    """Return `size` if it is a valid tree size; raise MerkleError otherwise."""
    if type(size) is not int or size < 0:
        raise MerkleError(BAD_TREE_SIZE.format(size=size))
    return size


def split_point(count: int) -> int:
    """Return the largest power of two smaller than `count` (count >= 2), RFC 9162's k."""
    return 1 << ((count - 1).bit_length() - 1)


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """Return the Merkle tree hash (MTH) of a whole list of leaf hashes, in one pass."""
    frontier: list[tuple[int, bytes]] = []  # (level, hash) of complete subtrees, left to right
    for value in leaf_hashes:
        level, carry = 0, check_hash(value)
        while frontier and frontier[-1][0] == level:
            carry = node_hash(frontier.pop()[1], carry)
            level += 1
        frontier.append((level, carry))
    return fold_frontier([value for _, value in frontier])


def fold_frontier(hashes: Sequence[bytes]) -> bytes:
    """Return the root over complete subtrees given left to right, largest first."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for value in reversed(hashes[:-1]):
        result = node_hash(value, result)
    return result


def range_hash(store: NodeStore, start: int, end: int) -> bytes:
    """Return MTH of leaves [start, end) from the store, reading one node per complete subtree."""
    count = end - start
    if count & (count - 1) == 0:  # a power of two: one stored node, if aligned
        level = count.bit_length() - 1
        if start % count:
            raise MerkleError(UNALIGNED_RANGE.format(start=start, end=end))
        return store.get(level, start >> level)
    middle = start + split_point(count)
    return node_hash(range_hash(store, start, middle), range_hash(store, middle, end))


def tree_root(store: NodeStore, size: int) -> bytes:
    """Return the root of the tree's first `size` leaves, reading O(log size) nodes."""
    if check_size(size) == 0:
        return EMPTY_ROOT
    return range_hash(store, 0, size)


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """Return PATH(index, D[size]) of RFC 9162 §2.1.3.1, reading O(log size) nodes."""
    check_size(size)
    if type(index) is not int or not 0 <= index < size:
        raise MerkleError(LEAF_OUT_OF_RANGE.format(index=index, size=size))
    top_down: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + split_point(end - start)
        if index < middle:
            top_down.append(range_hash(store, middle, end))
            end = middle
        else:
            top_down.append(range_hash(store, start, middle))
            start = middle
    return top_down[::-1]


def consistency_proof(store: NodeStore, first: int, second: int) -> list[bytes]:
    """Return PROOF(first, D[second]) of RFC 9162 §2.1.4.1, reading O(log second) nodes."""
    check_size(first)
    check_size(second)
    if first > second:
        raise MerkleError(SIZES_OUT_OF_ORDER.format(first=first, second=second))
    if first == 0 or first == second:
        return []
    top_down: list[bytes] = []
    start, end, whole_first_tree = 0, second, True
    while end != first:
        middle = start + split_point(end - start)
        if first <= middle:
            top_down.append(range_hash(store, middle, end))
            end = middle
        else:
            top_down.append(range_hash(store, start, middle))
            start, whole_first_tree = middle, False
    # SUBPROOF(m, D[m], b): the first tree's own root is left out only when it is the whole first tree.
    head = [] if whole_first_tree else [range_hash(store, start, end)]
    return head + top_down[::-1]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Check an inclusion proof by RFC 9162 §2.1.3.2; raise InclusionProofError if it fails."""
    check_size(size)
    check_hash(leaf)
    check_hash(expected_root)
    if type(index) is not int or not 0 <= index < size:
        raise InclusionProofError(LEAF_OUT_OF_RANGE.format(index=index, size=size))
    if root_from_inclusion(leaf, index, size, proof) != expected_root:
        raise InclusionProofError(ROOT_MISMATCH)


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Return the root an inclusion proof leads to; raise InclusionProofError if its length is wrong."""
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        check_hash(sibling)
        if sn == 0:
            raise InclusionProofError(PROOF_WRONG_LENGTH)
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise InclusionProofError(PROOF_WRONG_LENGTH)
    return result


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """Check a consistency proof by RFC 9162 §2.1.4.2; raise ConsistencyProofError if it fails."""
    check_size(first)
    check_size(second)
    check_hash(first_root)
    check_hash(second_root)
    if first > second:
        raise ConsistencyProofError(SIZES_OUT_OF_ORDER.format(first=first, second=second))
    if first == second or first == 0:
        if proof:
            raise ConsistencyProofError(PROOF_WRONG_LENGTH)
        if first == 0 and first_root != EMPTY_ROOT:
            raise ConsistencyProofError(EMPTY_TREE_ROOT)
        if first == second and first_root != second_root:
            raise ConsistencyProofError(ROOT_MISMATCH)
        return
    found_first, found_second = roots_from_consistency(first, second, proof, first_root)
    if found_first != first_root:
        raise ConsistencyProofError(FIRST_ROOT_MISMATCH)
    if found_second != second_root:
        raise ConsistencyProofError(ROOT_MISMATCH)


def roots_from_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes
) -> tuple[bytes, bytes]:
    """Return the (first, second) roots a proof for 0 < first < second leads to."""
    if not proof:
        raise ConsistencyProofError(PROOF_WRONG_LENGTH)
    path = [check_hash(value) for value in proof]
    if first & (first - 1) == 0:  # the first tree is a complete subtree: the proof leaves its root out
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first_result = second_result = path[0]
    for value in path[1:]:
        if sn == 0:
            raise ConsistencyProofError(PROOF_WRONG_LENGTH)
        if fn & 1 or fn == sn:
            first_result = node_hash(value, first_result)
            second_result = node_hash(value, second_result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            second_result = node_hash(second_result, value)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ConsistencyProofError(PROOF_WRONG_LENGTH)
    return first_result, second_result


class TreeAppender:
    """Appends leaf hashes to a tree of known size and names the complete subtrees each append completes."""

    def __init__(self, store: NodeStore, size: int):
        self.size = check_size(size)
        # The complete subtrees the tree currently ends with, one per set bit of its size, largest first.
        self.frontier: list[Node] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                self.frontier.append(Node(level, start >> level, store.get(level, start >> level)))
                start += 1 << level

    def append(self, leaf_hashes: Iterable[bytes]) -> list[Node]:
        """Add leaf hashes; return every new complete subtree (leaves included) to persist, in order."""
        new_nodes: list[Node] = []
        for value in leaf_hashes:
            carry = Node(0, self.size, check_hash(value))
            new_nodes.append(carry)
            while self.frontier and self.frontier[-1].level == carry.level:
                left = self.frontier.pop()
                carry = Node(carry.level + 1, left.index >> 1, node_hash(left.hash, carry.hash))
                new_nodes.append(carry)
            self.frontier.append(carry)
            self.size += 1
        return new_nodes

    def root(self) -> bytes:
        """Return the root of the tree at its current size."""
        return fold_frontier([node.hash for node in self.frontier])


class InMemoryNodeStore:
    """A NodeStore in memory: one bytearray per level, for tests, benchmarks and the offline verifier."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = []

    def get(self, level: int, index: int) -> bytes:
        """Return the hash of the complete subtree at (level, index); raise MissingNodeError if absent."""
        if (
            level < 0
            or index < 0
            or level >= len(self.levels)
            or (index + 1) * HASH_SIZE > len(self.levels[level])
        ):
            raise MissingNodeError(MISSING_NODE.format(level=level, index=index))
        offset = index * HASH_SIZE
        return bytes(self.levels[level][offset : offset + HASH_SIZE])

    def put(self, nodes: Iterable[Node]) -> None:
        """Store nodes; each must be the next one of its level, as TreeAppender hands them out."""
        for node in nodes:
            while len(self.levels) <= node.level:
                self.levels.append(bytearray())
            row = self.levels[node.level]
            if node.index * HASH_SIZE != len(row):
                raise MerkleError(NODE_OUT_OF_ORDER.format(level=node.level, index=node.index))
            row += check_hash(node.hash)


def build_tree(leaf_hashes: Iterable[bytes]) -> InMemoryNodeStore:
    """Return an in-memory store holding every complete subtree of the given leaves."""
    store = InMemoryNodeStore()
    store.put(TreeAppender(store, 0).append(leaf_hashes))
    return store
