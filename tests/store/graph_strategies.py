"""Shared by the store's property tests: random write sets, and how to compare stores."""

from __future__ import annotations

import copy

from hypothesis import strategies as st

from store.memory import MemoryGraph, WriteSetError, values_equal
from store.values import Date, DateTime, Duration, LocalTime, Point, Value
from store.view import Direction, GraphView
from store.writeset import (
    AddLabel,
    CreateIndex,
    CreateNode,
    CreateRelationship,
    CreateUniqueConstraint,
    DeleteNode,
    DeleteRelationship,
    DropConstraint,
    DropIndex,
    Operation,
    RemoveLabel,
    SetNodeProperty,
    SetRelationshipProperty,
    WriteSet,
)

LABELS = ("A", "B", "Person")
TYPES = ("R", "KNOWS")
KEYS = ("k", "name", "n")
NODE_IDS = st.integers(0, 7)
REL_IDS = st.integers(0, 7)

scalar: st.SearchStrategy[Value] = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([1.0, -0.0, 0.0, 2.5, float("inf")]),
    st.booleans(),
    st.sampled_from(["x", "y", "ünï", ""]),
    st.binary(max_size=3),
    st.builds(Date, st.integers(-5, 5)),
    st.builds(LocalTime, st.integers(0, 10)),
    st.builds(DateTime, st.integers(0, 3), st.integers(0, 2), st.just(3600), st.none()),
    st.builds(Duration, st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.just(0)),
    st.builds(Point, st.just(7203), st.sampled_from([0.0, 1.0]), st.sampled_from([2.0, 3.5])),
)
value: st.SearchStrategy[Value] = st.one_of(
    scalar, st.lists(st.integers(-2, 2), max_size=3), st.lists(st.sampled_from(["a", "b"]))
)
properties = st.lists(st.tuples(st.sampled_from(KEYS), value), max_size=3).map(tuple)

operation: st.SearchStrategy[Operation] = st.one_of(
    st.builds(
        CreateNode, NODE_IDS, st.lists(st.sampled_from(LABELS), max_size=2).map(tuple), properties
    ),
    st.builds(
        CreateNode, NODE_IDS, st.lists(st.sampled_from(LABELS), max_size=2).map(tuple), properties
    ),
    st.builds(DeleteNode, NODE_IDS),
    st.builds(CreateRelationship, REL_IDS, st.sampled_from(TYPES), NODE_IDS, NODE_IDS, properties),
    st.builds(DeleteRelationship, REL_IDS),
    st.builds(SetNodeProperty, NODE_IDS, st.sampled_from(KEYS), st.one_of(st.none(), value)),
    st.builds(SetRelationshipProperty, REL_IDS, st.sampled_from(KEYS), st.one_of(st.none(), value)),
    st.builds(AddLabel, NODE_IDS, st.sampled_from(LABELS)),
    st.builds(RemoveLabel, NODE_IDS, st.sampled_from(LABELS)),
    st.builds(
        CreateIndex,
        st.sampled_from(["i1", "i2"]),
        st.sampled_from(LABELS),
        st.sampled_from([("k",), ("name",), ("k", "n")]),
    ),
    st.builds(
        CreateIndex,
        st.sampled_from(["i1", "r1"]),
        st.sampled_from(TYPES),
        st.sampled_from([("k",), ("name",), ("k", "n")]),
        st.just(True),
    ),
    st.builds(DropIndex, st.sampled_from(["i1", "i2", "r1", "u1"])),
    st.builds(
        CreateUniqueConstraint,
        st.just("u1"),
        st.sampled_from(LABELS),
        st.sampled_from([("name",), ("k", "n")]),
    ),
    st.builds(DropConstraint, st.sampled_from(["u1"])),
)
write_sets = st.lists(
    st.lists(operation, min_size=1, max_size=5).map(tuple).map(WriteSet), max_size=12
)


def memory_violates_uniqueness(graph: MemoryGraph) -> bool:
    for constraint in graph.constraints():
        seen: list[list[Value]] = []
        for node_id in graph.node_ids_by_label(constraint.label):
            props = graph.nodes[node_id].properties
            values = [props.get(key) for key in constraint.properties]
            if any(v is None for v in values):
                continue
            for other in seen:
                if all(values_equal(a, b) for a, b in zip(values, other, strict=True)):
                    return True
            seen.append(values)
    return False


def apply_to_model(model: MemoryGraph, write_set: WriteSet) -> tuple[MemoryGraph, str]:
    """The model after `write_set` as the store applies it: all or nothing, unique enforced.

    Returns (graph, outcome) with outcome "ok", "invalid" or "violation".
    """
    candidate = copy.deepcopy(model)
    try:
        candidate.apply(write_set)
    except WriteSetError:
        return model, "invalid"
    if memory_violates_uniqueness(candidate):
        return model, "violation"
    return candidate, "ok"


def views_agree(left: GraphView, right: GraphView) -> None:
    """The read paths the query engine uses give the same answers on both."""
    assert list(left.node_ids()) == list(right.node_ids())
    assert list(left.relationship_ids()) == list(right.relationship_ids())
    assert left.labels() == right.labels()
    assert left.relationship_types() == right.relationship_types()
    assert left.property_keys() == right.property_keys()
    assert left.indexes() == right.indexes()
    assert left.constraints() == right.constraints()
    assert left.next_ids() == right.next_ids()
    assert left.count_nodes() == right.count_nodes()
    assert left.count_relationships() == right.count_relationships()
    for label in LABELS:
        assert list(left.node_ids_by_label(label)) == list(right.node_ids_by_label(label))
        assert left.count_nodes(label) == right.count_nodes(label)
        for key in KEYS:
            assert left.has_index(label, key) == right.has_index(label, key)
            if left.has_index(label, key):
                for probe in (1, 1.0, "x", True, [1, 2], Date(1), 0):
                    assert list(left.node_ids_by_property(label, key, probe)) == list(
                        right.node_ids_by_property(label, key, probe)
                    )
    for type_name in TYPES:
        assert left.count_relationships(type_name) == right.count_relationships(type_name)
        assert list(left.relationship_ids_by_type(type_name)) == list(
            right.relationship_ids_by_type(type_name)
        )
        for key in KEYS:
            indexed = left.has_relationship_index(type_name, key)
            assert indexed == right.has_relationship_index(type_name, key)
            if indexed:
                for probe in (1, 1.0, "x", True, [1, 2], Date(1), 0):
                    assert list(left.relationship_ids_by_property(type_name, key, probe)) == list(
                        right.relationship_ids_by_property(type_name, key, probe)
                    )
    for node_id in range(8):
        assert left.node(node_id) == right.node(node_id)
        for direction in Direction:
            for types in (None, ["R"], ["KNOWS", "R"]):
                records = list(left.relationships(node_id, direction, types))
                assert records == list(right.relationships(node_id, direction, types))
                ends = list(left.relationship_ends(node_id, direction, types))
                assert ends == list(right.relationship_ends(node_id, direction, types))
                assert [(r.id, r.type, r.start, r.end) for r in records] == [
                    (e.id, e.type, e.start, e.end) for e in ends
                ]
    for rel_id in range(8):
        assert left.relationship(rel_id) == right.relationship(rel_id)
