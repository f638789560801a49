"""Runtime values of the executor and Cypher's value semantics over them.

Nodes and relationships travel through execution as references (`NodeRef`, `RelRef`: an id,
equal by id), read through the transaction state when a property or label is needed; the
engine turns them into public `Node`/`Relationship`/`Path` snapshots for the result. This
module owns equality (three-valued), comparison (`<` and friends, null when incomparable),
the total order of ORDER BY, grouping keys for DISTINCT and aggregation, and type names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from store import values as sv

INT64_MIN = sv.INT64_MIN
INT64_MAX = sv.INT64_MAX


@dataclass(frozen=True, slots=True)
class NodeRef:
    id: int


@dataclass(frozen=True, slots=True)
class RelRef:
    id: int


@dataclass(frozen=True, slots=True)
class PathValue:
    nodes: tuple[NodeRef, ...]
    rels: tuple[RelRef, ...]


@dataclass(frozen=True, slots=True)
class Node:
    """A node in a result: a snapshot of its labels and properties at the statement's end."""

    id: int
    labels: frozenset[str]
    properties: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class Relationship:
    id: int
    type: str
    start: int
    end: int
    properties: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class Path:
    nodes: tuple[Node, ...]
    relationships: tuple[Relationship, ...]


TEMPORAL = (sv.Date, sv.LocalTime, sv.Time, sv.LocalDateTime, sv.DateTime)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def type_name(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list):
        return "LIST"
    if isinstance(value, dict):
        return "MAP"
    if isinstance(value, NodeRef):
        return "NODE"
    if isinstance(value, RelRef):
        return "RELATIONSHIP"
    if isinstance(value, PathValue):
        return "PATH"
    return {
        sv.Date: "DATE",
        sv.LocalTime: "LOCAL TIME",
        sv.Time: "ZONED TIME",
        sv.LocalDateTime: "LOCAL DATETIME",
        sv.DateTime: "ZONED DATETIME",
        sv.Duration: "DURATION",
        sv.Point: "POINT",
    }.get(type(value), type(value).__name__.upper())


# -- equality ------------------------------------------------------------------------------


def equals(left: Any, right: Any) -> bool | None:
    """Cypher `=`: True, False, or None (unknown) when nulls are involved."""
    if left is None or right is None:
        return None
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if is_number(left) and is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return False
        unknown = False
        for a, b in zip(left, right, strict=True):
            result = equals(a, b)
            if result is False:
                return False
            if result is None:
                unknown = True
        return None if unknown else True
    if isinstance(left, dict) and isinstance(right, dict):
        if left.keys() != right.keys():
            return False
        unknown = False
        for key, value in left.items():
            result = equals(value, right[key])
            if result is False:
                return False
            if result is None:
                unknown = True
        return None if unknown else True
    if type(left) is not type(right):
        return False
    if isinstance(left, sv.Duration):
        return left == right
    if isinstance(left, sv.DateTime):
        return (left.epoch_seconds, left.nanos) == (right.epoch_seconds, right.nanos)
    if isinstance(left, sv.Time):
        return _time_utc(left) == _time_utc(right)
    return bool(left == right)


def _time_utc(value: sv.Time) -> int:
    return value.nanos_of_day - value.offset_seconds * 1_000_000_000


# -- comparison ----------------------------------------------------------------------------


def compare(left: Any, right: Any) -> int | None:
    """Cypher's `<`-family comparison: -1, 0, 1, or None when the values are incomparable."""
    if left is None or right is None:
        return None
    if is_number(left) and is_number(right):
        if isinstance(left, float) and math.isnan(left):
            return None
        if isinstance(right, float) and math.isnan(right):
            return None
        return (left > right) - (left < right)
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    if isinstance(left, bool) and isinstance(right, bool):
        return (left > right) - (left < right)
    if isinstance(left, list) and isinstance(right, list):
        for a, b in zip(left, right, strict=False):
            if a is None or b is None:
                return None
            result = compare(a, b)
            if result is None:
                eq = equals(a, b)
                if eq is True:
                    continue
                return None
            if result != 0:
                return result
        return (len(left) > len(right)) - (len(left) < len(right))
    if type(left) is type(right) and isinstance(left, TEMPORAL):
        a, b = _temporal_key(left), _temporal_key(right)
        return (a > b) - (a < b)
    return None


