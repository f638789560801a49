"""The graph on RocksDB: the view, write sets, indexes, constraints, atomicity, and
equivalence with the reference MemoryGraph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from graph_strategies import apply_to_model, views_agree, write_sets
from hypothesis import HealthCheck, given, settings

from store.crypto import IntegrityError, Keyring, PlaintextCipher
from store.graph import ConstraintViolationError, GraphStore
from store.memory import MemoryGraph, WriteSetError
from store.values import Date, DateTime, Duration, LocalDateTime, LocalTime, Point, Time
from store.view import Direction, IndexNotFoundError, RelationshipEnds, RelationshipRecord
from store.writeset import (
    AddLabel,
    CreateIndex,
    CreateNode,
    CreateRelationship,
    CreateUniqueConstraint,
    DeleteNode,
    DeleteRelationship,
    DropIndex,
    RemoveLabel,
    SetNodeProperty,
    SetRelationshipProperty,
    WriteSet,
)

KEK = bytes(range(32))


def _store(path: Path) -> GraphStore:
    return GraphStore(path / "graph", Keyring(path, KEK))


def _ws(*operations: object) -> WriteSet:
    return WriteSet(tuple(operations))  # type: ignore[arg-type]


class MemoryGraphAt(MemoryGraph):
    """The reference model with the store's ``apply(write_set, index)`` signature."""

    def __init__(self, _path: Path) -> None:
        super().__init__()

    def apply(self, write_set: WriteSet, index: int = 0) -> None:  # type: ignore[override]
        super().apply(write_set)


