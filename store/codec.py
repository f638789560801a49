"""Deterministic bytes for property values and graph records.

Owns the binary encoding of every type in ``store.values`` (a tag byte, then fixed-width
big-endian fields or length-prefixed bytes; maps in sorted key order), so the same value is
the same bytes on every node, and ``index_key_bytes``: the encoding that index keys are a
MAC of, where values Cypher calls equal (1 and 1.0, 0.0 and -0.0) meet.

Also the bytes of a ``WriteSet`` (``encode_write_set``): what a Raft entry carries.

Must never: depend on dict insertion order, the platform or the interpreter; or accept a
value it cannot decode back to an equal one.
"""

from __future__ import annotations

import math
import struct
from typing import Final

from store.values import (
    INT64_MAX,
    INT64_MIN,
    Date,
    DateTime,
    Duration,
    InvalidValueError,
    LocalDateTime,
    LocalTime,
    Point,
    Time,
    Value,
)
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

_NULL: Final = 0x00
_FALSE: Final = 0x01
_TRUE: Final = 0x02
_INT: Final = 0x03
_FLOAT: Final = 0x04
_STRING: Final = 0x05
_BYTES: Final = 0x06
_LIST: Final = 0x07
_MAP: Final = 0x08
_DATE: Final = 0x10
_LOCAL_TIME: Final = 0x11
_TIME: Final = 0x12
_LOCAL_DATE_TIME: Final = 0x13
_DATE_TIME: Final = 0x14
_DURATION: Final = 0x15
_POINT: Final = 0x16

_I64 = struct.Struct(">q")
_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")
_I64X2 = struct.Struct(">qq")
_I64X4 = struct.Struct(">qqqq")

MAX_NESTING: Final = 64
"""Lists and maps deeper than this are refused: decoding must stay bounded."""


class DecodeError(ValueError):
    """Bytes that are not a value this codec wrote (after authentication: a bug or damage)."""


def _i64(value: int) -> bytes:
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidValueError("integer out of the 64-bit range")
    return _I64.pack(value)


def encode_value(value: Value) -> bytes:
    out = bytearray()
    _encode(value, out, 0, normalise=False)
    return bytes(out)


def index_key_bytes(value: Value) -> bytes:
    """Bytes equal for values Cypher's equality calls equal (numbers by value)."""
    out = bytearray()
    _encode(value, out, 0, normalise=True)
    return bytes(out)


def _encode_number(value: float, out: bytearray, normalise: bool) -> None:
    if normalise and math.isfinite(value) and value == int(value):
        as_int = int(value)
        if INT64_MIN <= as_int <= INT64_MAX:
            out.append(_INT)
            out += _I64.pack(as_int)
            return
    out.append(_FLOAT)
    out += _F64.pack(value)


def _encode_text(tag: int, data: bytes, out: bytearray) -> None:
    out.append(tag)
    out += _U32.pack(len(data))
    out += data


def _encode(value: Value, out: bytearray, depth: int, normalise: bool) -> None:
    if depth > MAX_NESTING:
        raise InvalidValueError("value nested too deeply")
    if value is None:
        out.append(_NULL)
    elif value is True:
        out.append(_TRUE)
    elif value is False:
        out.append(_FALSE)
    elif isinstance(value, int):
        out.append(_INT)
        out += _i64(value)
    elif isinstance(value, float):
        _encode_number(value, out, normalise)
    elif isinstance(value, str):
        _encode_text(_STRING, value.encode("utf-8"), out)
    elif isinstance(value, bytes):
        _encode_text(_BYTES, value, out)
    elif isinstance(value, list):
        out.append(_LIST)
        out += _U32.pack(len(value))
        for item in value:
            _encode(item, out, depth + 1, normalise)
    elif isinstance(value, dict):
        out.append(_MAP)
        out += _U32.pack(len(value))
        for key in sorted(value):
            if not isinstance(key, str):
                raise InvalidValueError("map keys must be strings")
            _encode_text(_STRING, key.encode("utf-8"), out)
            _encode(value[key], out, depth + 1, normalise)
    elif isinstance(value, Date):
        out.append(_DATE)
        out += _i64(value.epoch_day)
    elif isinstance(value, LocalTime):
        out.append(_LOCAL_TIME)
        out += _i64(value.nanos_of_day)
    elif isinstance(value, Time):
        out.append(_TIME)
        out += _i64(value.nanos_of_day) + _i64(value.offset_seconds)
    elif isinstance(value, LocalDateTime):
        out.append(_LOCAL_DATE_TIME)
        out += _i64(value.epoch_seconds) + _i64(value.nanos)
    elif isinstance(value, DateTime):
        out.append(_DATE_TIME)
        out += _i64(value.epoch_seconds) + _i64(value.nanos) + _i64(value.offset_seconds)
        if value.zone_id is None:
            out.append(0)
        else:
            out.append(1)
            _encode_text(_STRING, value.zone_id.encode("utf-8"), out)
    elif isinstance(value, Duration):
        out.append(_DURATION)
        out += _i64(value.months) + _i64(value.days) + _i64(value.seconds) + _i64(value.nanos)
    elif isinstance(value, Point):
        out.append(_POINT)
        out += _U32.pack(value.srid)
        out.append(0 if value.z is None else 1)
        for coordinate in (value.x, value.y, *(() if value.z is None else (value.z,))):
            _encode_number(float(coordinate), out, normalise)
    else:
        raise InvalidValueError(f"a {type(value).__name__} cannot be stored")


