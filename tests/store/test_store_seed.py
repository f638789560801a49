"""Seeding a new member from a stream (a backup): the graph installed under the new store's
own keys, the log beginning with a snapshot of it; and checkpoints a crash left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from raft.types import ConfState, Entry, HardState
from store.crypto import IntegrityError, StreamKeys
from store.node_store import SEED_TERM, NodeStore
from store.snapshot import snapshot_chunks
from store.writeset import CreateIndex, CreateNode, CreateRelationship, WriteSet

OLD_KEK = bytes(range(32))
NEW_KEK = bytes(range(32, 64))
CONF = ConfState(voters=(1, 2, 3))


def _source(path: Path) -> NodeStore:
    store = NodeStore(path, OLD_KEK)
    ops = [CreateIndex("age", "P", ("age",))]
    ops += [CreateNode(i, ("P",), (("age", i % 5),)) for i in range(40)]
    ops += [CreateRelationship(i, "KNOWS", i, (i + 1) % 40, ()) for i in range(40)]
    store.graph.apply(WriteSet(tuple(ops)), 17, {b"keep/a": b"1", b"drop/b": b"2"})
    return store


def _backup(tmp_path: Path) -> tuple[list[bytes], str]:
    source = _source(tmp_path / "source")
    chunks = list(snapshot_chunks(source.graph, tmp_path / "work", chunk_bytes=512))
    dump = source.graph.canonical_dump()
    source.close()
    return chunks, dump


def test_a_seeded_store_holds_the_stream_under_its_own_keys_and_reopens(tmp_path: Path) -> None:
    chunks, source_dump = _backup(tmp_path)
    store = NodeStore(tmp_path / "new", NEW_KEK)
    snapshot = store.seed(
        chunks, CONF, keys=StreamKeys(OLD_KEK), keep_meta=lambda key: key.startswith(b"keep/")
    )
    assert (snapshot.metadata.index, snapshot.metadata.term) == (17, SEED_TERM)
    assert snapshot.metadata.conf_state == CONF
    assert store.log.hard_state() == HardState(term=SEED_TERM, commit=17)
    assert store.graph.applied_index() == 17
    assert store.graph.app_meta(b"keep/a") == b"1"
    assert store.graph.app_meta(b"drop/b") is None
    assert list(store.graph.node_ids_by_property("P", "age", 3)) == [3, 8, 13, 18, 23, 28, 33, 38]
    dump = store.graph.canonical_dump()
    assert dump == source_dump
    store.close()

    store = NodeStore(tmp_path / "new", NEW_KEK)
    assert store.log.snapshot() == snapshot
    assert (store.log.first_index(), store.log.last_index()) == (18, 17)
    assert store.graph.canonical_dump() == dump
    # The log's snapshot file is sealed under the new KEK: another member of the new
    # cluster installs it with its own keyring, as it would from a leader.
    other = NodeStore(tmp_path / "other", NEW_KEK)
    assert other.install_snapshot_file(store.snapshot_path(snapshot)) == 17
    assert other.graph.canonical_dump() == dump
    other.close()
    store.log.save([Entry(term=2, index=18, data=b"next")])
    assert store.log.last_index() == 18
    store.close()


def test_seeding_needs_the_key_that_sealed_the_stream(tmp_path: Path) -> None:
    chunks, _ = _backup(tmp_path)
    store = NodeStore(tmp_path / "new", NEW_KEK)
    with pytest.raises(IntegrityError, match="wrong key-encryption key"):
        store.seed(chunks, CONF)  # opened with the new KEK: the stream's key does not unwrap
    store.close()


def test_only_a_new_store_is_seeded(tmp_path: Path) -> None:
    chunks, _ = _backup(tmp_path)
    store = NodeStore(tmp_path / "used", OLD_KEK)
    store.log.save([Entry(term=1, index=1, data=b"x")])
    with pytest.raises(ValueError, match="only a new store is seeded"):
        store.seed(chunks, CONF)
    store.close()
    store = NodeStore(tmp_path / "applied", OLD_KEK)
    store.graph.apply(WriteSet(), 3)
    with pytest.raises(ValueError, match="only a new store is seeded"):
        store.seed(chunks, CONF)
    store.close()


def test_a_checkpoint_left_by_a_dead_process_is_removed_at_open(tmp_path: Path) -> None:
    store = _source(tmp_path / "node")
    pinned = store.checkpoint()  # the process dies while streaming it: never closed
    assert store._snapshot_streaming()
    pinned._view.close()
    store.close()
    store = NodeStore(tmp_path / "node", OLD_KEK)
    assert not store._snapshot_streaming()
    assert not list((tmp_path / "node" / "snapshots" / "work").iterdir())
    store.close()
