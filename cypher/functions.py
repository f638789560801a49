"""Scalar, list, string, math and type-conversion functions (aggregates live in the executor).

Each function takes evaluated arguments and returns a value; null in gives null out unless
Cypher says otherwise. Temporal and spatial constructors are delegated to `cypher.temporal`.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cypher import ast
from cypher.errors import CypherError, argument_error, type_error
from cypher.values import INT64_MAX, INT64_MIN, NodeRef, PathValue, RelRef, is_number, type_name
from store import values as sv

if TYPE_CHECKING:
    from cypher.executor import Context

MAX_RANGE_SIZE = 10_000_000
RANGE_CHUNK = 16_384
"""Items range() builds at a time (about a millisecond of work)."""


def _num(value: Any, name: str) -> None:
    if not is_number(value):
        raise type_error(f"{name}() expects a number, got {type_name(value)}")


def _math1(fn: Callable[[float], float]) -> Callable[..., Any]:
    def apply(ctx: Context, value: Any) -> Any:
        if value is None:
            return None
        _num(value, fn.__name__)
        try:
            return fn(value)
        except (ValueError, OverflowError):
            return math.nan

    return apply


def _abs(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    _num(value, "abs")
    if isinstance(value, int) and value == INT64_MIN:
        from cypher.errors import arithmetic_error

        raise arithmetic_error("integer overflow", "IntegerOverflow")
    return abs(value)


def _ceil(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    _num(value, "ceil")
    return float(math.ceil(value)) if math.isfinite(value) else float(value)


def _floor(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    _num(value, "floor")
    return float(math.floor(value)) if math.isfinite(value) else float(value)


def _round(ctx: Context, value: Any, precision: Any = 0, mode: Any = "HALF_UP") -> Any:
    if value is None or precision is None:
        return None
    _num(value, "round")
    if not math.isfinite(value):
        return float(value)
    from decimal import (
        ROUND_CEILING,
        ROUND_DOWN,
        ROUND_FLOOR,
        ROUND_HALF_DOWN,
        ROUND_HALF_EVEN,
        ROUND_HALF_UP,
        ROUND_UP,
        Decimal,
    )

    modes = {
        "HALF_UP": ROUND_HALF_UP,
        "HALF_DOWN": ROUND_HALF_DOWN,
        "HALF_EVEN": ROUND_HALF_EVEN,
        "UP": ROUND_UP,
        "DOWN": ROUND_DOWN,
        "CEILING": ROUND_CEILING,
        "FLOOR": ROUND_FLOOR,
    }
    if precision == 0 and mode == "HALF_UP":
        return float(math.floor(value + 0.5))
    from decimal import InvalidOperation

    rounding = modes.get(str(mode).upper())
    if rounding is None:
        raise argument_error(f"unknown rounding mode {mode}", "InvalidArgumentValue")
    quant = Decimal(1).scaleb(-int(precision))
    try:
        return float(Decimal(repr(float(value))).quantize(quant, rounding=rounding))
    except InvalidOperation:
        return float(value)


def _sign(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    _num(value, "sign")
    return (value > 0) - (value < 0)


def _sqrt(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    _num(value, "sqrt")
    return math.sqrt(value) if value >= 0 else math.nan


def _log(fn: Callable[[float], float]) -> Callable[..., Any]:
    def apply(ctx: Context, value: Any) -> Any:
        if value is None:
            return None
        _num(value, "log")
        if value < 0:
            return math.nan
        if value == 0:
            return -math.inf
        return fn(value)

    return apply


def _atan2(ctx: Context, y: Any, x: Any) -> Any:
    if y is None or x is None:
        return None
    return math.atan2(y, x)


def _cot(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    tangent = math.tan(value)
    return math.inf if tangent == 0 else 1 / tangent


def _haversin(ctx: Context, value: Any) -> Any:
    return None if value is None else (1 - math.cos(value)) / 2


# -- strings -------------------------------------------------------------------------------


def _str_arg(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise type_error(f"{name}() expects a string, got {type_name(value)}")
    return value


def _string1(fn: Callable[[str], str], name: str) -> Callable[..., Any]:
    def apply(ctx: Context, value: Any) -> Any:
        if value is None:
            return None
        return fn(_str_arg(value, name))

    return apply


def _replace(ctx: Context, original: Any, search: Any, replacement: Any) -> Any:
    if original is None or search is None or replacement is None:
        return None
    return _str_arg(original, "replace").replace(
        _str_arg(search, "replace"), _str_arg(replacement, "replace")
    )


def _int_arg(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise type_error(f"{name}() expects an integer, got {type_name(value)}")
    return value


def _substring(ctx: Context, original: Any, start: Any, length: Any = None) -> Any:
    if original is None:
        return None
    text = _str_arg(original, "substring")
    begin = _int_arg(start, "substring")
    if begin < 0:
        raise argument_error("substring start must not be negative", "NumberOutOfRange")
    if length is None:
        return text[begin:]
    count = _int_arg(length, "substring")
    if count < 0:
        raise argument_error("substring length must not be negative", "NumberOutOfRange")
    return text[begin : begin + count]


def _left(ctx: Context, original: Any, length: Any) -> Any:
    if original is None:
        return None
    if length is None:
        raise argument_error("left() length must not be null", "NumberOutOfRange")
    count = _int_arg(length, "left")
    if count < 0:
        raise argument_error("left() length must not be negative", "NumberOutOfRange")
    return _str_arg(original, "left")[:count]


def _right(ctx: Context, original: Any, length: Any) -> Any:
    if original is None:
        return None
    if length is None:
        raise argument_error("right() length must not be null", "NumberOutOfRange")
    count = _int_arg(length, "right")
    if count < 0:
        raise argument_error("right() length must not be negative", "NumberOutOfRange")
    text = _str_arg(original, "right")
    return text[len(text) - count :] if count else ""


def _split(ctx: Context, original: Any, delimiter: Any) -> Any:
    if original is None or delimiter is None:
        return None
    text = _str_arg(original, "split")
    if isinstance(delimiter, list):
        parts = [text]
        for d in delimiter:
            parts = [piece for part in parts for piece in part.split(d)]
        return parts
    sep = _str_arg(delimiter, "split")
    if sep == "":
        return list(text)
    return text.split(sep)


def _reverse(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value[::-1]
    if isinstance(value, list):
        return value[::-1]
    raise type_error(f"reverse() expects a string or list, got {type_name(value)}")


def _trimmer(name: str, side: str) -> Callable[..., Any]:
    """trim/btrim (both ends), ltrim, rtrim: spaces, or (Neo4j 5.20) any of the characters
    of a second argument: btrim('xxyyhelloxyxy', 'xy') is 'hello'."""

    def apply(ctx: Context, value: Any, characters: Any = " ") -> Any:
        if value is None or characters is None:
            return None
        text = _str_arg(value, name)
        chars = _str_arg(characters, name)
        if side == "left":
            return text.lstrip(chars)
        if side == "right":
            return text.rstrip(chars)
        return text.strip(chars)

    return apply


_trim = _trimmer("trim", "both")
_ltrim = _trimmer("ltrim", "left")
_rtrim = _trimmer("rtrim", "right")
_btrim = _trimmer("btrim", "both")

NORMAL_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def _normal_form(form: Any) -> str:
    text = str(form).upper() if isinstance(form, str) else ""
    if text not in NORMAL_FORMS:
        raise argument_error(f"unknown normal form {form!r}: use NFC, NFD, NFKC or NFKD")
    return text


def _normalize(ctx: Context, value: Any, form: Any = "NFC") -> Any:
    if value is None:
        return None
    return unicodedata.normalize(_normal_form(form), _str_arg(value, "normalize"))  # type: ignore[arg-type]


def _is_normalized(ctx: Context, value: Any, form: Any) -> Any:
    """`x IS [form] NORMALIZED`: null for anything but a string."""
    if not isinstance(value, str):
        return None
    return unicodedata.is_normalized(_normal_form(form), value)  # type: ignore[arg-type]


def _char_length(ctx: Context, value: Any) -> Any:
    return None if value is None else len(_str_arg(value, "char_length"))


# -- conversions ---------------------------------------------------------------------------


def format_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        exp = int(exponent)
        return f"{mantissa}E{exp}"
    return text


def to_string(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (*sv.TEMPORAL_TYPES, sv.Point)):
        from cypher.temporal import format_value

        return format_value(value)
    raise type_error(f"toString() cannot convert a {type_name(value)}", "InvalidArgumentValue")


def _to_string(ctx: Context, value: Any) -> Any:
    return to_string(value)


def _to_string_or_null(ctx: Context, value: Any) -> Any:
    try:
        return to_string(value)
    except CypherError:
        return None


_INT_TEXT = re.compile(r"\s*[-+]?\d+\s*")


def to_integer(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        result = int(value)
        if not INT64_MIN <= result <= INT64_MAX:
            raise argument_error("integer out of range", "NumberOutOfRange")
        return result
    if isinstance(value, str):
        text = value.strip()
        try:
            if _INT_TEXT.fullmatch(text):
                result = int(text)
            else:
                number = float(text)
                if not math.isfinite(number):
                    return None
                result = int(number)
        except ValueError:
            return None
        if not INT64_MIN <= result <= INT64_MAX:
            return None
        return result
    raise type_error(f"toInteger() cannot convert a {type_name(value)}", "InvalidArgumentValue")


def to_float(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        raise type_error("toFloat() cannot convert a BOOLEAN", "InvalidArgumentValue")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    raise type_error(f"toFloat() cannot convert a {type_name(value)}", "InvalidArgumentValue")


def to_boolean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        return {"true": True, "false": False}.get(lowered)
    if isinstance(value, int):
        return value != 0
    raise type_error(f"toBoolean() cannot convert a {type_name(value)}", "InvalidArgumentValue")


def _or_null(fn: Callable[[Any], Any]) -> Callable[..., Any]:
    def apply(ctx: Context, value: Any) -> Any:
        try:
            return fn(value)
        except CypherError:
            return None

    return apply


def _list_of(fn: Callable[[Any], Any], name: str) -> Callable[..., Any]:
    """toIntegerList and friends: each item converted, or null where it cannot be."""
    convert = _or_null(fn)

    def apply(ctx: Context, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise type_error(f"{name}() expects a list, got {type_name(value)}")
        return [convert(ctx, item) for item in value]

    return apply


def _is_nan(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    _num(value, "isNaN")
    return isinstance(value, float) and math.isnan(value)


def _null_if(ctx: Context, value: Any, other: Any) -> Any:
    from cypher.values import equals

    return None if equals(value, other) is True else value


def _vectors(a: Any, b: Any, name: str) -> tuple[list[float], list[float]] | None:
    if a is None or b is None:
        return None
    for vector in (a, b):
        if not isinstance(vector, list) or not all(is_number(x) for x in vector) or not vector:
            raise type_error(f"{name}() expects two non-empty lists of numbers")
    if len(a) != len(b):
        raise argument_error(f"{name}(): the vectors have different dimensions")
    return [float(x) for x in a], [float(x) for x in b]


def _cosine(ctx: Context, a: Any, b: Any) -> Any:
    """vector.similarity.cosine (Neo4j 5.18): (1 + cos θ) / 2, in [0, 1]."""
    vectors = _vectors(a, b, "vector.similarity.cosine")
    if vectors is None:
        return None
    left, right = vectors
    norms = math.sqrt(sum(x * x for x in left)) * math.sqrt(sum(y * y for y in right))
    if norms == 0 or not math.isfinite(norms):
        return None
    cosine = sum(x * y for x, y in zip(left, right, strict=True)) / norms
    return (1 + max(-1.0, min(1.0, cosine))) / 2


def _euclidean(ctx: Context, a: Any, b: Any) -> Any:
    """vector.similarity.euclidean (Neo4j 5.18): 1 / (1 + squared distance), in (0, 1]."""
    vectors = _vectors(a, b, "vector.similarity.euclidean")
    if vectors is None:
        return None
    left, right = vectors
    return 1 / (1 + sum((x - y) ** 2 for x, y in zip(left, right, strict=True)))


def _within_bbox(ctx: Context, point: Any, lower_left: Any, upper_right: Any) -> Any:
    """point.withinBBox: null unless three points of one coordinate system; a WGS-84 box
    whose lower-left longitude exceeds its upper-right one crosses the date line."""
    points = (point, lower_left, upper_right)
    if any(not isinstance(p, sv.Point) for p in points):
        if any(p is not None and not isinstance(p, sv.Point) for p in points):
            raise type_error("point.withinBBox() expects three points")
        return None
    if len({p.srid for p in points}) != 1:
        return None
    if lower_left.srid in (4326, 4979) and lower_left.x > upper_right.x:
        inside_x = point.x >= lower_left.x or point.x <= upper_right.x
    else:
        inside_x = lower_left.x <= point.x <= upper_right.x
    inside = inside_x and lower_left.y <= point.y <= upper_right.y
    if point.z is not None and lower_left.z is not None and upper_right.z is not None:
        inside = inside and lower_left.z <= point.z <= upper_right.z
    return inside


def _value_type(ctx: Context, value: Any) -> Any:
    from cypher.types import value_type

    return value_type(value)


# -- graph and list functions --------------------------------------------------------------


def _id(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (NodeRef, RelRef)):
        return value.id
    raise type_error(f"id() expects a node or relationship, got {type_name(value)}")


def _element_id(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, NodeRef):
        return f"n{value.id}"
    if isinstance(value, RelRef):
        return f"r{value.id}"
    raise type_error(f"elementId() expects a node or relationship, got {type_name(value)}")


def _labels(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, NodeRef):
        raise type_error(f"labels() expects a node, got {type_name(value)}", "InvalidArgumentValue")
    return sorted(ctx.tx.node_labels(value.id))


def _type(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, RelRef):
        raise type_error(
            f"type() expects a relationship, got {type_name(value)}", "InvalidArgumentValue"
        )
    return ctx.tx.rel_type(value.id)


def _keys(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, NodeRef):
        return sorted(ctx.tx.node_properties(value.id))
    if isinstance(value, RelRef):
        return sorted(ctx.tx.rel_properties(value.id))
    if isinstance(value, dict):
        return list(value)
    raise type_error(
        f"keys() expects a map, node or relationship, got {type_name(value)}",
        "InvalidArgumentValue",
    )


def _properties(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, NodeRef):
        return dict(ctx.tx.node_properties(value.id))
    if isinstance(value, RelRef):
        return dict(ctx.tx.rel_properties(value.id))
    if isinstance(value, dict):
        return dict(value)
    raise type_error(
        f"properties() expects a map, node or relationship, got {type_name(value)}",
        "InvalidArgumentValue",
    )


def _start_node(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, RelRef):
        raise type_error("startNode() expects a relationship")
    return NodeRef(ctx.tx.rel_info(value.id).start)


def _end_node(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, RelRef):
        raise type_error("endNode() expects a relationship")
    return NodeRef(ctx.tx.rel_info(value.id).end)


def _length(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, PathValue):
        return len(value.rels)
    raise type_error(f"length() expects a path, got {type_name(value)}", "InvalidArgumentValue")


def _size(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, str)):
        return len(value)
    raise type_error(f"size() expects a list or string, got {type_name(value)}")


def _nodes(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, PathValue):
        raise type_error(f"nodes() expects a path, got {type_name(value)}", "InvalidArgumentValue")
    return list(value.nodes)


def _relationships(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, PathValue):
        raise type_error(
            f"relationships() expects a path, got {type_name(value)}", "InvalidArgumentValue"
        )
    return list(value.rels)


def _list_arg(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise type_error(f"{name}() expects a list, got {type_name(value)}")
    return value


def _head(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    items = _list_arg(value, "head")
    return items[0] if items else None


def _last(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    items = _list_arg(value, "last")
    return items[-1] if items else None


def _tail(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    return _list_arg(value, "tail")[1:]


def _range(ctx: Context, start: Any, end: Any, step: Any = 1) -> Any:
    for name, value in (("start", start), ("end", end), ("step", step)):
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise argument_error(f"range() {name} must be an integer", "InvalidArgumentType")
    if step == 0:
        raise argument_error("range() step must not be zero", "NumberOutOfRange")
    size = max(0, (end - start) // step + 1)
    if size > MAX_RANGE_SIZE:
        from cypher.errors import resource_error

        raise resource_error(f"range() of {size} elements exceeds {MAX_RANGE_SIZE}")
    # Built in chunks: one list(range(...)) of 9M items holds the GIL for ~0.6 s, which on
    # a node stops the event loop (and Raft's heartbeats) for that long; between chunks the
    # interpreter may switch threads and the statement's guard may stop it.
    stop = end + (1 if step > 0 else -1)
    if size <= RANGE_CHUNK:
        return list(range(start, stop, step))
    items: list[int] = []
    advance = ctx.executor.advance
    for first in range(start, stop, step * RANGE_CHUNK):
        chunk = range(first, stop, step)[:RANGE_CHUNK]
        items.extend(chunk)
        advance(len(chunk))
    return items


def _coalesce(ctx: Context, *values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _is_empty(ctx: Context, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, str, dict)):
        return len(value) == 0
    raise type_error(f"isEmpty() expects a list, string or map, got {type_name(value)}")


def _rand(ctx: Context) -> Any:
    return random.random()


def _random_uuid(ctx: Context) -> Any:
    # Random on the leader only: what it produced travels in the write set.
    return str(uuid.uuid4())


def _timestamp(ctx: Context) -> Any:
    return ctx.statement_time_ms


FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    # name: (function, min args, max args)
    "abs": (_abs, 1, 1),
    "ceil": (_ceil, 1, 1),
    "floor": (_floor, 1, 1),
    "round": (_round, 1, 3),
    "sign": (_sign, 1, 1),
    "sqrt": (_sqrt, 1, 1),
    "exp": (_math1(math.exp), 1, 1),
    "log": (_log(math.log), 1, 1),
    "log10": (_log(math.log10), 1, 1),
    "sin": (_math1(math.sin), 1, 1),
    "cos": (_math1(math.cos), 1, 1),
    "tan": (_math1(math.tan), 1, 1),
    "asin": (_math1(math.asin), 1, 1),
    "acos": (_math1(math.acos), 1, 1),
    "atan": (_math1(math.atan), 1, 1),
    "atan2": (_atan2, 2, 2),
    "cot": (_cot, 1, 1),
    "degrees": (_math1(math.degrees), 1, 1),
    "radians": (_math1(math.radians), 1, 1),
    "haversin": (_haversin, 1, 1),
    "pi": (lambda ctx: math.pi, 0, 0),
    "e": (lambda ctx: math.e, 0, 0),
    "rand": (_rand, 0, 0),
    "randomuuid": (_random_uuid, 0, 0),
    "tolower": (_string1(str.lower, "toLower"), 1, 1),
    "toupper": (_string1(str.upper, "toUpper"), 1, 1),
    "lower": (_string1(str.lower, "lower"), 1, 1),
    "upper": (_string1(str.upper, "upper"), 1, 1),
    "trim": (_trim, 1, 1),
    "ltrim": (_ltrim, 1, 2),
    "rtrim": (_rtrim, 1, 2),
    "btrim": (_btrim, 1, 2),
    "normalize": (_normalize, 1, 2),
    "is normalized": (_is_normalized, 2, 2),  # `x IS NORMALIZED`: no user can spell it
    "char_length": (_char_length, 1, 1),
    "character_length": (_char_length, 1, 1),
    "isnan": (_is_nan, 1, 1),
    "nullif": (_null_if, 2, 2),
    "valuetype": (_value_type, 1, 1),
    "vector.similarity.cosine": (_cosine, 2, 2),
    "vector.similarity.euclidean": (_euclidean, 2, 2),
    "point.withinbbox": (_within_bbox, 3, 3),
    "tointegerlist": (_list_of(to_integer, "toIntegerList"), 1, 1),
    "tofloatlist": (_list_of(to_float, "toFloatList"), 1, 1),
    "tobooleanlist": (_list_of(to_boolean, "toBooleanList"), 1, 1),
    "tostringlist": (_list_of(to_string, "toStringList"), 1, 1),
    "replace": (_replace, 3, 3),
    "substring": (_substring, 2, 3),
    "left": (_left, 2, 2),
    "right": (_right, 2, 2),
    "split": (_split, 2, 2),
    "reverse": (_reverse, 1, 1),
    "tostring": (_to_string, 1, 1),
    "tostringornull": (_to_string_or_null, 1, 1),
    "tointeger": (lambda ctx, v: to_integer(v), 1, 1),
    "tointegerornull": (_or_null(to_integer), 1, 1),
    "tofloat": (lambda ctx, v: to_float(v), 1, 1),
    "tofloatornull": (_or_null(to_float), 1, 1),
    "toboolean": (lambda ctx, v: to_boolean(v), 1, 1),
    "tobooleanornull": (_or_null(to_boolean), 1, 1),
    "id": (_id, 1, 1),
    "elementid": (_element_id, 1, 1),
    "labels": (_labels, 1, 1),
    "type": (_type, 1, 1),
    "keys": (_keys, 1, 1),
    "properties": (_properties, 1, 1),
    "startnode": (_start_node, 1, 1),
    "endnode": (_end_node, 1, 1),
    "length": (_length, 1, 1),
    "size": (_size, 1, 1),
    "nodes": (_nodes, 1, 1),
    "relationships": (_relationships, 1, 1),
    "head": (_head, 1, 1),
    "last": (_last, 1, 1),
    "tail": (_tail, 1, 1),
    "range": (_range, 2, 3),
    "coalesce": (_coalesce, 1, 1_000),
    "isempty": (_is_empty, 1, 1),
    "timestamp": (_timestamp, 0, 0),
}


def _exists_function(expr: ast.FunctionCall, row: dict[str, Any], ctx: Context) -> Any:
    from cypher.expressions import evaluate

    (arg,) = expr.args
    if isinstance(arg, ast.PatternExpr):
        return bool(ctx.executor.pattern_paths(arg.pattern, row, 1))
    return evaluate(arg, row, ctx) is not None


def call_function(expr: ast.FunctionCall, row: dict[str, Any], ctx: Context) -> Any:
    from cypher.expressions import evaluate

    name = expr.name.lower()
    if name == "exists":
        return _exists_function(expr, row, ctx)
    entry = FUNCTIONS.get(name)
    if entry is None:
        from cypher import temporal

        handler = temporal.FUNCTIONS.get(name)
        if handler is None:
            raise CypherError(
                f"unknown function {expr.name}", "UnknownFunction", kind="SyntaxError"
            )
        return handler(ctx, *[evaluate(arg, row, ctx) for arg in expr.args])
    function, _, _ = entry
    return function(ctx, *[evaluate(arg, row, ctx) for arg in expr.args])


def known_function(name: str) -> tuple[int, int] | None:
    """(min, max) argument counts of a known function, or None."""
    lowered = name.lower()
    if lowered == "exists":
        return 1, 1
    entry = FUNCTIONS.get(lowered)
    if entry is not None:
        return entry[1], entry[2]
    from cypher import temporal

    if lowered in temporal.FUNCTIONS:
        return 0, 10
    return None