def decode_value(data: bytes) -> Value:
    value, end = decode_value_at(data, 0)
    if end != len(data):
        raise DecodeError("trailing bytes after a value")
    return value


def decode_value_at(data: bytes, offset: int, depth: int = 0) -> tuple[Value, int]:
    """The value encoded at `offset` and the offset just past it."""
    if depth > MAX_NESTING:
        raise DecodeError("value nested too deeply")
    try:
        return _decode(data, offset, depth)
    except (struct.error, IndexError, UnicodeDecodeError) as error:
        raise DecodeError(f"malformed value at offset {offset}: {type(error).__name__}") from None


def _text(data: bytes, offset: int) -> tuple[bytes, int]:
    (length,) = _U32.unpack_from(data, offset)
    start = offset + 4
    if start + length > len(data):
        raise DecodeError("length runs past the end")
    return data[start : start + length], start + length


def _decode(data: bytes, offset: int, depth: int) -> tuple[Value, int]:
    tag = data[offset]
    at = offset + 1
    if tag == _NULL:
        return None, at
    if tag == _FALSE:
        return False, at
    if tag == _TRUE:
        return True, at
    if tag == _INT:
        return _I64.unpack_from(data, at)[0], at + 8
    if tag == _FLOAT:
        return _F64.unpack_from(data, at)[0], at + 8
    if tag == _STRING:
        raw, at = _text(data, at)
        return raw.decode("utf-8"), at
    if tag == _BYTES:
        raw, at = _text(data, at)
        return raw, at
    if tag == _LIST:
        (count,) = _U32.unpack_from(data, at)
        at += 4
        if count > len(data) - at:
            raise DecodeError("list count larger than its bytes")
        items: list[Value] = []
        for _ in range(count):
            item, at = decode_value_at(data, at, depth + 1)
            items.append(item)
        return items, at
    if tag == _MAP:
        (count,) = _U32.unpack_from(data, at)
        at += 4
        if count > len(data) - at:
            raise DecodeError("map count larger than its bytes")
        mapping: dict[str, Value] = {}
        for _ in range(count):
            if data[at] != _STRING:
                raise DecodeError("map key is not a string")
            raw, at = _text(data, at + 1)
            item, at = decode_value_at(data, at, depth + 1)
            mapping[raw.decode("utf-8")] = item
        return mapping, at
    if tag == _DATE:
        return Date(_I64.unpack_from(data, at)[0]), at + 8
    if tag == _LOCAL_TIME:
        return LocalTime(_I64.unpack_from(data, at)[0]), at + 8
    if tag == _TIME:
        nanos, offset_seconds = _I64X2.unpack_from(data, at)
        return Time(nanos, offset_seconds), at + 16
    if tag == _LOCAL_DATE_TIME:
        seconds, nanos = _I64X2.unpack_from(data, at)
        return LocalDateTime(seconds, nanos), at + 16
    if tag == _DATE_TIME:
        seconds, nanos = _I64X2.unpack_from(data, at)
        (offset_seconds,) = _I64.unpack_from(data, at + 16)
        at += 24
        zone: str | None = None
        if data[at] == 1:
            if data[at + 1] != _STRING:
                raise DecodeError("zone id is not a string")
            raw, at = _text(data, at + 2)
            zone = raw.decode("utf-8")
        else:
            at += 1
        return DateTime(seconds, nanos, offset_seconds, zone), at
    if tag == _DURATION:
        months, days, seconds, nanos = _I64X4.unpack_from(data, at)
        return Duration(months, days, seconds, nanos), at + 32
    if tag == _POINT:
        (srid,) = _U32.unpack_from(data, at)
        has_z = data[at + 4] == 1
        at += 5
        coordinates: list[float] = []
        for _ in range(3 if has_z else 2):
            number, at = _decode(data, at, depth + 1)
            if not isinstance(number, (int, float)) or isinstance(number, bool):
                raise DecodeError("point coordinate is not a number")
            coordinates.append(float(number))
        z = coordinates[2] if has_z else None
        return Point(srid, coordinates[0], coordinates[1], z), at
    raise DecodeError(f"unknown value tag {tag:#04x} at offset {offset}")


# -- write sets ------------------------------------------------------------------------------

_WRITE_SET_FORMAT: Final = 1


def encode_write_set(write_set: WriteSet) -> bytes:
    """Deterministic bytes for a write set (what the leader proposes to Raft)."""
    operations: list[Value] = []
    for op in write_set.operations:
        operations.append(_encode_operation(op))
    return encode_value([_WRITE_SET_FORMAT, operations])


