"""Child process of the index key rotation crash test: rotates, rebuilds and applies, forever.

Usage: python store_index_rotation_child.py <data dir>. Opens the graph (building it with
write set 1 the first time), prints "ready", then loops: start (or continue) a rotation of
the index key, and between bounded rebuild steps apply the next deterministic write set, so
that a SIGKILL lands mid-step, mid-apply or mid-switch. The parent rebuilds the expected
graph from ``write_set(1..applied)`` and compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

from store.crypto import Keyring
from store.graph import GraphStore
from store.writeset import (
    CreateIndex,
    CreateNode,
    CreateRelationship,
    CreateUniqueConstraint,
    DeleteRelationship,
    SetNodeProperty,
    SetRelationshipProperty,
    WriteSet,
)

KEK = bytes(range(32))
NODES = 24
STEP_RECORDS = 3


def write_set(index: int) -> WriteSet:
    """Write set `index` (1: the initial graph and its indexes; then small changes)."""
    if index == 1:
        ops: list[object] = [
            CreateIndex("by_k", "Person", ("k",)),
            CreateIndex("by_w", "KNOWS", ("k",), on_relationships=True),
            CreateUniqueConstraint("unique_name", "Person", ("name",)),
        ]
        ops += [CreateNode(i, ("Person",), (("k", i % 3), ("name", f"p{i}"))) for i in range(NODES)]
        ops += [
            CreateRelationship(i, "KNOWS", i, (i + 1) % NODES, (("k", i % 2),))
            for i in range(NODES)
        ]
        return WriteSet(tuple(ops))  # type: ignore[arg-type]
    node = index % NODES
    changes: list[object] = [
        SetNodeProperty(node, "k", index % 5),
        SetRelationshipProperty(node, "k", index % 4),
    ]
    if index % 7 == 0:
        rel_id = NODES + index
        changes.append(CreateRelationship(rel_id, "KNOWS", node, 0, (("k", 1),)))
    if index % 7 == 3 and index > 7:
        changes.append(DeleteRelationship(NODES + index - 3))
    return WriteSet(tuple(changes))  # type: ignore[arg-type]


def main() -> None:
    data_dir = Path(sys.argv[1])
    graph = GraphStore(data_dir / "graph", Keyring(data_dir, KEK))
    if graph.applied_index() == 0:
        graph.apply(write_set(1), 1)
    print("ready", flush=True)
    while True:
        graph.rotate_index_key()
        while not graph.rebuild_indexes(max_records=STEP_RECORDS).complete:
            index = graph.applied_index() + 1
            graph.apply(write_set(index), index)


if __name__ == "__main__":
    main()
