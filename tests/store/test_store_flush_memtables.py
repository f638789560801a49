"""``GraphStore.flush_memtables``: the flush a node runs in its file thread before it pins a
snapshot checkpoint, beside the storage thread's applies and, at shutdown, its close."""

from __future__ import annotations

import threading
from pathlib import Path

from store.crypto import PlaintextCipher
from store.graph import GraphStore
from store.writeset import CreateNode, WriteSet

NODES = 2000


def _apply(graph: GraphStore, first: int, count: int) -> None:
    for node_id in range(first, first + count):
        graph.apply(WriteSet((CreateNode(node_id, ("P",), (("i", node_id),)),)), node_id + 1)


def test_a_flush_beside_applies_loses_nothing(tmp_path: Path) -> None:
    graph = GraphStore(tmp_path / "graph", PlaintextCipher())
    _apply(graph, 1, NODES // 2)
    flusher = threading.Thread(target=graph.flush_memtables)
    flusher.start()
    _apply(graph, NODES // 2 + 1, NODES // 2)
    flusher.join(timeout=60)
    assert not flusher.is_alive()
    graph.flush_memtables()
    assert graph.applied_index() == NODES + 1
    for node_id in (1, NODES // 2, NODES // 2 + 1, NODES):
        node = graph.node(node_id)
        assert node is not None and dict(node.properties) == {"i": node_id}
    graph.close()
    reopened = GraphStore(tmp_path / "graph", PlaintextCipher())
    assert reopened.applied_index() == NODES + 1
    reopened.close()


def test_a_flush_after_close_does_nothing(tmp_path: Path) -> None:
    graph = GraphStore(tmp_path / "graph", PlaintextCipher())
    _apply(graph, 1, 10)
    graph.close()
    graph.flush_memtables()  # the node's shutdown may close the store first: no error
