"""Cypher values on the wire (``cluster.values``): every kind comes back as it went, as a
result value and as a parameter, empty collections included (an empty map used to arrive as
null); nesting past ``MAX_DEPTH`` and values with no wire form are refused."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.values import (
    MAX_DEPTH,
    ValueConversionError,
    from_proto,
    parameter_from_proto,
    to_proto,
)
from cypher.values import Node, Path, Relationship
from proto import client_pb2
from store import values as sv

NODE = Node(5, frozenset({"B", "A"}), {"x": 1, "y": [1, "a", None], "z": {}})
EMPTY_NODE = Node(0, frozenset(), {})
REL = Relationship(3, "KNOWS", 5, 0, {"since": 1.5, "tags": []})

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -5,
    2**62,
    0.0,
    1.5,
    "",
    "text",
    b"",
    b"\x00\xff",
    [],
    [[]],
    [1, "a", None, [2.5]],
    {},
    {"a": {}},
    {"a": [1, {"b": None}], "c": {"d": {}}},
    EMPTY_NODE,
    NODE,
    REL,
    Path((NODE,), ()),
    Path((NODE, EMPTY_NODE), (REL,)),
    sv.Date(0),
    sv.Date(19000),
    sv.LocalTime(0),
    sv.Time(5, -3600),
    sv.LocalDateTime(0, 0),
    sv.DateTime(1, 2, 3, None),
    sv.DateTime(1, 2, 3600, "Europe/Paris"),
    sv.Duration(0, 0, 0, 0),
    sv.Duration(1, 2, 3, 4),
    sv.Point(7203, 1.0, 2.0, None),
    sv.Point(9157, 1.0, 2.0, 3.0),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_value_comes_back_as_it_went(value: Any) -> None:
    wire = client_pb2.Value.FromString(to_proto(value).SerializeToString())
    assert from_proto(wire) == value


def test_empty_collections_are_not_null() -> None:
    assert to_proto({}).WhichOneof("kind") == "map"
    assert to_proto([]).WhichOneof("kind") == "list"
    assert parameter_from_proto(to_proto({})) == {}


def test_tuples_travel_as_lists_and_map_keys_as_text() -> None:
    assert from_proto(to_proto((1, (2,)))) == [1, [2]]
    assert from_proto(to_proto({1: "one"})) == {"1": "one"}


def test_nesting_past_the_limit_and_unknown_kinds_are_refused() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(ValueConversionError):
        to_proto(deep)
    with pytest.raises(ValueConversionError):
        to_proto([1, object()])


def test_graph_entities_cannot_be_parameters() -> None:
    with pytest.raises(ValueConversionError):
        parameter_from_proto(to_proto([NODE]))
