"""Cypher values on the wire (``quiver.v1.Value``) and in JSON, both directions.

Owns the conversion between the Python values of ``store.values``/``cypher.values`` and the
protobuf ``Value``, and the JSON shape DESIGN fixes for ``quiver query --format json``: a
node ``{"id", "labels", "properties"}``, a relationship ``{"id", "type", "start", "end",
"properties"}``. Temporal values print as Cypher's ISO text, points as maps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cypher.temporal import format_value
from cypher.values import Node, Path, Relationship
from proto import client_pb2 as pb
from store import values as sv

MAX_DEPTH = 64


class ValueConversionError(ValueError):
    pass


def to_proto(value: Any, depth: int = 0) -> pb.Value:
    out = pb.Value()
    write_value(out, value, depth)
    return out


def write_value(out: pb.Value, value: Any, depth: int = 0) -> None:
    """Fill `out` (an empty ``Value``, typically a repeated field's new element) with
    `value`, nested values written in place: protobuf copies a message it is handed (a
    serialization and a parse with upb), so nothing is built apart and then added."""
    if depth > MAX_DEPTH:
        raise ValueConversionError("value nested too deeply")
    kind = type(value)
    # The common kinds by exact type first; subclasses (and bool before int) below.
    if kind is int:
        out.integer = value
    elif kind is str:
        out.string = value
    elif value is None:
        out.null = pb.NULL_VALUE
    elif kind is float:
        out.float = value
    elif isinstance(value, bool):
        out.boolean = value
    elif isinstance(value, int):
        out.integer = value
    elif isinstance(value, float):
        out.float = value
    elif isinstance(value, str):
        out.string = value
    elif isinstance(value, bytes | bytearray):
        out.bytes = bytes(value)
    elif isinstance(value, list | tuple):
        values = out.list.values
        if not value:
            out.list.SetInParent()
        for item in value:
            write_value(values.add(), item, depth + 1)
    elif isinstance(value, Mapping):
        entries = out.map.entries
        if not value:
            out.map.SetInParent()  # an empty map, not a null
        for key, item in value.items():
            write_value(entries[str(key)], item, depth + 1)
    elif isinstance(value, Node):
        _write_node(out.node, value, depth)
    elif isinstance(value, Relationship):
        _write_relationship(out.relationship, value, depth)
    elif isinstance(value, Path):
        path = out.path
        path.SetInParent()
        for node in value.nodes:
            _write_node(path.nodes.add(), node, depth)
        for rel in value.relationships:
            _write_relationship(path.relationships.add(), rel, depth)
    elif isinstance(value, sv.Date):
        out.date.epoch_days = value.epoch_day
    elif isinstance(value, sv.LocalTime):
        out.local_time.nanoseconds_of_day = value.nanos_of_day
    elif isinstance(value, sv.Time):
        out.time.nanoseconds_of_day = value.nanos_of_day
        out.time.offset_seconds = value.offset_seconds
    elif isinstance(value, sv.LocalDateTime):
        out.local_date_time.seconds = value.epoch_seconds
        out.local_date_time.nanoseconds = value.nanos
    elif isinstance(value, sv.DateTime):
        out.date_time.seconds = value.epoch_seconds
        out.date_time.nanoseconds = value.nanos
        out.date_time.offset_seconds = value.offset_seconds
        if value.zone_id is not None:
            out.date_time.zone_id = value.zone_id
    elif isinstance(value, sv.Duration):
        out.duration.months = value.months
        out.duration.days = value.days
        out.duration.seconds = value.seconds
        out.duration.nanoseconds = value.nanos
    elif isinstance(value, sv.Point):
        out.point.srid = value.srid
        out.point.x = value.x
        out.point.y = value.y
        if value.z is not None:
            out.point.z = value.z
    else:
        raise ValueConversionError(f"no wire form for {type(value).__name__}")


def _write_properties(entries: Any, properties: Mapping[str, Any], depth: int) -> None:
    for key, item in properties.items():
        write_value(entries[key], item, depth + 1)


def _write_node(out: pb.Node, node: Node, depth: int) -> None:
    out.id = node.id
    out.labels.extend(sorted(node.labels))
    _write_properties(out.properties, node.properties, depth)


def _write_relationship(out: pb.Relationship, rel: Relationship, depth: int) -> None:
    out.id = rel.id
    out.type = rel.type
    out.start = rel.start
    out.end = rel.end
    _write_properties(out.properties, rel.properties, depth)


def from_proto(value: pb.Value, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ValueConversionError("value nested too deeply")
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null":
        return None
    if kind in ("boolean", "integer", "float", "string", "bytes"):
        return getattr(value, kind)
    if kind == "list":
        return [from_proto(item, depth + 1) for item in value.list.values]
    if kind == "map":
        return {key: from_proto(item, depth + 1) for key, item in value.map.entries.items()}
    if kind == "node":
        return _node_from(value.node, depth)
    if kind == "relationship":
        return _rel_from(value.relationship, depth)
    if kind == "path":
        return Path(
            tuple(_node_from(n, depth) for n in value.path.nodes),
            tuple(_rel_from(r, depth) for r in value.path.relationships),
        )
    if kind == "date":
        return sv.Date(value.date.epoch_days)
    if kind == "local_time":
        return sv.LocalTime(value.local_time.nanoseconds_of_day)
    if kind == "time":
        return sv.Time(value.time.nanoseconds_of_day, value.time.offset_seconds)
    if kind == "local_date_time":
        return sv.LocalDateTime(value.local_date_time.seconds, value.local_date_time.nanoseconds)
    if kind == "date_time":
        d = value.date_time
        return sv.DateTime(
            d.seconds, d.nanoseconds, d.offset_seconds, d.zone_id if d.HasField("zone_id") else None
        )
    if kind == "duration":
        u = value.duration
        return sv.Duration(u.months, u.days, u.seconds, u.nanoseconds)
    if kind == "point":
        p = value.point
        return sv.Point(p.srid, p.x, p.y, p.z if p.HasField("z") else None)
    raise ValueConversionError(f"unknown value kind {kind}")


def _node_from(node: pb.Node, depth: int) -> Node:
    props = {k: from_proto(v, depth + 1) for k, v in node.properties.items()}
    return Node(node.id, frozenset(node.labels), props)


def _rel_from(rel: pb.Relationship, depth: int) -> Relationship:
    props = {k: from_proto(v, depth + 1) for k, v in rel.properties.items()}
    return Relationship(rel.id, rel.type, rel.start, rel.end, props)


def parameter_from_proto(value: pb.Value) -> Any:
    """A query parameter: any value but a graph entity (those cannot be sent in)."""
    decoded = from_proto(value)
    if _has_entity(decoded):
        raise ValueConversionError("nodes, relationships and paths cannot be parameters")
    return decoded


def _has_entity(value: Any) -> bool:
    if isinstance(value, Node | Relationship | Path):
        return True
    if isinstance(value, list):
        return any(_has_entity(item) for item in value)
    if isinstance(value, dict):
        return any(_has_entity(item) for item in value.values())
    return False


def to_json(value: Any) -> Any:
    """DESIGN's JSON shape of a result value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, Node):
        return {
            "id": value.id,
            "labels": sorted(value.labels),
            "properties": to_json(dict(value.properties)),
        }
    if isinstance(value, Relationship):
        return {
            "id": value.id,
            "type": value.type,
            "start": value.start,
            "end": value.end,
            "properties": to_json(dict(value.properties)),
        }
    if isinstance(value, Path):
        return {
            "nodes": [to_json(n) for n in value.nodes],
            "relationships": [to_json(r) for r in value.relationships],
        }
    if isinstance(value, sv.Point):
        point: dict[str, Any] = {"srid": value.srid, "x": value.x, "y": value.y}
        if value.z is not None:
            point["z"] = value.z
        return point
    return format_value(value)
