"""Graph snapshots (``GraphStore.snapshot``): a snapshot answers every read as the store was
when it was taken, while commits go on; nested scans and point reads share its iterators;
it uses the node cache only where that holds what it saw; it cannot be taken of a half
installed store, and one taken before an installation still reads the old graph."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import pytest
from graph_strategies import apply_to_model, views_agree, write_sets
from hypothesis import HealthCheck, given, settings
from test_store_node_cache import CountingCipher

from store.crypto import Keyring, PlaintextCipher
from store.graph import GraphStore, StoreNotReadyError, WriteSetError
from store.memory import MemoryGraph
from store.view import Direction
from store.writeset import (
    AddLabel,
    CreateIndex,
    CreateNode,
    CreateRelationship,
    DeleteNode,
    DeleteRelationship,
    SetNodeProperty,
    WriteSet,
)

KEK = bytes(range(32))


def _ws(*operations: object) -> WriteSet:
    return WriteSet(tuple(operations))  # type: ignore[arg-type]


def _people(graph: GraphStore, count: int = 6) -> None:
    graph.apply(
        _ws(
            CreateIndex("person_id", "Person", ("id",)),
            *(CreateNode(n, ("Person",), (("id", n),)) for n in range(count)),
            *(CreateRelationship(n, "KNOWS", n, (n + 1) % count, ()) for n in range(count)),
        ),
        1,
    )


def test_a_snapshot_reads_the_graph_as_it_was(tmp_path: Path) -> None:
    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    _people(graph)
    before = graph.canonical_dump()
    with graph.snapshot() as snapshot:
        graph.apply(
            _ws(
                CreateNode(10, ("Person", "New"), (("id", 10),)),
                SetNodeProperty(1, "id", 100),
                AddLabel(2, "Admin"),
                DeleteRelationship(2),
                DeleteRelationship(3),
                DeleteNode(3),
                CreateRelationship(10, "LIKES", 10, 0, ()),
                CreateIndex("admin_id", "Admin", ("id",)),
            ),
            2,
        )
        assert snapshot.canonical_dump() == before
        assert snapshot.applied_index() == 1
        assert list(snapshot.node_ids_by_property("Person", "id", 1)) == [1]
        assert list(snapshot.node_ids_by_property("Person", "id", 100)) == []
        assert snapshot.labels() == ["Person"]
        assert snapshot.count_nodes("Person") == 6
        assert not snapshot.has_index("Admin", "id")
        ends = [(r.start, r.end) for r in snapshot.relationship_ends(3, Direction.BOTH)]
        assert ends == [(2, 3), (3, 4)]
        assert graph.canonical_dump() != before
        assert list(graph.node_ids_by_property("Person", "id", 100)) == [1]
    with pytest.raises(ValueError, match="closed"):
        snapshot.node(1)


def test_nested_scans_and_point_reads_share_one_iterator_per_family(tmp_path: Path) -> None:
    graph = GraphStore(tmp_path / "graph", PlaintextCipher())
    _people(graph, 8)
    with graph.snapshot() as snapshot:
        pairs = []
        index = 2
        for a in snapshot.node_ids():
            for b in snapshot.node_ids_by_label("Person"):
                # Point reads on the scanned families between every step, and commits
                # that delete what the scans have still to reach.
                assert snapshot.node(b) is not None
                assert snapshot.node_has_label(a, "Person")
                if a == 0 and b == 0:
                    graph.apply(
                        _ws(DeleteRelationship(6), DeleteRelationship(7), DeleteNode(7)), index
                    )
                    index += 1
                pairs.append((a, b))
            neighbours = [r.end for r in snapshot.relationships(a, Direction.OUTGOING)]
            assert neighbours == [(a + 1) % 8]
        assert pairs == [(a, b) for a in range(8) for b in range(8)]
    assert list(graph.node_ids()) == list(range(7))


def test_the_snapshot_uses_the_node_cache_only_where_it_holds_what_it_saw(
    tmp_path: Path,
) -> None:
    cipher = CountingCipher(Keyring(tmp_path, KEK))
    graph = GraphStore(tmp_path / "graph", cipher)  # type: ignore[arg-type]
    _people(graph)
    assert graph.node(1) is not None and graph.node(2) is not None  # cached
    snapshot = graph.snapshot()
    graph.apply(_ws(SetNodeProperty(2, "id", 20)), 2)
    opens = cipher.node_opens
    record = snapshot.node(1)  # unchanged since: from the cache
    assert record is not None and record.properties["id"] == 1
    assert cipher.node_opens == opens
    assert graph.node(2).properties["id"] == 20  # type: ignore[union-attr]  # cached anew
    record = snapshot.node(2)  # the cached record is newer than the snapshot
    assert record is not None and record.properties["id"] == 2
    assert cipher.node_opens == opens + 2
    snapshot.close()


def test_a_record_read_between_a_commit_and_its_cache_update_is_not_older_than_it_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A live read that comes after a commit wrote RocksDB but before the commit dropped the
    # node's cached record reads the new record; an older snapshot must not take it.
    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    _people(graph)
    snapshot = graph.snapshot()
    seen: dict[str, Any] = {}
    forget = graph._forget_nodes

    def read_in_between(*args: Any, **kwargs: Any) -> None:
        if "live" not in seen and args:
            seen["live"] = graph.node(1)
            seen["snapshot"] = snapshot.node(1)
        forget(*args, **kwargs)

    monkeypatch.setattr(graph, "_forget_nodes", read_in_between)
    graph.apply(_ws(SetNodeProperty(1, "id", 10)), 2)
    assert seen["live"].properties["id"] == 10
    assert seen["snapshot"].properties["id"] == 1
    assert snapshot.node(1).properties["id"] == 1  # type: ignore[union-attr]
    snapshot.close()


def test_installation_and_snapshots(tmp_path: Path) -> None:
    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    _people(graph)
    before = graph.canonical_dump()
    with graph.snapshot() as snapshot:
        graph.begin_install()
        with pytest.raises(StoreNotReadyError):
            graph.snapshot()
        assert snapshot.canonical_dump() == before  # the emptied store's old content
        graph.install_operations([CreateNode(1, ("Other",), ())])
        graph.finish_install(5, (2, 0))
        assert snapshot.canonical_dump() == before
    with graph.snapshot() as snapshot:
        assert list(snapshot.node_ids()) == [1]
        assert snapshot.applied_index() == 5


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(write_sets)
def test_snapshots_agree_with_the_model_as_it_was(
    tmp_path_factory: pytest.TempPathFactory, sets: list[WriteSet]
) -> None:
    path = tmp_path_factory.mktemp("graph")
    graph = GraphStore(path / "graph", Keyring(path, KEK))
    model = MemoryGraph()
    held: list[tuple[Any, MemoryGraph]] = []  # snapshots held across later commits
    for index, write_set in enumerate(sets, start=1):
        held.append((graph.snapshot(), copy.deepcopy(model)))
        model, outcome = apply_to_model(model, write_set)
        if outcome == "ok":
            graph.apply(write_set, index)
        else:
            with pytest.raises(WriteSetError):
                graph.apply(write_set, index)
        graph.node(index % 8)  # a live read: the cache gets newer records
    for snapshot, then in held:
        assert snapshot.canonical_dump() == then.canonical_dump()
        views_agree(snapshot, then)
        snapshot.close()
    graph.close()


def test_snapshots_taken_beside_a_writing_thread_each_see_one_moment(tmp_path: Path) -> None:
    # A writer moves value between nodes (the total never changes) and reads live, so the
    # node cache keeps getting newer records; every snapshot taken meanwhile must add up.
    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    nodes, total = 20, 2000
    graph.apply(_ws(*(CreateNode(n, ("A",), (("v", total // nodes),)) for n in range(nodes))), 1)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            values = {n: total // nodes for n in range(nodes)}
            for index in range(2, 402):
                a, b = index % nodes, (index * 7 + 3) % nodes
                if a == b:
                    continue
                values[a] -= 1
                values[b] += 1
                operations: list[object] = [
                    SetNodeProperty(a, "v", values[a]),
                    SetNodeProperty(b, "v", values[b]),
                ]
                if index % 3:
                    operations.append(CreateNode(1000 + index, ("B",), ()))
                graph.apply(_ws(*operations), index)
                graph.node(a)
                graph.node(b)
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    applied = 0
    checked = 0
    while writer.is_alive() or checked < 5:
        with graph.snapshot() as snapshot:
            records = [snapshot.node(n) for n in range(nodes)]
            assert sum(r.properties["v"] for r in records if r is not None) == total
            assert snapshot.count_nodes("B") == len(list(snapshot.node_ids_by_label("B")))
            assert snapshot.count_nodes() == len(list(snapshot.node_ids()))
            assert snapshot.applied_index() >= applied
            applied = snapshot.applied_index()
        checked += 1
    writer.join()
    assert not errors
    with graph.snapshot() as snapshot:
        assert snapshot.applied_index() == 401
    graph.close()


def test_closing_the_store_closes_its_snapshots(tmp_path: Path) -> None:
    graph = GraphStore(tmp_path / "graph", PlaintextCipher())
    _people(graph)
    snapshot = graph.snapshot()
    assert snapshot.node(1) is not None
    graph.close()
    with pytest.raises(ValueError, match="closed"):
        list(snapshot.node_ids())