def _temporal_key(value: Any) -> tuple[int, ...]:
    if isinstance(value, sv.Date):
        return (value.epoch_day,)
    if isinstance(value, sv.LocalTime):
        return (value.nanos_of_day,)
    if isinstance(value, sv.Time):
        return (_time_utc(value),)
    if isinstance(value, sv.LocalDateTime):
        return (value.epoch_seconds, value.nanos)
    if isinstance(value, sv.DateTime):
        return (value.epoch_seconds, value.nanos)
    raise TypeError(value)


# -- ORDER BY's total order ----------------------------------------------------------------

_ORDER_RANK = {
    dict: 0,
    NodeRef: 1,
    RelRef: 2,
    list: 3,
    PathValue: 4,
    sv.DateTime: 5,
    sv.LocalDateTime: 6,
    sv.Date: 7,
    sv.Time: 8,
    sv.LocalTime: 9,
    sv.Duration: 10,
    sv.Point: 11,
    str: 12,
    bool: 13,
    int: 14,
    float: 14,
}


class SortKey:
    """Wraps a value so that Python's sort follows Cypher's orderability."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: SortKey) -> bool:
        return order_compare(self.value, other.value) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SortKey) and order_compare(self.value, other.value) == 0

    __hash__ = None  # type: ignore[assignment]


def order_compare(left: Any, right: Any) -> int:
    if left is None or right is None:
        return (left is None) - (right is None)
    rank_l = _ORDER_RANK.get(type(left), 15)
    rank_r = _ORDER_RANK.get(type(right), 15)
    if rank_l != rank_r:
        return (rank_l > rank_r) - (rank_l < rank_r)
    if rank_l == 14:
        l_nan = isinstance(left, float) and math.isnan(left)
        r_nan = isinstance(right, float) and math.isnan(right)
        if l_nan or r_nan:
            return l_nan - r_nan
        return (left > right) - (left < right)
    if isinstance(left, list):
        for a, b in zip(left, right, strict=False):
            result = order_compare(a, b)
            if result:
                return result
        return (len(left) > len(right)) - (len(left) < len(right))
    if isinstance(left, dict):
        lk, rk = sorted(left), sorted(right)
        result = order_compare(lk, rk)
        if result:
            return result
        return order_compare([left[k] for k in lk], [right[k] for k in rk])
    if isinstance(left, (NodeRef, RelRef)):
        return (left.id > right.id) - (left.id < right.id)
    if isinstance(left, PathValue):
        return order_compare(
            [x for pair in zip(left.nodes, left.rels, strict=False) for x in pair]
            + [left.nodes[-1]],
            [x for pair in zip(right.nodes, right.rels, strict=False) for x in pair]
            + [right.nodes[-1]],
        )
    if isinstance(left, sv.Duration):
        a = (left.months, left.days, left.seconds, left.nanos)
        b = (right.months, right.days, right.seconds, right.nanos)
        return (a > b) - (a < b)
    if isinstance(left, sv.Point):
        a2 = (left.srid, left.x, left.y, left.z or 0.0)
        b2 = (right.srid, right.x, right.y, right.z or 0.0)
        return (a2 > b2) - (a2 < b2)
    if isinstance(left, TEMPORAL):
        a3, b3 = _temporal_key(left), _temporal_key(right)
        result = (a3 > b3) - (a3 < b3)
        if result == 0 and isinstance(left, (sv.DateTime, sv.Time)):
            return (left.offset_seconds < right.offset_seconds) - (
                left.offset_seconds > right.offset_seconds
            )
        return result
    return (left > right) - (left < right)


# -- grouping keys -------------------------------------------------------------------------


def group_key(value: Any) -> Any:
    """A hashable key under which Cypher-equivalent values (DISTINCT, grouping) coincide."""
    kind = type(value)
    # The commonest keys (count(DISTINCT n)): a tuple hashes and compares in C, where the
    # dataclass's own __hash__ and __eq__ are Python calls. No other kind's key is tagged so.
    if kind is NodeRef:
        return ("node", value.id)
    if kind is RelRef:
        return ("relationship", value.id)
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("n", value)
    if isinstance(value, float):
        if math.isnan(value):
            return ("nan",)
        if value.is_integer():
            return ("n", int(value))
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list):
        return ("l", tuple(group_key(v) for v in value))
    if isinstance(value, dict):
        return ("m", tuple(sorted((k, group_key(v)) for k, v in value.items())))
    if isinstance(value, sv.DateTime):
        return ("dt", value.epoch_seconds, value.nanos, value.offset_seconds)
    return (type(value).__name__, value)
