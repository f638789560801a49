"""Property values as the graph stores them: Cypher's types, nothing more.

Plain Python for the simple ones (None, bool, int, float, str, bytes, list, dict with str
keys) and frozen dataclasses for the temporal and spatial types, shaped like Neo4j's own
value model (and so like Bolt's PackStream structures). This module owns the shapes and
their validation; the semantics (arithmetic, formatting, truncation) belong to `cypher`.
It must never depend on `cypher`, `cluster` or `chaos`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


@dataclass(slots=True, frozen=True)
class Date:
    epoch_day: int
    """Days since 1970-01-01 (proleptic Gregorian)."""


@dataclass(slots=True, frozen=True)
class LocalTime:
    nanos_of_day: int


@dataclass(slots=True, frozen=True)
class Time:
    nanos_of_day: int
    offset_seconds: int


@dataclass(slots=True, frozen=True)
class LocalDateTime:
    epoch_seconds: int
    nanos: int


@dataclass(slots=True, frozen=True)
class DateTime:
    """An instant with an offset; `zone_id` (e.g. "Europe/Stockholm") when named."""

    epoch_seconds: int
    """Seconds since 1970-01-01T00:00:00Z (UTC), not local."""
    nanos: int
    offset_seconds: int
    zone_id: str | None = None


@dataclass(slots=True, frozen=True)
class Duration:
    months: int
    days: int
    seconds: int
    nanos: int


@dataclass(slots=True, frozen=True)
class Point:
    """srid 7203 (cartesian), 9157 (cartesian 3D), 4326 (WGS-84), 4979 (WGS-84 3D)."""

    srid: int
    x: float
    y: float
    z: float | None = None


TEMPORAL_TYPES = (Date, LocalTime, Time, LocalDateTime, DateTime, Duration)

Value = Union[
    None,
    bool,
    int,
    float,
    str,
    bytes,
    "list[Value]",
    "dict[str, Value]",
    Date,
    LocalTime,
    Time,
    LocalDateTime,
    DateTime,
    Duration,
    Point,
]


class InvalidValueError(ValueError):
    """A value the graph cannot store (Neo.ClientError.Statement.TypeError)."""

    status_code = "Neo.ClientError.Statement.TypeError"


def check_property_value(value: object) -> None:
    """Raise InvalidValueError unless `value` may be stored as a property.

    Neo4j's rule: a property is a scalar, a temporal or spatial value, or a homogeneous list
    of those; no maps, no nested lists, and null removes the property instead.
    """
    if isinstance(value, list):
        kinds = {_property_kind(item) for item in value}
        if len(kinds) > 1:
            raise InvalidValueError("a property list must hold values of one type")
        return
    _property_kind(value)


def _property_kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidValueError("integer out of the 64-bit range")
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, (*TEMPORAL_TYPES, Point)):
        return type(value).__name__
    if value is None:
        raise InvalidValueError("null cannot be stored in a property list")
    raise InvalidValueError(f"a {type(value).__name__} cannot be stored as a property")