def _props(properties: tuple[tuple[str, Value], ...]) -> list[Value]:
    return [[key, value] for key, value in properties]


def _names(names: tuple[str, ...]) -> list[Value]:
    return list(names)


def _encode_operation(op: Operation) -> Value:
    if isinstance(op, CreateNode):
        return ["CreateNode", op.node_id, _names(op.labels), _props(op.properties)]
    if isinstance(op, DeleteNode):
        return ["DeleteNode", op.node_id]
    if isinstance(op, CreateRelationship):
        return ["CreateRelationship", op.rel_id, op.type, op.start, op.end, _props(op.properties)]
    if isinstance(op, DeleteRelationship):
        return ["DeleteRelationship", op.rel_id]
    if isinstance(op, SetNodeProperty):
        return ["SetNodeProperty", op.node_id, op.key, op.value]
    if isinstance(op, SetRelationshipProperty):
        return ["SetRelationshipProperty", op.rel_id, op.key, op.value]
    if isinstance(op, AddLabel):
        return ["AddLabel", op.node_id, op.label]
    if isinstance(op, RemoveLabel):
        return ["RemoveLabel", op.node_id, op.label]
    if isinstance(op, CreateIndex):
        return ["CreateIndex", op.name, op.label, _names(op.properties), op.on_relationships]
    if isinstance(op, DropIndex):
        return ["DropIndex", op.name]
    if isinstance(op, CreateUniqueConstraint):
        return ["CreateUniqueConstraint", op.name, op.label, _names(op.properties)]
    if isinstance(op, DropConstraint):
        return ["DropConstraint", op.name]
    raise InvalidValueError(f"unknown operation {type(op).__name__}")


def decode_write_set(data: bytes) -> WriteSet:
    """The write set `encode_write_set` made; DecodeError for anything else."""
    try:
        doc = decode_value(data)
        if not isinstance(doc, list) or len(doc) != 2 or doc[0] != _WRITE_SET_FORMAT:
            raise DecodeError("not a write set")
        raw_operations = doc[1]
        if not isinstance(raw_operations, list):
            raise DecodeError("not a write set")
        return WriteSet(tuple(_decode_operation(item) for item in raw_operations))
    except (TypeError, ValueError, AssertionError) as error:
        if isinstance(error, DecodeError):
            raise
        raise DecodeError(f"malformed write set ({type(error).__name__})") from None


def _int(value: Value) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DecodeError("expected an integer")
    return value


def _str(value: Value) -> str:
    if not isinstance(value, str):
        raise DecodeError("expected a string")
    return value


def _str_tuple(value: Value) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise DecodeError("expected a list of names")
    return tuple(_str(item) for item in value)


def _prop_tuple(value: Value) -> tuple[tuple[str, Value], ...]:
    if not isinstance(value, list):
        raise DecodeError("expected a list of properties")
    pairs: list[tuple[str, Value]] = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise DecodeError("expected a [key, value] pair")
        pairs.append((_str(item[0]), item[1]))
    return tuple(pairs)


def _decode_operation(item: Value) -> Operation:
    if not isinstance(item, list) or not item:
        raise DecodeError("expected an operation")
    kind, *args = item
    if kind == "CreateNode" and len(args) == 3:
        return CreateNode(_int(args[0]), _str_tuple(args[1]), _prop_tuple(args[2]))
    if kind == "DeleteNode" and len(args) == 1:
        return DeleteNode(_int(args[0]))
    if kind == "CreateRelationship" and len(args) == 5:
        return CreateRelationship(
            _int(args[0]), _str(args[1]), _int(args[2]), _int(args[3]), _prop_tuple(args[4])
        )
    if kind == "DeleteRelationship" and len(args) == 1:
        return DeleteRelationship(_int(args[0]))
    if kind == "SetNodeProperty" and len(args) == 3:
        return SetNodeProperty(_int(args[0]), _str(args[1]), args[2])
    if kind == "SetRelationshipProperty" and len(args) == 3:
        return SetRelationshipProperty(_int(args[0]), _str(args[1]), args[2])
    if kind == "AddLabel" and len(args) == 2:
        return AddLabel(_int(args[0]), _str(args[1]))
    if kind == "RemoveLabel" and len(args) == 2:
        return RemoveLabel(_int(args[0]), _str(args[1]))
    if kind == "CreateIndex" and len(args) == 4:
        return CreateIndex(_str(args[0]), _str(args[1]), _str_tuple(args[2]), args[3] is True)
    if kind == "DropIndex" and len(args) == 1:
        return DropIndex(_str(args[0]))
    if kind == "CreateUniqueConstraint" and len(args) == 3:
        return CreateUniqueConstraint(_str(args[0]), _str(args[1]), _str_tuple(args[2]))
    if kind == "DropConstraint" and len(args) == 1:
        return DropConstraint(_str(args[0]))
    raise DecodeError(f"unknown operation {kind!r}")
