"""Deterministic bytes: values and write sets round-trip, equal values index equally."""

from __future__ import annotations

import math

import pytest
from graph_strategies import value, write_sets
from hypothesis import given
from hypothesis import strategies as st

from store.codec import (
    DecodeError,
    decode_value,
    decode_write_set,
    encode_value,
    encode_write_set,
    index_key_bytes,
)
from store.values import InvalidValueError, Point, Value
from store.writeset import WriteSet


@given(value)
def test_every_value_round_trips(item: Value) -> None:
    assert repr(decode_value(encode_value(item))) == repr(item)


@given(write_sets)
def test_write_sets_round_trip(sets: list[WriteSet]) -> None:
    for write_set in sets:
        assert repr(decode_write_set(encode_write_set(write_set))) == repr(write_set)


def test_map_bytes_do_not_depend_on_insertion_order() -> None:
    assert encode_value({"a": 1, "b": [2]}) == encode_value({"b": [2], "a": 1})


@given(st.integers(-(1 << 53), 1 << 53))
def test_equal_numbers_share_an_index_key(number: int) -> None:
    assert index_key_bytes(number) == index_key_bytes(float(number))
    assert index_key_bytes([number]) == index_key_bytes([float(number)])


def test_distinct_kinds_never_share_an_index_key() -> None:
    keys = [index_key_bytes(v) for v in (1, True, "1", b"1", [1], 1.5, None)]
    assert len(set(keys)) == len(keys)
    assert index_key_bytes(-0.0) == index_key_bytes(0)
    assert index_key_bytes(Point(7203, 1.0, 2.0)) == index_key_bytes(Point(7203, 1, 2))
    assert math.isnan(decode_value(encode_value(float("nan"))))  # type: ignore[arg-type]


def test_out_of_range_integers_and_foreign_types_are_refused() -> None:
    with pytest.raises(InvalidValueError):
        encode_value(1 << 63)
    with pytest.raises(InvalidValueError):
        encode_value(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data", [b"", b"\x99", b"\x05\x00\x00\x00\x09ab", b"\x03\x00", b"\x07\xff"]
)
def test_malformed_bytes_are_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_value(data)
    with pytest.raises(DecodeError):
        decode_write_set(data)