def test_nodes_relationships_and_adjacency(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    graph.apply(
        _ws(
            CreateNode(1, ("Person",), (("name", "Ada"),)),
            CreateNode(2, ("Person", "Admin"), (("name", "Bob"), ("age", 40))),
            CreateRelationship(10, "KNOWS", 1, 2, (("since", 1999),)),
            CreateRelationship(11, "LIKES", 2, 2, ()),
        ),
        index=1,
    )
    assert graph.node(1) is not None and graph.node(1).properties == {"name": "Ada"}  # type: ignore[union-attr]
    assert list(graph.node_ids_by_label("Person")) == [1, 2]
    assert [r.id for r in graph.relationships(2, Direction.BOTH)] == [10, 11]
    assert [r.id for r in graph.relationships(2, Direction.INCOMING, ["KNOWS"])] == [10]
    assert list(graph.relationships(1, Direction.INCOMING)) == []
    assert graph.relationship(10) == RelationshipRecord(10, "KNOWS", 1, 2, {"since": 1999})
    assert graph.count_nodes("Admin") == 1 and graph.count_relationships() == 2
    assert graph.labels() == ["Admin", "Person"]
    assert graph.property_keys() == ["age", "name", "since"]
    assert graph.next_ids() == (3, 12)
    assert graph.applied_index() == 1


def test_expanding_by_ends_reads_no_relationship_record(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    graph.apply(
        _ws(
            CreateNode(1, (), ()),
            CreateNode(2, (), ()),
            CreateRelationship(10, "KNOWS", 1, 2, (("since", 1999),)),
            CreateRelationship(11, "LIKES", 2, 1, ()),
            CreateRelationship(12, "KNOWS", 1, 1, ()),
        ),
        1,
    )
    expected = {
        Direction.OUTGOING: [
            RelationshipEnds(10, "KNOWS", 1, 2),
            RelationshipEnds(12, "KNOWS", 1, 1),
        ],
        Direction.INCOMING: [
            RelationshipEnds(11, "LIKES", 2, 1),
            RelationshipEnds(12, "KNOWS", 1, 1),
        ],
        Direction.BOTH: [
            RelationshipEnds(10, "KNOWS", 1, 2),
            RelationshipEnds(11, "LIKES", 2, 1),
            RelationshipEnds(12, "KNOWS", 1, 1),
        ],
    }
    for direction, ends in expected.items():
        assert list(graph.relationship_ends(1, direction)) == ends
    assert list(graph.relationship_ends(1, Direction.BOTH, ["LIKES"])) == [
        RelationshipEnds(11, "LIKES", 2, 1)
    ]
    # Damage every relationship record: reading one now fails, expanding by ends does not.
    records = graph.db.get_column_family("graph")
    for key in [k for k in records.keys(from_key=b"r") if k.startswith(b"r")]:
        sealed = bytearray(records[key])
        sealed[-1] ^= 0x01
        records[key] = bytes(sealed)
    with pytest.raises(IntegrityError):
        list(graph.relationships(1, Direction.BOTH))
    for direction, ends in expected.items():
        assert list(graph.relationship_ends(1, direction)) == ends


def test_every_value_type_round_trips(tmp_path: Path) -> None:
    values = [
        None,
        True,
        -(1 << 63),
        (1 << 63) - 1,
        -0.0,
        float("inf"),
        "ünïcode",
        b"\x00\xff",
        [1, 2],
        ["a"],
        {"nested": [1, {"x": None}]},
        Date(-1),
        LocalTime(5),
        Time(5, -3600),
        LocalDateTime(1, 2),
        DateTime(1, 2, 3600, "Europe/Stockholm"),
        DateTime(1, 2, 0, None),
        Duration(1, 2, 3, 4),
        Point(4326, 1.5, 2.5),
        Point(9157, 1.0, 2.0, 3.0),
    ]
    graph = _store(tmp_path)
    props = tuple((f"p{i}", value) for i, value in enumerate(values))
    graph.apply(_ws(CreateNode(0, (), props)), 1)
    graph.close()
    graph = _store(tmp_path)
    record = graph.node(0)
    assert record is not None
    assert [record.properties[f"p{i}"] for i in range(len(values))] == values


def test_index_seek_uses_cypher_equality(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    with pytest.raises(IndexNotFoundError):
        list(graph.node_ids_by_property("P", "k", 1))
    graph.apply(
        _ws(
            CreateNode(1, ("P",), (("k", 1),)),
            CreateNode(2, ("P",), (("k", 1.0),)),
            CreateNode(3, ("P",), (("k", True),)),
            CreateNode(4, ("Q",), (("k", 1),)),
            CreateIndex("by_k", "P", ("k",)),
        ),
        1,
    )
    assert list(graph.node_ids_by_property("P", "k", 1)) == [1, 2]
    assert list(graph.node_ids_by_property("P", "k", True)) == [3]
    graph.apply(_ws(SetNodeProperty(1, "k", 2), RemoveLabel(2, "P"), AddLabel(4, "P")), 2)
    assert list(graph.node_ids_by_property("P", "k", 1)) == [4]
    assert list(graph.node_ids_by_property("P", "k", 2.0)) == [1]


@pytest.mark.parametrize("make", [_store, lambda path: MemoryGraphAt(path)])
def test_relationship_seeks_by_type_and_by_indexed_property(
    tmp_path: Path, make: Callable[[Path], GraphStore]
) -> None:
    graph = make(tmp_path)
    graph.apply(
        _ws(
            CreateNode(1, ("P",), ()),
            CreateNode(2, ("P",), ()),
            CreateRelationship(10, "KNOWS", 1, 2, (("since", 1999),)),
            CreateRelationship(11, "KNOWS", 2, 1, (("since", 1999.0),)),
            CreateRelationship(12, "LIKES", 1, 1, (("since", 1999),)),
            CreateRelationship(13, "KNOWS", 1, 1, (("since", True),)),
            CreateRelationship(14, "KNOWS", 2, 2, ()),
        ),
        1,
    )
    assert list(graph.relationship_ids_by_type("KNOWS")) == [10, 11, 13, 14]
    assert list(graph.relationship_ids_by_type("LIKES")) == [12]
    assert list(graph.relationship_ids_by_type("NONE")) == []
    assert not graph.has_relationship_index("KNOWS", "since")
    with pytest.raises(IndexNotFoundError):
        list(graph.relationship_ids_by_property("KNOWS", "since", 1999))
    # A node index on the same names is not a relationship index, nor the other way round.
    graph.apply(_ws(CreateIndex("nodes", "KNOWS", ("since",))), 2)
    assert not graph.has_relationship_index("KNOWS", "since")
    graph.apply(_ws(CreateIndex("rels", "KNOWS", ("since",), on_relationships=True)), 3)
    assert graph.has_relationship_index("KNOWS", "since")
    assert not graph.has_index("P", "since")
    # Built over the relationships that existed; Cypher equality (1999 = 1999.0, not true).
    assert list(graph.relationship_ids_by_property("KNOWS", "since", 1999)) == [10, 11]
    assert list(graph.relationship_ids_by_property("KNOWS", "since", True)) == [13]
    assert list(graph.relationship_ids_by_property("KNOWS", "since", None)) == []
    # Kept in step with property changes, creations and deletions.
    graph.apply(
        _ws(
            SetRelationshipProperty(10, "since", 2000),
            SetRelationshipProperty(14, "since", 1999),
            CreateRelationship(15, "KNOWS", 1, 2, (("since", 1999),)),
            DeleteRelationship(11),
        ),
        4,
    )
    assert list(graph.relationship_ids_by_property("KNOWS", "since", 1999)) == [14, 15]
    assert list(graph.relationship_ids_by_property("KNOWS", "since", 2000)) == [10]
    assert list(graph.relationship_ids_by_type("KNOWS")) == [10, 13, 14, 15]
    graph.apply(_ws(DropIndex("rels")), 5)
    with pytest.raises(IndexNotFoundError):
        list(graph.relationship_ids_by_property("KNOWS", "since", 1999))


def test_dropping_a_relationship_index_removes_its_entries(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    graph.apply(
        _ws(
            CreateNode(1, (), ()),
            CreateRelationship(1, "R", 1, 1, (("k", 1),)),
            CreateIndex("r", "R", ("k",), on_relationships=True),
            CreateIndex("n", "A", ("k",)),
            CreateNode(2, ("A",), (("k", 1),)),
        ),
        1,
    )
    index_family = graph.db.get_column_family("index")
    assert len(list(index_family.keys())) == 2
    graph.apply(_ws(DropIndex("r")), 2)
    assert len(list(index_family.keys())) == 1, "the relationship entries stayed"
    assert list(graph.node_ids_by_property("A", "k", 1)) == [2]


def test_uniqueness_violation_applies_nothing_but_consumes_the_index(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    graph.apply(
        _ws(CreateUniqueConstraint("u", "P", ("name",)), CreateNode(1, ("P",), (("name", "a"),))),
        1,
    )
    before = graph.canonical_dump()
    with pytest.raises(ConstraintViolationError) as caught:
        graph.apply(_ws(CreateNode(2, (), (("name", "a"),)), AddLabel(2, "P")), 2)
    assert caught.value.status_code == "Neo.ClientError.Schema.ConstraintValidationFailed"
    assert graph.canonical_dump() == before
    assert graph.applied_index() == 2
    # Temporarily equal within one write set is fine: checked at the end.
    graph.apply(_ws(CreateNode(2, ("P",), (("name", "a"),)), SetNodeProperty(1, "name", "b")), 3)
    with pytest.raises(ConstraintViolationError):
        graph.apply(
            _ws(
                CreateUniqueConstraint("u2", "P", ("x",)),
                SetNodeProperty(2, "x", 1),
                SetNodeProperty(1, "x", 1.0),
            ),
            4,
        )


def test_invalid_write_set_is_all_or_nothing(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    graph.apply(_ws(CreateNode(1, ("A",), ())), 1)
    before = graph.canonical_dump()
    with pytest.raises(WriteSetError):
        graph.apply(_ws(CreateNode(2, ("A",), ()), DeleteNode(99)), 2)
    assert graph.canonical_dump() == before
    with pytest.raises(WriteSetError, match="still has relationships"):
        graph.apply(_ws(CreateRelationship(1, "R", 1, 1, ()), DeleteNode(1)), 3)
    graph.apply(_ws(CreateRelationship(1, "R", 1, 1, ()), DeleteRelationship(1), DeleteNode(1)), 4)
    assert graph.count_nodes() == 0 and graph.labels() == []


def test_applying_an_old_index_again_changes_nothing(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    graph.apply(_ws(CreateNode(1, (), ())), 5)
    graph.apply(_ws(CreateNode(2, (), ())), 5)
    graph.apply(_ws(CreateNode(3, (), ())), 4)
    assert list(graph.node_ids()) == [1]


def test_reencryption_moves_every_value_to_the_new_key(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    graph = GraphStore(tmp_path / "graph", ring)
    graph.apply(_ws(*(CreateNode(i, ("A",), (("k", i),)) for i in range(50))), 1)
    dump = graph.canonical_dump()
    ring.rotate()
    graph.apply(_ws(CreateNode(100, ("B",), ())), 2)
    total, calls = 0, 0
    while not (progress := graph.reencrypt(max_values=20)).complete:
        assert progress.resealed <= 20
        total += progress.resealed
        calls += 1
        assert calls < 100
    assert total > 50
    graph.close()
    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    for family in ("graph", "meta"):
        handle = graph.db.get_column_family(family)
        assert {graph.cipher.key_version(v) for v in handle.values()} == {2}
    assert graph.canonical_dump()[:50] == dump[:50]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(write_sets)
def test_two_stores_and_the_memory_graph_agree(
    tmp_path_factory: pytest.TempPathFactory, sets: list[WriteSet]
) -> None:
    path = tmp_path_factory.mktemp("graph")
    # Two stores with different keys (one not encrypting at all): same logical content.
    stores = [
        GraphStore(path / "encrypted", Keyring(path, KEK)),
        GraphStore(path / "plaintext", PlaintextCipher()),
    ]
    model = MemoryGraph()
    for index, write_set in enumerate(sets, start=1):
        model, outcome = apply_to_model(model, write_set)
        for store in stores:
            if outcome == "ok":
                store.apply(write_set, index)
            else:
                expected = ConstraintViolationError if outcome == "violation" else WriteSetError
                with pytest.raises(expected):
                    store.apply(write_set, index)
        assert stores[0].canonical_dump() == stores[1].canonical_dump() == model.canonical_dump()
    for store in stores:
        views_agree(store, model)
        store.close()


def test_ids_outside_the_64_bit_range_are_refused(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    with pytest.raises(WriteSetError, match="outside"):
        graph.apply(_ws(CreateNode(-1, (), ())), 1)
    with pytest.raises(WriteSetError, match="outside"):
        graph.apply(_ws(CreateNode(1 << 63, (), ())), 2)
    assert graph.count_nodes() == 0


def test_application_records_are_written_in_the_apply_batch_even_when_refused(
    tmp_path: Path,
) -> None:
    graph = _store(tmp_path)
    graph.apply(_ws(CreateUniqueConstraint("u", "P", ("k",))), 1, {b"dedup/a": b"1"})
    graph.apply(_ws(CreateNode(1, ("P",), (("k", 1),))), 2, {b"dedup/a": b"2", b"x": b"y"})
    with pytest.raises(ConstraintViolationError):
        graph.apply(_ws(CreateNode(2, ("P",), (("k", 1),))), 3, {b"dedup/a": b"3"})
    assert graph.applied_index() == 3 and graph.node(2) is None
    assert graph.app_meta(b"dedup/a") == b"3"
    graph.apply(_ws(), 3, {b"dedup/a": b"stale"})  # a replayed index changes nothing
    graph.apply(_ws(), 4, {b"x": None})
    assert graph.app_meta(b"dedup/a") == b"3" and graph.app_meta(b"x") is None
    graph.close()
    reopened = _store(tmp_path)
    assert list(reopened.app_meta_items()) == [(b"dedup/a", b"3")]
    assert [row[0] for row in reopened.canonical_dump()].count("node") == 1
    with pytest.raises(ValueError):
        reopened.apply(_ws(), 5, {b"": b"empty key"})


def test_refused_meta_replaces_meta_when_the_write_set_is_refused(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    graph.apply(
        _ws(CreateUniqueConstraint("u", "P", ("k",)), CreateNode(1, ("P",), (("k", 1),))), 1
    )
    with pytest.raises(ConstraintViolationError):
        graph.apply(
            _ws(CreateNode(2, ("P",), (("k", 1),))), 2, {b"last": b"2"}, refused_meta={b"no": b"2"}
        )
    assert graph.app_meta(b"last") is None and graph.app_meta(b"no") == b"2"
    graph.apply(_ws(CreateNode(3, (), ())), 3, {b"last": b"3"}, refused_meta={b"no": b"3"})
    assert graph.app_meta(b"last") == b"3" and graph.app_meta(b"no") == b"2"


def test_a_store_in_the_older_key_layout_is_refused_not_misread(tmp_path: Path) -> None:
    graph = _store(tmp_path)
    graph.apply(_ws(CreateIndex("i", "A", ("k",)), CreateNode(1, ("A",), (("k", 1),))), 1)
    graph.db.get_column_family("meta").delete(b"index/version")  # as the old layout had it
    graph.close()
    with pytest.raises(IntegrityError, match="older key layout"):
        _store(tmp_path)
