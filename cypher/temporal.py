"""Temporal and spatial semantics: constructors, components, arithmetic and formatting.

`store.values` owns the shapes; this module owns what they mean in Cypher. Operations that
do not apply return NotImplemented so that the caller can raise a TypeError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cypher.errors import type_error
from store import values as sv


def add(left: Any, right: Any) -> Any:
    return NotImplemented


def subtract(left: Any, right: Any) -> Any:
    return NotImplemented


def multiply(left: Any, right: Any) -> Any:
    return NotImplemented


def divide(left: Any, right: Any) -> Any:
    return NotImplemented


def negate(value: Any) -> Any:
    return NotImplemented


def component(value: Any, key: str) -> Any:
    if isinstance(value, sv.Point):
        if key in ("x", "longitude"):
            return value.x
        if key in ("y", "latitude"):
            return value.y
        if key in ("z", "height"):
            return value.z
        if key == "srid":
            return value.srid
        if key == "crs":
            return {7203: "cartesian", 9157: "cartesian-3d", 4326: "wgs-84", 4979: "wgs-84-3d"}[
                value.srid
            ]
        return None
    raise type_error(f"no component {key!r}")


def format_value(value: Any) -> str:
    return repr(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {}
