"""The Raft core over the durable store: a node persists its Readys in the DurableLog,
applies committed write sets to the graph, restarts from disk and carries on."""

from __future__ import annotations

from pathlib import Path

from raft.core import Config
from raft.rawnode import RawNode
from raft.types import ConfState, EntryType, Snapshot, SnapshotMetadata, StateType
from store.codec import decode_write_set, encode_write_set
from store.node_store import NodeStore
from store.writeset import CreateNode, SetNodeProperty, WriteSet

KEK = bytes(range(32))
MAX_ROUNDS = 1_000


def _start(store: NodeStore) -> RawNode:
    applied = max(store.graph.applied_index(), store.log.snapshot().metadata.index)
    return RawNode(Config(id=1, storage=store.log, applied=applied))


def _drive(raw: RawNode, store: NodeStore) -> None:
    """Handle Readys as rawnode's contract says: persist, (send), apply, advance."""
    for _ in range(MAX_ROUNDS):
        if not raw.has_ready():
            return
        ready = raw.ready()
        if ready.snapshot is not None:
            store.log.apply_snapshot(ready.snapshot)
        store.log.save(ready.entries, ready.hard_state, sync=ready.must_sync)
        for entry in ready.committed_entries:
            if entry.type is EntryType.NORMAL:
                write_set = decode_write_set(entry.data) if entry.data else WriteSet()
                store.graph.apply(write_set, entry.index)
        raw.advance(ready)
    raise AssertionError("the node never ran out of Readys")


def _lead(raw: RawNode, store: NodeStore) -> None:
    raw.campaign()
    _drive(raw, store)
    assert raw.raft.state is StateType.LEADER


def _propose(raw: RawNode, store: NodeStore, first: int, count: int) -> None:
    for node_id in range(first, first + count):
        ops = (CreateNode(node_id, ("N",), (("i", node_id),)),)
        if node_id > 0:
            ops += (SetNodeProperty(node_id - 1, "next", node_id),)
        raw.propose(encode_write_set(WriteSet(ops)))
        _drive(raw, store)


def test_a_node_restarts_from_its_durable_log_and_graph(tmp_path: Path) -> None:
    store = NodeStore(tmp_path, KEK)
    bootstrap = SnapshotMetadata(conf_state=ConfState(voters=(1,)), index=1, term=1)
    store.log.apply_snapshot(Snapshot(metadata=bootstrap))
    raw = _start(store)
    _lead(raw, store)
    _propose(raw, store, 0, 30)
    assert store.graph.count_nodes() == 30
    term, commit = store.log.hard_state().term, store.log.hard_state().commit
    store.close()

    store = NodeStore(tmp_path, KEK)
    assert store.log.hard_state().term == term and store.log.hard_state().commit == commit
    raw = _start(store)
    _lead(raw, store)
    assert raw.raft.term > term
    _propose(raw, store, 30, 20)
    assert store.graph.count_nodes() == 50
    snapshot = store.take_snapshot(ConfState(voters=(1,)))
    store.log.compact(snapshot.metadata.index)
    store.close()

    store = NodeStore(tmp_path, KEK)
    raw = _start(store)
    _lead(raw, store)
    _propose(raw, store, 50, 5)
    assert [n.properties["i"] for n in map(store.graph.node, range(55)) if n] == list(range(55))
    assert store.graph.node(53).properties["next"] == 54  # type: ignore[union-attr]
    store.close()
