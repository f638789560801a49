"""Cypher's value types as written in type predicates (`x IS :: INTEGER NOT NULL`) and
named by `valueType()`: reading a type from query text, and testing a value against it.

A type is a `TypeSpec`: a closed union of members, each a base name (Neo4j's canonical one:
"INTEGER", "ZONED DATETIME", ...), "LIST" with an inner `TypeSpec`, "ANY" or "NOTHING", and
whether null is excluded. Pure: no graph, no evaluation of expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cypher.values import NodeRef, PathValue, RelRef, type_name
from store import values as sv


@dataclass(frozen=True, slots=True)
class TypeMember:
    name: str
    not_null: bool = False
    inner: TypeSpec | None = None
    """The element type of a LIST."""


@dataclass(frozen=True, slots=True)
class TypeSpec:
    members: tuple[TypeMember, ...]


# Each spelling Neo4j 5 accepts, as a tuple of upper-case words, to its canonical name.
_SYNONYMS: dict[tuple[str, ...], str] = {
    ("ANY",): "ANY",
    ("NOTHING",): "NOTHING",
    ("NULL",): "NULL",
    ("BOOL",): "BOOLEAN",
    ("BOOLEAN",): "BOOLEAN",
    ("VARCHAR",): "STRING",
    ("STRING",): "STRING",
    ("INT",): "INTEGER",
    ("INTEGER",): "INTEGER",
    ("SIGNED", "INTEGER"): "INTEGER",
    ("INT64",): "INTEGER",
    ("INTEGER64",): "INTEGER",
    ("FLOAT",): "FLOAT",
    ("FLOAT64",): "FLOAT",
    ("DATE",): "DATE",
    ("LOCAL", "TIME"): "LOCAL TIME",
    ("TIME", "WITHOUT", "TIME", "ZONE"): "LOCAL TIME",
    ("ZONED", "TIME"): "ZONED TIME",
    ("TIME", "WITH", "TIME", "ZONE"): "ZONED TIME",
    ("LOCAL", "DATETIME"): "LOCAL DATETIME",
    ("TIMESTAMP", "WITHOUT", "TIME", "ZONE"): "LOCAL DATETIME",
    ("ZONED", "DATETIME"): "ZONED DATETIME",
    ("TIMESTAMP", "WITH", "TIME", "ZONE"): "ZONED DATETIME",
    ("DURATION",): "DURATION",
    ("POINT",): "POINT",
    ("NODE",): "NODE",
    ("ANY", "NODE"): "NODE",
    ("VERTEX",): "NODE",
    ("ANY", "VERTEX"): "NODE",
    ("RELATIONSHIP",): "RELATIONSHIP",
    ("ANY", "RELATIONSHIP"): "RELATIONSHIP",
    ("EDGE",): "RELATIONSHIP",
    ("ANY", "EDGE"): "RELATIONSHIP",
    ("MAP",): "MAP",
    ("ANY", "MAP"): "MAP",
    ("PATH",): "PATH",
    ("ANY", "PATH"): "PATH",
    ("PROPERTY", "VALUE"): "PROPERTY VALUE",
    ("ANY", "PROPERTY", "VALUE"): "PROPERTY VALUE",
    ("ANY", "VALUE"): "ANY",
}
_LONGEST = max(len(words) for words in _SYNONYMS)
_WORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_SYMBOL = re.compile(r"\s*([<>|])")


class TypeSyntaxError(ValueError):
    """The text after `::` is not a type."""


def read_type(text: str, pos: int) -> tuple[TypeSpec, int]:
    """The type starting at `pos` and the position after it. A `|` followed by something
    that is not a type ends the type (`[x IN l WHERE x :: INT | x]`)."""
    spec, end = _union(text, pos)
    if spec is None:
        raise TypeSyntaxError("expected a type after ::")
    return spec, end


def _union(text: str, pos: int) -> tuple[TypeSpec | None, int]:
    members: list[TypeMember] = []
    member, pos = _member(text, pos)
    if member is None:
        return None, pos
    members.extend(member)
    while True:
        bar = _SYMBOL.match(text, pos)
        if bar is None or bar.group(1) != "|":
            break
        following, after = _member(text, bar.end())
        if following is None:
            break
        members.extend(following)
        pos = after
    return TypeSpec(tuple(members)), pos


def _words(text: str, pos: int, count: int) -> tuple[list[str], list[int]]:
    words: list[str] = []
    ends: list[int] = []
    for _ in range(count):
        match = _WORD.match(text, pos)
        if match is None:
            break
        words.append(match.group(1).upper())
        pos = match.end()
        ends.append(pos)
    return words, ends


def _member(text: str, pos: int) -> tuple[list[TypeMember] | None, int]:
    words, ends = _words(text, pos, _LONGEST)
    if not words:
        return None, pos
    members: list[TypeMember]
    if words[0] in ("LIST", "ARRAY"):
        opening = _SYMBOL.match(text, ends[0])
        if opening is None or opening.group(1) != "<":
            raise TypeSyntaxError(f"{words[0]} needs an element type: {words[0]}<...>")
        inner, after = _union(text, opening.end())
        closing = _SYMBOL.match(text, after)
        if inner is None or closing is None or closing.group(1) != ">":
            raise TypeSyntaxError(f"unterminated {words[0]}<...>")
        members, end = [TypeMember("LIST", inner=inner)], closing.end()
    elif (
        words[0] == "ANY" and (opening := _SYMBOL.match(text, ends[0])) and opening.group(1) == "<"
    ):
        inner, after = _union(text, opening.end())
        closing = _SYMBOL.match(text, after)
        if inner is None or closing is None or closing.group(1) != ">":
            raise TypeSyntaxError("unterminated ANY<...>")
        members, end = list(inner.members), closing.end()
    else:
        for length in range(len(words), 0, -1):
            name = _SYNONYMS.get(tuple(words[:length]))
            if name is not None:
                members, end = [TypeMember(name)], ends[length - 1]
                break
        else:
            return None, pos
    nots, not_ends = _words(text, end, 2)
    if nots == ["NOT", "NULL"]:
        if any(m.name == "NULL" for m in members):
            raise TypeSyntaxError("NULL NOT NULL is not a type")
        members = [TypeMember(m.name, True, m.inner) for m in members]
        end = not_ends[1]
    return members, end


_PROPERTY_TYPES = (bool, str, int, float, *sv.TEMPORAL_TYPES, sv.Point)


def _is_property_value(value: Any) -> bool:
    if isinstance(value, list):
        return all(v is not None and isinstance(v, _PROPERTY_TYPES) for v in value) and (
            len({type(v) if not isinstance(v, (int, float)) else float for v in value}) <= 1
        )
    return isinstance(value, _PROPERTY_TYPES)


def matches(value: Any, spec: TypeSpec) -> bool:
    """Whether `value` is of type `spec` (null is of every type not marked NOT NULL)."""
    return any(_matches_member(value, member) for member in spec.members)


def _matches_member(value: Any, member: TypeMember) -> bool:
    name = member.name
    if value is None:
        return name == "NULL" or (not member.not_null and name != "NOTHING")
    if name in ("ANY",):
        return True
    if name in ("NOTHING", "NULL"):
        return False
    if name == "LIST":
        assert member.inner is not None
        return isinstance(value, list) and all(matches(item, member.inner) for item in value)
    if name == "PROPERTY VALUE":
        return _is_property_value(value)
    return type_name(value) == name


def value_type(value: Any) -> str:
    """Neo4j's `valueType()`: the most precise type of a value, as Neo4j spells it."""
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return f"LIST<{_element_type(value)}> NOT NULL"
    if isinstance(value, (NodeRef, RelRef, PathValue)) or type_name(value):
        return f"{type_name(value)} NOT NULL"
    return "ANY NOT NULL"  # pragma: no cover - every value has a name


_ORDER = (
    "BOOLEAN",
    "STRING",
    "INTEGER",
    "FLOAT",
    "DATE",
    "LOCAL TIME",
    "ZONED TIME",
    "LOCAL DATETIME",
    "ZONED DATETIME",
    "DURATION",
    "POINT",
    "NODE",
    "RELATIONSHIP",
    "MAP",
    "PATH",
)


def _element_type(items: list[Any]) -> str:
    if not items:
        return "NOTHING"
    nullable = any(item is None for item in items)
    names: set[str] = set()
    lists = [item for item in items if isinstance(item, list)]
    for item in items:
        if item is not None and not isinstance(item, list):
            names.add(type_name(item))
    suffix = "" if nullable else " NOT NULL"
    parts = [f"{name}{suffix}" for name in _ORDER if name in names]
    if lists:
        inner = sorted({_element_type(item) for item in lists})
        parts.extend(f"LIST<{text}>{suffix}" for text in inner)
    if not parts:
        return "NULL"
    return " | ".join(parts)
