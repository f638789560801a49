"""Child process of the crash-safety test: appends, acknowledges and applies, forever.

Usage: python store_crash_child.py <data dir> <seed>. Prints "ready" once the store is
open, then "ack <last index>" after each synced append returns: only then is it
acknowledged. The parent SIGKILLs it at a random moment.
"""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

from raft.types import ConfState, Entry, HardState
from store.node_store import NodeStore
from store.writeset import CreateNode, SetNodeProperty, WriteSet

KEK = bytes(range(32))


def payload(index: int) -> bytes:
    """Deterministic entry data, long enough that a torn write can split it."""
    return hashlib.sha256(b"%d" % index).digest() * (1 + index % 40)


def write_set(index: int) -> WriteSet:
    ops = [CreateNode(index, ("Entry",), (("index", index),))]
    if index > 1:
        ops.append(SetNodeProperty(index - 1, "next", index))
    return WriteSet(tuple(ops))


def main() -> None:
    data_dir, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    store = NodeStore(data_dir, KEK, max_segment_bytes=64 << 10)
    log, graph = store.log, store.graph
    # Catch the graph up with the log, as the apply loop does after a restart.
    for index in range(graph.applied_index() + 1, log.last_index() + 1):
        graph.apply(write_set(index), index)
    print("ready", flush=True)
    while True:
        first = log.last_index() + 1
        entries = [
            Entry(term=1, index=i, data=payload(i))
            for i in range(first, first + rng.randint(1, 30))
        ]
        log.save(entries, HardState(term=1, vote=1, commit=entries[-1].index), sync=True)
        print(f"ack {entries[-1].index}", flush=True)
        for entry in entries:
            graph.apply(write_set(entry.index), entry.index)
        applied = graph.applied_index()
        if applied - log.first_index() > 600 and rng.random() < 0.3:
            snapshot = store.take_snapshot(ConfState(voters=(1,)))
            log.compact(snapshot.metadata.index - 100)


if __name__ == "__main__":
    main()
