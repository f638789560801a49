"""PackStream v1: Bolt's value encoding, and its mapping to and from Quiver's values.

Owns the byte format (null, booleans, integers of every width, 64-bit floats, strings,
bytes, lists, maps, structures) and the structures Bolt 5 exchanges: Node, Relationship,
UnboundRelationship, Path, Date, Time, LocalTime, DateTime (UTC-based 0x49/0x69 from Bolt 5,
the legacy local-time 0x46/0x66 when ``utc_datetime`` is off), LocalDateTime, Duration,
Point2D and Point3D. Quiver's side is ``store.values`` (temporal and spatial types) and
``cypher.values`` (Node, Relationship, Path).

Every decode is bounded: nesting depth, and sizes can never exceed the message it came in
(the server bounds that). Must never: return a value Quiver cannot represent (an integer
outside 64 bits, a map with a non-string key, an unknown structure) — those raise
``PackStreamError``.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cypher.temporal import zone_info
from cypher.values import Node, Path, Relationship
from store import values as sv

MAX_DEPTH: Final = 64
INT64_MIN: Final = sv.INT64_MIN
INT64_MAX: Final = sv.INT64_MAX

# Structure tags (the signature byte after the structure marker).
NODE: Final = 0x4E
RELATIONSHIP: Final = 0x52
UNBOUND_RELATIONSHIP: Final = 0x72
PATH: Final = 0x50
DATE: Final = 0x44
TIME: Final = 0x54
LOCAL_TIME: Final = 0x74
DATE_TIME: Final = 0x49
DATE_TIME_ZONE_ID: Final = 0x69
LEGACY_DATE_TIME: Final = 0x46
LEGACY_DATE_TIME_ZONE_ID: Final = 0x66
LOCAL_DATE_TIME: Final = 0x64
DURATION: Final = 0x45
POINT_2D: Final = 0x58
POINT_3D: Final = 0x59

_NANOS: Final = 1_000_000_000
_DAY_S: Final = 86_400

_STRUCT_D = struct.Struct(">d")
_STRUCT_B = struct.Struct(">b")
_STRUCT_H = struct.Struct(">h")
_STRUCT_I = struct.Struct(">i")
_STRUCT_Q = struct.Struct(">q")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class PackStreamError(ValueError):
    """Bytes that are not PackStream, or a value that has no PackStream form."""


@dataclass(slots=True, frozen=True)
class Structure:
    """A raw structure: messages are structures too (tag = message signature)."""

    tag: int
    fields: tuple[Any, ...]


@dataclass(slots=True, frozen=True)
class UnboundRelationship:
    """A relationship inside a Path: no endpoints of its own."""

    id: int
    type: str
    properties: Mapping[str, Any]


# -- encoding ----------------------------------------------------------------------------------


_PACKED_KEYS: dict[str, bytes] = {}
"""Map keys (metadata keys, property names) as packed strings: most maps a server sends
have the same few keys. Bounded by MAX_PACKED_KEYS; past it keys are packed each time."""
MAX_PACKED_KEYS: Final = 4096


def _packed_key(key: Any) -> bytes:
    if not isinstance(key, str):
        raise PackStreamError("map keys must be strings")
    packer = Packer()
    packer._string(key)
    packed = bytes(packer.buffer)
    if len(_PACKED_KEYS) < MAX_PACKED_KEYS:
        _PACKED_KEYS[key] = packed
    return packed


class Packer:
    """Appends values to a bytearray (its own, or the one it is given: a connection packs
    straight into its outgoing buffer). `utc_datetime` picks DateTime 0x49/0x69 over
    0x46/0x66.

    ``pack`` dispatches on the exact type first — None, booleans, small integers, short
    strings, lists and maps are most of what a result holds, and each goes out without the
    general chain of ``isinstance`` tests (subclasses, bytes and structures take that)."""

    __slots__ = ("buffer", "utc_datetime")

    def __init__(self, utc_datetime: bool = True, buffer: bytearray | None = None) -> None:
        self.buffer = bytearray() if buffer is None else buffer
        self.utc_datetime = utc_datetime

    def pack(self, value: Any, depth: int = 0) -> None:
        kind = type(value)
        out = self.buffer
        if kind is str:
            data = value.encode("utf-8")
            size = len(data)
            if size < 0x10:
                out.append(0x80 + size)
                out += data
            else:
                self._string_header(size)
                out += data
        elif kind is int:
            if -0x10 <= value < 0x80:
                out.append(value & 0xFF)
            else:
                self._int(value)
        elif value is None:
            out.append(0xC0)
        elif kind is dict:
            if depth >= MAX_DEPTH and (value or depth > MAX_DEPTH):
                raise PackStreamError("value nested too deeply")
            self._header(len(value), 0xA0, 0xD8)
            keys = _PACKED_KEYS
            for key, item in value.items():
                packed = keys.get(key)
                if packed is None:
                    packed = _packed_key(key)
                out += packed
                self.pack(item, depth + 1)
        elif kind is list or kind is tuple:
            if depth >= MAX_DEPTH and (value or depth > MAX_DEPTH):
                raise PackStreamError("value nested too deeply")
            self._header(len(value), 0x90, 0xD4)
            for item in value:
                self.pack(item, depth + 1)
        elif kind is bool:
            out.append(0xC3 if value else 0xC2)
        elif kind is float:
            out.append(0xC1)
            out += _STRUCT_D.pack(value)
        else:
            self._pack_other(value, depth)

    def pack_structure(self, tag: int, fields: tuple[Any, ...] | list[Any]) -> None:
        """A structure (a message: tag = its signature) without a ``Structure`` object."""
        self._structure(tag, tuple(fields), 0)

    def _pack_other(self, value: Any, depth: int) -> None:
        """Everything ``pack`` does not dispatch by exact type."""
        if depth > MAX_DEPTH:
            raise PackStreamError("value nested too deeply")
        out = self.buffer
        if value is True:
            out.append(0xC3)
        elif value is False:
            out.append(0xC2)
        elif isinstance(value, int):
            self._int(value)
        elif isinstance(value, float):
            out.append(0xC1)
            out += _STRUCT_D.pack(value)
        elif isinstance(value, str):
            self._string(value)
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            size = len(data)
            if size < 0x100:
                out.append(0xCC)
                out += _U8.pack(size)
            elif size < 0x10000:
                out.append(0xCD)
                out += _U16.pack(size)
            elif size < 0x80000000:
                out.append(0xCE)
                out += _U32.pack(size)
            else:
                raise PackStreamError("bytes too long")
            out += data
        elif isinstance(value, list | tuple):
            self._header(len(value), 0x90, 0xD4)
            for item in value:
                self.pack(item, depth + 1)
        elif isinstance(value, Mapping):
            self._header(len(value), 0xA0, 0xD8)
            for key, item in value.items():
                if not isinstance(key, str):
                    raise PackStreamError("map keys must be strings")
                self._string(key)
                self.pack(item, depth + 1)
        elif isinstance(value, Structure):
            self._structure(value.tag, value.fields, depth)
        else:
            tag, fields = self._dehydrate(value)
            self._structure(tag, fields, depth)

    def _structure(self, tag: int, fields: tuple[Any, ...], depth: int) -> None:
        # Nested too deeply if any field would be (scalars skip the check in ``pack``).
        if depth >= MAX_DEPTH and (fields or depth > MAX_DEPTH):
            raise PackStreamError("value nested too deeply")
        if len(fields) > 15:
            raise PackStreamError("a structure has at most 15 fields")
        self.buffer.append(0xB0 + len(fields))
        self.buffer.append(tag)
        for item in fields:
            self.pack(item, depth + 1)

    def _int(self, value: int) -> None:
        out = self.buffer
        if -0x10 <= value < 0x80:
            out += _STRUCT_B.pack(value)
        elif -0x80 <= value < 0x80:
            out.append(0xC8)
            out += _STRUCT_B.pack(value)
        elif -0x8000 <= value < 0x8000:
            out.append(0xC9)
            out += _STRUCT_H.pack(value)
        elif -0x80000000 <= value < 0x80000000:
            out.append(0xCA)
            out += _STRUCT_I.pack(value)
        elif INT64_MIN <= value <= INT64_MAX:
            out.append(0xCB)
            out += _STRUCT_Q.pack(value)
        else:
            raise PackStreamError("integer out of the 64-bit range")

    def _string(self, value: str) -> None:
        data = value.encode("utf-8")
        self._string_header(len(data))
        self.buffer += data

    def _string_header(self, size: int) -> None:
        out = self.buffer
        if size < 0x10:
            out.append(0x80 + size)
        elif size < 0x100:
            out.append(0xD0)
            out += _U8.pack(size)
        elif size < 0x10000:
            out.append(0xD1)
            out += _U16.pack(size)
        elif size < 0x80000000:
            out.append(0xD2)
            out += _U32.pack(size)
        else:
            raise PackStreamError("string too long")

    def _header(self, size: int, tiny: int, marker: int) -> None:
        out = self.buffer
        if size < 0x10:
            out.append(tiny + size)
        elif size < 0x100:
            out.append(marker)
            out += _U8.pack(size)
        elif size < 0x10000:
            out.append(marker + 1)
            out += _U16.pack(size)
        elif size < 0x80000000:
            out.append(marker + 2)
            out += _U32.pack(size)
        else:
            raise PackStreamError("collection too large")

    def _dehydrate(self, value: Any) -> tuple[int, tuple[Any, ...]]:
        if isinstance(value, Node):
            return NODE, _node_fields(value)
        if isinstance(value, Relationship):
            return RELATIONSHIP, _relationship_fields(value)
        if isinstance(value, UnboundRelationship):
            return UNBOUND_RELATIONSHIP, (
                value.id,
                value.type,
                dict(value.properties),
                str(value.id),
            )
        if isinstance(value, Path):
            return PATH, _path_fields(value)
        if isinstance(value, sv.Date):
            return DATE, (value.epoch_day,)
        if isinstance(value, sv.Time):
            return TIME, (value.nanos_of_day, value.offset_seconds)
        if isinstance(value, sv.LocalTime):
            return LOCAL_TIME, (value.nanos_of_day,)
        if isinstance(value, sv.DateTime):
            if self.utc_datetime:
                if value.zone_id is not None:
                    return DATE_TIME_ZONE_ID, (value.epoch_seconds, value.nanos, value.zone_id)
                return DATE_TIME, (value.epoch_seconds, value.nanos, value.offset_seconds)
            local = value.epoch_seconds + value.offset_seconds
            if value.zone_id is not None:
                return LEGACY_DATE_TIME_ZONE_ID, (local, value.nanos, value.zone_id)
            return LEGACY_DATE_TIME, (local, value.nanos, value.offset_seconds)
        if isinstance(value, sv.LocalDateTime):
            return LOCAL_DATE_TIME, (value.epoch_seconds, value.nanos)
        if isinstance(value, sv.Duration):
            return DURATION, (value.months, value.days, value.seconds, value.nanos)
        if isinstance(value, sv.Point):
            if value.z is None:
                return POINT_2D, (value.srid, value.x, value.y)
            return POINT_3D, (value.srid, value.x, value.y, value.z)
        raise PackStreamError(f"no PackStream form for {type(value).__name__}")


def _node_fields(node: Node) -> tuple[Any, ...]:
    return (node.id, sorted(node.labels), dict(node.properties), str(node.id))


def _relationship_fields(rel: Relationship) -> tuple[Any, ...]:
    return (
        rel.id,
        rel.start,
        rel.end,
        rel.type,
        dict(rel.properties),
        str(rel.id),
        str(rel.start),
        str(rel.end),
    )


def _path_fields(path: Path) -> tuple[Any, ...]:
    """Bolt's path: unique nodes, unique unbound relationships, and a walk of indices
    (relationship index 1-based, negative when walked against its direction; node index)."""
    if len(path.nodes) != len(path.relationships) + 1:
        raise PackStreamError("a path has one more node than relationships")
    node_index: dict[int, int] = {}
    nodes: list[Node] = []
    for node in path.nodes:
        if node.id not in node_index:
            node_index[node.id] = len(nodes)
            nodes.append(node)
    rel_index: dict[int, int] = {}
    rels: list[UnboundRelationship] = []
    walk: list[int] = []
    for position, rel in enumerate(path.relationships):
        if rel.id not in rel_index:
            rel_index[rel.id] = len(rels) + 1
            rels.append(UnboundRelationship(rel.id, rel.type, rel.properties))
        previous = path.nodes[position].id
        following = path.nodes[position + 1].id
        if (rel.start, rel.end) == (previous, following):
            walk.append(rel_index[rel.id])
        elif (rel.start, rel.end) == (following, previous):
            walk.append(-rel_index[rel.id])
        else:
            raise PackStreamError("a path relationship does not join its neighbouring nodes")
        walk.append(node_index[following])
    return (nodes, rels, walk)


def pack(value: Any, utc_datetime: bool = True) -> bytes:
    packer = Packer(utc_datetime)
    packer.pack(value)
    return bytes(packer.buffer)


# -- decoding ----------------------------------------------------------------------------------


class Unpacker:
    """Reads values from one buffer, hydrating structures into Quiver's values."""

    __slots__ = ("data", "position", "utc_datetime")

    def __init__(self, data: bytes | bytearray | memoryview, utc_datetime: bool = True) -> None:
        # bytes, not a memoryview: slicing and decoding short strings (nearly all of them)
        # costs a third of what the same through a memoryview does.
        self.data = data if type(data) is bytes else bytes(data)
        self.position = 0
        self.utc_datetime = utc_datetime

    def _take(self, size: int) -> bytes:
        start = self.position
        end = start + size
        if end > len(self.data):
            raise PackStreamError("truncated PackStream value")
        self.position = end
        return self.data[start:end]

    def _byte(self) -> int:
        if self.position >= len(self.data):
            raise PackStreamError("truncated PackStream value")
        value = self.data[self.position]
        self.position += 1
        return value

    def at_end(self) -> bool:
        return self.position == len(self.data)

    def unpack_structure_header(self) -> tuple[int, int]:
        """(size, tag) of the structure at the cursor (a message)."""
        marker = self._byte()
        if not 0xB0 <= marker <= 0xBF:
            raise PackStreamError(f"expected a structure, found marker 0x{marker:02X}")
        return marker - 0xB0, self._byte()

    def unpack(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise PackStreamError("value nested too deeply")
        data = self.data
        position = self.position
        if position >= len(data):
            raise PackStreamError("truncated PackStream value")
        marker = data[position]
        self.position = position + 1
        if marker < 0x80:
            return marker
        high = marker & 0xF0
        if high == 0x80:
            return self._text(marker & 0x0F)
        if high == 0xA0:
            return self._map(marker & 0x0F, depth)
        if high == 0x90:
            return self._list(marker & 0x0F, depth)
        if marker >= 0xF0:
            return marker - 0x100
        if high == 0xB0:
            return self._struct(marker & 0x0F, self._byte(), depth)
        if marker == 0xC0:
            return None
        if marker == 0xC1:
            return _STRUCT_D.unpack(self._take(8))[0]
        if marker == 0xC2:
            return False
        if marker == 0xC3:
            return True
        if marker == 0xC8:
            return _STRUCT_B.unpack(self._take(1))[0]
        if marker == 0xC9:
            return _STRUCT_H.unpack(self._take(2))[0]
        if marker == 0xCA:
            return _STRUCT_I.unpack(self._take(4))[0]
        if marker == 0xCB:
            return _STRUCT_Q.unpack(self._take(8))[0]
        if marker in (0xCC, 0xCD, 0xCE):
            return bytes(self._take(self._size(marker - 0xCC)))
        if marker in (0xD0, 0xD1, 0xD2):
            return self._text(self._size(marker - 0xD0))
        if marker in (0xD4, 0xD5, 0xD6):
            return self._list(self._size(marker - 0xD4), depth)
        if marker in (0xD8, 0xD9, 0xDA):
            return self._map(self._size(marker - 0xD8), depth)
        raise PackStreamError(f"unknown PackStream marker 0x{marker:02X}")

    def _size(self, width: int) -> int:
        if width == 0:
            return int(self._byte())
        if width == 1:
            return int(_U16.unpack(self._take(2))[0])
        return int(_U32.unpack(self._take(4))[0])

    def _text(self, size: int) -> str:
        start = self.position
        end = start + size
        if end > len(self.data):
            raise PackStreamError("truncated PackStream value")
        self.position = end
        try:
            return self.data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            raise PackStreamError("a string is not valid UTF-8") from None

    def _list(self, size: int, depth: int) -> list[Any]:
        if size > len(self.data) - self.position:
            raise PackStreamError("truncated PackStream list")
        return [self.unpack(depth + 1) for _ in range(size)]

    def _map(self, size: int, depth: int) -> dict[str, Any]:
        data = self.data
        if size > len(data) - self.position:
            raise PackStreamError("truncated PackStream map")
        out: dict[str, Any] = {}
        for _ in range(size):
            position = self.position
            if position < len(data) and 0x80 <= data[position] <= 0x8F:
                self.position = position + 1  # a short key, read here (nearly every key)
                key = self._text(data[position] & 0x0F)
            else:
                key = self.unpack(depth + 1)
                if not isinstance(key, str):
                    raise PackStreamError("map keys must be strings")
            out[key] = self.unpack(depth + 1)
        return out

    def _struct(self, size: int, tag: int, depth: int) -> Any:
        fields = [self.unpack(depth + 1) for _ in range(size)]
        return hydrate(tag, fields, self.utc_datetime)


def _check(fields: list[Any], *types: type | tuple[type, ...]) -> None:
    if len(fields) != len(types):
        raise PackStreamError(f"a structure with {len(fields)} fields, expected {len(types)}")
    for item, kind in zip(fields, types, strict=True):
        if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            raise PackStreamError("a structure field has the wrong type")


_NUMBER = (int, float)


def hydrate(tag: int, fields: list[Any], utc_datetime: bool = True) -> Any:
    """The Quiver value of a structure (tag and decoded fields)."""
    if tag == DATE:
        _check(fields, int)
        return sv.Date(fields[0])
    if tag == TIME:
        _check(fields, int, int)
        return sv.Time(fields[0], fields[1])
    if tag == LOCAL_TIME:
        _check(fields, int)
        return sv.LocalTime(fields[0])
    if tag == LOCAL_DATE_TIME:
        _check(fields, int, int)
        return sv.LocalDateTime(fields[0], fields[1])
    if tag == DURATION:
        _check(fields, int, int, int, int)
        return sv.Duration(*fields)
    if tag in (DATE_TIME, LEGACY_DATE_TIME) and (tag == DATE_TIME) == utc_datetime:
        _check(fields, int, int, int)
        seconds, nanos, offset = fields
        if tag == LEGACY_DATE_TIME:
            seconds -= offset
        return sv.DateTime(seconds, nanos, offset)
    if tag == DATE_TIME_ZONE_ID and utc_datetime:
        _check(fields, int, int, str)
        seconds, nanos, zone = fields
        return sv.DateTime(seconds, nanos, _offset_at_instant(zone, seconds), zone)
    if tag == LEGACY_DATE_TIME_ZONE_ID and not utc_datetime:
        _check(fields, int, int, str)
        local, nanos, zone = fields
        offset = _offset_at_local(zone, local)
        return sv.DateTime(local - offset, nanos, offset, zone)
    if tag == POINT_2D:
        _check(fields, int, _NUMBER, _NUMBER)
        return sv.Point(fields[0], float(fields[1]), float(fields[2]))
    if tag == POINT_3D:
        _check(fields, int, _NUMBER, _NUMBER, _NUMBER)
        return sv.Point(fields[0], float(fields[1]), float(fields[2]), float(fields[3]))
    if tag == NODE:
        if len(fields) == 3:
            fields = [*fields, str(fields[0])]
        _check(fields, int, list, dict, str)
        if not all(isinstance(label, str) for label in fields[1]):
            raise PackStreamError("node labels must be strings")
        return Node(fields[0], frozenset(fields[1]), fields[2])
    if tag == RELATIONSHIP:
        if len(fields) == 5:
            fields = [*fields, str(fields[0]), str(fields[1]), str(fields[2])]
        _check(fields, int, int, int, str, dict, str, str, str)
        return Relationship(fields[0], fields[3], fields[1], fields[2], fields[4])
    if tag == UNBOUND_RELATIONSHIP:
        if len(fields) == 3:
            fields = [*fields, str(fields[0])]
        _check(fields, int, str, dict, str)
        return UnboundRelationship(fields[0], fields[1], fields[2])
    if tag == PATH:
        _check(fields, list, list, list)
        return _hydrate_path(*fields)
    raise PackStreamError(f"unknown structure tag 0x{tag:02X}")


def _zone(zone: str) -> ZoneInfo:
    # The engine's zone rules (the pinned tzdata), so both faces agree on every offset.
    try:
        return zone_info(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PackStreamError(f"unknown time zone {zone!r}") from None


def _offset_at_instant(zone: str, epoch_seconds: int) -> int:
    info = _zone(zone)
    try:
        instant = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=epoch_seconds)
    except OverflowError:
        raise PackStreamError("datetime out of range") from None
    delta = instant.astimezone(info).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _offset_at_local(zone: str, local_seconds: int) -> int:
    info = _zone(zone)
    try:
        local = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=local_seconds)
    except OverflowError:
        raise PackStreamError("datetime out of range") from None
    delta = info.utcoffset(local)
    return int(delta.total_seconds()) if delta is not None else 0


