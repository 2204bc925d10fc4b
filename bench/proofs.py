"""Measure audit proofs from stored subtrees: nodes read and time per proof in a large tree.

    python bench/proofs.py [--leaves 1000000] [--proofs 2000]

Builds the tree's complete subtrees in memory (as the sealer will store them), then times inclusion and
consistency proofs at random positions, and their verification. Target: a proof well under 2 ms, reading
O(log n) nodes (at most 2 * ceil(log2 n)).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The repository root is put on the path above.
from audit.proofs.merkle import (  # noqa: E402
    InMemoryNodeStore,
    TreeAppender,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

BATCH = 50_000
TARGET_MS = 2.0


class CountingStore:
    """A NodeStore that counts the nodes read from the store it wraps."""

    def __init__(self, store: InMemoryNodeStore):
        self.store = store
        self.reads = 0

    def get(self, level: int, index: int) -> bytes:
        """Return the node and count the read."""
        self.reads += 1
        return self.store.get(level, index)


def build(leaves: int) -> InMemoryNodeStore:
    """Return a store holding every complete subtree of `leaves` leaves."""
    store = InMemoryNodeStore()
    appender = TreeAppender(store, 0)
    for start in range(0, leaves, BATCH):
        batch = range(start, min(start + BATCH, leaves))
        store.put(appender.append(leaf_hash(i.to_bytes(8, "big")) for i in batch))
    return store


def measure(label: str, runs: list[tuple[float, int]]) -> bool:
    """Print the time and reads of a kind of proof; return whether it met the target."""
    times = sorted(seconds * 1000 for seconds, _ in runs)
    reads = max(count for _, count in runs)
    p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
    print(f"{label:<24} p50 {p50:.3f} ms  p99 {p99:.3f} ms  max reads {reads}")
    return p99 < TARGET_MS


def main() -> int:
    """Run the benchmark; exit 1 if a proof misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2_000)
    arguments = parser.parse_args()
    size = arguments.leaves
    chooser = random.Random(1)

    started = time.perf_counter()
    store = build(size)
    print(f"built {size} leaves in {time.perf_counter() - started:.1f} s")
    counting = CountingStore(store)
    root = tree_root(store, size)

    inclusions, consistencies, verifications = [], [], []
    for _ in range(arguments.proofs):
        index = chooser.randrange(size)
        counting.reads = 0
        started = time.perf_counter()
        path = inclusion_proof(counting, index, size)
        inclusions.append((time.perf_counter() - started, counting.reads))
        started = time.perf_counter()
        verify_inclusion(leaf_hash(index.to_bytes(8, "big")), index, size, path, root)
        verifications.append((time.perf_counter() - started, 0))

        first = chooser.randrange(1, size + 1)
        counting.reads = 0
        started = time.perf_counter()
        path = consistency_proof(counting, first, size)
        consistencies.append((time.perf_counter() - started, counting.reads))
        verify_consistency(first, size, path, tree_root(store, first), root)

    print(f"bound on reads: {2 * math.ceil(math.log2(size))}")
    met = [
        measure("inclusion proof", inclusions),
        measure("consistency proof", consistencies),
        measure("inclusion verification", verifications),
    ]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
