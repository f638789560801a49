"""PackStream v1: exact bytes for the marker boundaries, and round trips of every value."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.bolt import packstream as ps
from cypher.values import Node, Path, Relationship
from store import values as sv


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (None, "C0"),
        (True, "C3"),
        (False, "C2"),
        (0, "00"),
        (127, "7F"),
        (-16, "F0"),
        (-17, "C8EF"),
        (-128, "C880"),
        (128, "C90080"),
        (-129, "C9FF7F"),
        (32768, "CA00008000"),
        (2**31, "CB0000000080000000"),
        (-(2**63), "CB8000000000000000"),
        (1.1, "C13FF199999999999A"),
        ("", "80"),
        ("a", "8161"),
        ("x" * 16, "D010" + "78" * 16),
        (b"\x01", "CC0101"),
        ([], "90"),
        ([1, 2], "920102"),
        ({}, "A0"),
        ({"a": 1}, "A1816101"),
        (sv.Date(1), "B14401"),
        (sv.Point(7203, 1.0, 2.0), "B358C91C23C13FF0000000000000C14000000000000000"),
    ],
)
def test_known_encodings_match_the_specification(value: Any, encoded: str) -> None:
    assert ps.pack(value).hex().upper() == encoded
    assert ps.unpack(bytes.fromhex(encoded)) == value


def test_sizes_past_each_marker_boundary_round_trip() -> None:
    for size in (15, 16, 255, 256, 65535, 65536):
        text = "y" * size
        assert ps.unpack(ps.pack(text)) == text
        items = list(range(size % 1000))
        assert ps.unpack(ps.pack(items)) == items
        blob = b"z" * size
        assert ps.unpack(ps.pack(blob)) == blob
    big_map = {str(i): i for i in range(70000)}
    assert ps.unpack(ps.pack(big_map)) == big_map


def test_integers_outside_64_bits_are_refused() -> None:
    with pytest.raises(ps.PackStreamError):
        ps.pack(2**63)


@pytest.mark.parametrize(
    "data",
    ["", "C9", "D0FF41", "92", "A1 01 01", "DF", "B1 44 81 61", "B0 01", "8161 00", "81FF"],
)
def test_malformed_bytes_raise_packstream_error(data: str) -> None:
    with pytest.raises(ps.PackStreamError):
        ps.unpack(bytes.fromhex(data.replace(" ", "")))


def test_nesting_is_bounded() -> None:
    data = bytes.fromhex("91" * (ps.MAX_DEPTH + 5) + "C0")
    with pytest.raises(ps.PackStreamError):
        ps.unpack(data)


def _nested(levels: int, inner: Any) -> Any:
    value = inner
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


def test_packing_is_bounded_at_the_same_depth_as_unpacking() -> None:
    # A value at depth MAX_DEPTH packs, one below it does not; the fast paths for exact
    # types (lists, dicts, scalars) keep the bound of the general path.
    for inner in (None, 7, "s", [], {}):
        deepest = _nested(ps.MAX_DEPTH, inner)
        assert ps.unpack(ps.pack(deepest)) == deepest
        with pytest.raises(ps.PackStreamError):
            ps.pack(_nested(ps.MAX_DEPTH + 1, inner))
    with pytest.raises(ps.PackStreamError):
        ps.pack(_nested(ps.MAX_DEPTH, sv.Date(1)))  # a structure's field one too deep


def test_subclasses_of_the_fast_path_types_pack_like_their_base() -> None:
    class Name(str):
        pass

    class Count(int):
        pass

    class Row(list[Any]):
        pass

    class Props(dict[str, Any]):
        pass

    value = Props({Name("a"): Row([Count(300), Name("b"), 1.5, True])})
    assert ps.pack(value) == ps.pack({"a": [300, "b", 1.5, True]})


def test_a_message_packs_into_a_given_buffer_after_what_it_holds() -> None:
    buffer = bytearray(b"\x00\x01")
    ps.Packer(True, buffer).pack_structure(0x70, ({"a": 1},))
    assert bytes(buffer) == b"\x00\x01" + ps.pack(ps.Structure(0x70, ({"a": 1},)))


int64 = st.integers(min_value=ps.INT64_MIN, max_value=ps.INT64_MAX)
int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
nanos = st.integers(min_value=0, max_value=999_999_999)
seconds = st.integers(min_value=-(10**10), max_value=10**10)
finite = st.floats(allow_nan=False)
zones = st.sampled_from(["Europe/Stockholm", "America/New_York", "Asia/Kolkata", "UTC"])


@st.composite
def zoned_datetimes(draw: st.DrawFn) -> sv.DateTime:
    epoch = draw(seconds)
    zone = draw(zones)
    return sv.DateTime(epoch, draw(nanos), ps._offset_at_instant(zone, epoch), zone)


temporal = st.one_of(
    st.builds(sv.Date, int32),
    st.builds(sv.LocalTime, st.integers(0, 86_400 * 10**9 - 1)),
    st.builds(sv.Time, st.integers(0, 86_400 * 10**9 - 1), st.integers(-64800, 64800)),
    st.builds(sv.LocalDateTime, seconds, nanos),
    st.builds(sv.DateTime, seconds, nanos, st.integers(-64800, 64800)),
    zoned_datetimes(),
    st.builds(sv.Duration, int64, int64, int64, nanos),
)
points = st.one_of(
    st.builds(sv.Point, st.sampled_from([7203, 4326]), finite, finite),
    st.builds(sv.Point, st.sampled_from([9157, 4979]), finite, finite, finite),
)
scalars = st.one_of(
    st.none(), st.booleans(), int64, finite, st.text(), st.binary(), temporal, points
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
properties = st.dictionaries(st.text(max_size=6), scalars, max_size=4)
nodes = st.builds(
    Node, st.integers(0, 50), st.frozensets(st.text(min_size=1, max_size=5)), properties
)


@st.composite
def paths(draw: st.DrawFn) -> Path:
    path_nodes = draw(st.lists(nodes, min_size=1, max_size=5, unique_by=lambda n: n.id))
    rels = []
    for i in range(len(path_nodes) - 1):
        a, b = path_nodes[i].id, path_nodes[i + 1].id
        forward = draw(st.booleans())
        start, end = (a, b) if forward else (b, a)
        rels.append(Relationship(100 + i, draw(st.text(min_size=1, max_size=4)), start, end, {}))
    return Path(tuple(path_nodes), tuple(rels))


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_value_round_trips(value: Any) -> None:
    assert _same(ps.unpack(ps.pack(value)), value)


@settings(max_examples=100, deadline=None)
@given(st.one_of(temporal, st.lists(temporal, max_size=3)))
def test_legacy_datetime_encoding_round_trips(value: Any) -> None:
    assert ps.unpack(ps.pack(value, utc_datetime=False), utc_datetime=False) == value


@settings(max_examples=100, deadline=None)
@given(
    nodes,
    st.builds(Relationship, int64, st.text(max_size=4), int64, int64, properties),
    paths(),
)
def test_graph_structures_round_trip(node: Node, rel: Relationship, path: Path) -> None:
    assert ps.unpack(ps.pack(node)) == node
    assert ps.unpack(ps.pack(rel)) == rel
    assert ps.unpack(ps.pack(path)) == path


def test_path_with_a_repeated_node_and_a_backward_relationship() -> None:
    a = Node(1, frozenset({"A"}), {})
    b = Node(2, frozenset(), {"x": 1})
    there = Relationship(10, "T", 1, 2, {})
    back = Relationship(11, "T", 1, 2, {})
    path = Path((a, b, a), (there, back))
    nodes_field, rels_field, walk = ps._path_fields(path)
    assert [r.id for r in rels_field] == [10, 11]
    assert [n.id for n in nodes_field] == [1, 2]
    assert walk == [1, 1, -2, 0]
    assert ps.unpack(ps.pack(path)) == path


def test_utc_datetime_with_zone_id_uses_tag_0x69_and_legacy_uses_local_seconds() -> None:
    value = sv.DateTime(0, 5, 3600, "Europe/Stockholm")
    assert ps.pack(value)[:2] == bytes([0xB3, ps.DATE_TIME_ZONE_ID])
    legacy = ps.pack(sv.DateTime(0, 5, 3600), utc_datetime=False)
    assert legacy[:3] == bytes([0xB3, ps.LEGACY_DATE_TIME, 0xC9])  # 3600 local seconds


def _same(left: Any, right: Any) -> bool:
    """Equality where NaN-free floats compare exactly and -0.0 keeps its sign."""
    if isinstance(left, float) and isinstance(right, float):
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right
