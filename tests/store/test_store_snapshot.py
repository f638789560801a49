"""Snapshots: a stream taken from one store and installed on another gives the same graph;
a damaged, reordered, truncated or foreign stream is refused."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from graph_strategies import apply_to_model, write_sets
from hypothesis import HealthCheck, given, settings

from store.crypto import IntegrityError, Keyring
from store.graph import GraphStore, StoreNotReadyError
from store.memory import MemoryGraph, WriteSetError
from store.snapshot import (
    SnapshotError,
    SnapshotInstaller,
    install_chunks,
    read_snapshot_file,
    snapshot_chunks,
    write_snapshot_file,
)
from store.writeset import (
    CreateIndex,
    CreateNode,
    CreateRelationship,
    CreateUniqueConstraint,
    WriteSet,
)

KEK = bytes(range(32))


def _graph(path: Path, kek: bytes = KEK) -> GraphStore:
    return GraphStore(path / "graph", Keyring(path, kek))


def _populated(path: Path, nodes: int = 300) -> GraphStore:
    graph = _graph(path)
    ops = [
        CreateUniqueConstraint("u", "P", ("name",)),
        CreateIndex("i", "P", ("age",)),
        CreateIndex("r", "R", ("w",), on_relationships=True),
    ]
    ops += [CreateNode(i, ("P",), (("name", f"n{i}"), ("age", i % 7))) for i in range(nodes)]
    ops += [CreateRelationship(i, "R", i, (i * 7) % nodes, (("w", i),)) for i in range(nodes)]
    graph.apply(WriteSet(tuple(ops)), 42)
    return graph


def test_installed_snapshot_has_the_same_dump_and_working_indexes(tmp_path: Path) -> None:
    source = _populated(tmp_path / "a")
    chunks = list(snapshot_chunks(source, tmp_path / "a" / "snapshots", chunk_bytes=2048))
    assert len(chunks) > 3
    target = _graph(tmp_path / "b")
    target.apply(WriteSet((CreateNode(999, ("Old",), ()),)), 7)
    assert install_chunks(target, chunks) == 42
    assert target.canonical_dump() == source.canonical_dump()
    assert target.applied_index() == 42
    assert list(target.node_ids_by_property("P", "age", 3)) == [i for i in range(300) if i % 7 == 3]
    assert list(target.relationship_ids_by_property("R", "w", 17)) == [17]
    assert list(target.relationship_ids_by_type("R")) == list(range(300))
    with pytest.raises(WriteSetError):
        target.apply(WriteSet((CreateNode(1000, ("P",), (("name", "n5"),)),)), 43)
    assert not list((tmp_path / "a" / "snapshots").iterdir()), "checkpoint left behind"


def test_snapshot_file_round_trip(tmp_path: Path) -> None:
    source = _populated(tmp_path / "a", nodes=50)
    path = tmp_path / "a" / "snap.qsnap"
    write_snapshot_file(snapshot_chunks(source, tmp_path / "a" / "work"), path)
    target = _graph(tmp_path / "b")
    install_chunks(target, read_snapshot_file(path))
    assert target.canonical_dump() == source.canonical_dump()


def _chunks(tmp_path: Path) -> list[bytes]:
    source = _populated(tmp_path / "a", nodes=100)
    return list(snapshot_chunks(source, tmp_path / "a" / "w", chunk_bytes=1024))


def test_flipped_byte_in_a_chunk_is_refused(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path)
    damaged = bytearray(chunks[1])
    damaged[-5] ^= 0x40
    with pytest.raises(SnapshotError, match="chunk 1"):
        install_chunks(_graph(tmp_path / "b"), [chunks[0], bytes(damaged), *chunks[2:]])


def test_reordered_or_truncated_streams_are_refused(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path)
    with pytest.raises(SnapshotError, match="out of order"):
        install_chunks(_graph(tmp_path / "b"), [chunks[0], chunks[2]])
    with pytest.raises(SnapshotError, match="before its final chunk"):
        install_chunks(_graph(tmp_path / "c"), chunks[:-1])


def test_interrupted_install_leaves_the_store_marked_not_ready(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path)
    target = _graph(tmp_path / "b")
    installer = SnapshotInstaller(target)
    installer.feed(chunks[0])
    target.close()
    target = _graph(tmp_path / "b")
    assert target.installing()
    with pytest.raises(StoreNotReadyError):
        target.apply(WriteSet((CreateNode(1, (), ()),)), 1)
    install_chunks(target, chunks)
    assert not target.installing()


def test_a_stream_needs_the_same_key_encryption_key(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path)
    with pytest.raises(IntegrityError, match="wrong key-encryption key"):
        install_chunks(_graph(tmp_path / "b", kek=bytes(32)), chunks)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(write_sets, write_sets)
def test_snapshot_and_install_gives_equal_dumps(
    tmp_path_factory: pytest.TempPathFactory, before: list[WriteSet], after: list[WriteSet]
) -> None:
    path = tmp_path_factory.mktemp("snap")
    source, target = _graph(path / "a"), _graph(path / "b")
    model = MemoryGraph()
    index = 0
    for write_set in before:
        index += 1
        model, outcome = apply_to_model(model, write_set)
        for store in (source, target):
            try:
                store.apply(write_set, index)
            except WriteSetError:
                assert outcome != "ok"
    # The target may hold anything: installing replaces it entirely.
    for write_set in after:
        index += 1
        model, _ = apply_to_model(model, write_set)
        with contextlib.suppress(WriteSetError):
            source.apply(write_set, index)
    install_chunks(target, snapshot_chunks(source, path / "work", chunk_bytes=256))
    assert target.canonical_dump() == source.canonical_dump() == model.canonical_dump()
    assert target.applied_index() == source.applied_index()
    source.close()
    target.close()


def test_snapshots_carry_the_application_records(tmp_path: Path) -> None:
    source = _graph(tmp_path / "a")
    records = {f"client/{i}".encode(): bytes([i % 256]) * 40 for i in range(2500)}
    source.apply(WriteSet((CreateNode(1, ("A",), ()),)), 5, records)
    target = _graph(tmp_path / "b")
    target.apply(WriteSet(), 3, {b"client/old": b"gone after install"})
    assert install_chunks(target, snapshot_chunks(source, tmp_path / "w", chunk_bytes=4096)) == 5
    assert dict(target.app_meta_items()) == records
    assert target.canonical_dump() == source.canonical_dump()