def _hydrate_path(nodes: list[Any], rels: list[Any], walk: list[Any]) -> Path:
    if not nodes or not all(isinstance(n, Node) for n in nodes):
        raise PackStreamError("a path's nodes must be nodes")
    if not all(isinstance(r, UnboundRelationship) for r in rels):
        raise PackStreamError("a path's relationships must be unbound relationships")
    if len(walk) % 2 or not all(isinstance(i, int) for i in walk):
        raise PackStreamError("a path's indices must be pairs of integers")
    path_nodes = [nodes[0]]
    path_rels: list[Relationship] = []
    for step in range(0, len(walk), 2):
        rel_at, node_at = walk[step], walk[step + 1]
        if rel_at == 0 or abs(rel_at) > len(rels) or not 0 <= node_at < len(nodes):
            raise PackStreamError("a path index is out of range")
        previous = path_nodes[-1]
        following = nodes[node_at]
        unbound = rels[abs(rel_at) - 1]
        start, end = (previous, following) if rel_at > 0 else (following, previous)
        path_rels.append(
            Relationship(unbound.id, unbound.type, start.id, end.id, unbound.properties)
        )
        path_nodes.append(following)
    return Path(tuple(path_nodes), tuple(path_rels))


def unpack(data: bytes | bytearray | memoryview, utc_datetime: bool = True) -> Any:
    unpacker = Unpacker(data, utc_datetime)
    value = unpacker.unpack()
    if not unpacker.at_end():
        raise PackStreamError("trailing bytes after a PackStream value")
    return value
