"""The set checker (lost writes, phantoms) and the bank checker (conserved totals)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.checkers import check_bank, check_set
from chaos.history import Operation, Status


def add(element: int, status: Status = Status.OK, at: int = 0) -> Operation:
    ret = None if status is Status.INFO else at + 5
    return Operation(element, "s", "add", element, None, at, ret, status)


def read(elements: list[Any], at: int = 1000) -> Operation:
    return Operation(-1, "s", "read", None, elements, at, at + 5, Status.OK)


def test_every_acknowledged_add_present_is_valid() -> None:
    result = check_set([add(1), add(2), read([1, 2])])
    assert result.valid is True
    assert result.acknowledged == 2 and result.anomalies == 0


def test_acknowledged_add_missing_from_final_read_is_lost() -> None:
    result = check_set([add(1), add(2), add(3), read([1, 3])])
    assert result.valid is False
    assert result.lost == {2}


def test_element_never_added_is_unexpected() -> None:
    result = check_set([add(1), read([1, 99])])
    assert result.valid is False
    assert result.unexpected == {99}


def test_add_that_certainly_failed_must_not_appear() -> None:
    result = check_set([add(1), add(2, Status.FAIL), read([1, 2])])
    assert result.valid is False
    assert result.failed_present == {2}


def test_indeterminate_adds_may_be_present_or_absent() -> None:
    result = check_set([add(1), add(2, Status.INFO), add(3, Status.INFO), read([1, 3])])
    assert result.valid is True
    assert result.recovered == {3}


def test_only_the_last_read_is_final() -> None:
    result = check_set([add(1, at=0), read([], at=1), add(2, at=10), read([1, 2], at=50)])
    assert result.valid is True
    lost = check_set([add(1), add(2, at=10), read([1, 2], at=50), read([1], at=90)])
    assert lost.lost == {2}


def test_no_final_read_is_unknown() -> None:
    assert check_set([add(1)]).valid is None


def test_duplicate_adds_are_refused() -> None:
    with pytest.raises(ValueError):
        check_set([add(1), add(1)])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(1, 60), st.integers(0, 2**32 - 1))
def test_dropping_any_acknowledged_add_from_the_final_read_is_caught(count: int, seed: int) -> None:
    rng = random.Random(seed)
    statuses = [rng.choice([Status.OK, Status.OK, Status.FAIL, Status.INFO]) for _ in range(count)]
    ops = [add(i, status, at=i) for i, status in enumerate(statuses)]
    present = [i for i, s in enumerate(statuses) if s is Status.OK or (s is Status.INFO and i % 2)]
    assert check_set([*ops, read(present)]).valid is True
    acked = [i for i, s in enumerate(statuses) if s is Status.OK]
    if acked:
        dropped = rng.choice(acked)
        result = check_set([*ops, read([i for i in present if i != dropped])])
        assert result.valid is False and result.lost == {dropped}


def bank_read(balances: dict[str, int]) -> Operation:
    return Operation(0, "bank", "read", None, balances, 0, 1, Status.OK)


def test_reads_that_conserve_the_total_are_valid() -> None:
    ops = [bank_read({"a": 50, "b": 50}), bank_read({"a": 30, "b": 70})]
    result = check_bank(ops, ["a", "b"], 100)
    assert result.valid and result.reads == 2


def test_read_of_a_half_applied_transfer_is_caught() -> None:
    result = check_bank([bank_read({"a": 30, "b": 50})], ["a", "b"], 100)
    assert not result.valid
    assert [a.kind for a in result.anomalies] == ["wrong-total"]


def test_negative_balance_and_missing_account_are_caught() -> None:
    result = check_bank([bank_read({"a": 110, "b": -10}), bank_read({"a": 100})], ["a", "b"], 100)
    assert {a.kind for a in result.anomalies} == {"negative", "missing-accounts"}
    assert check_bank([bank_read({"a": 110, "b": -10})], ["a", "b"], 100, allow_negative=True).valid
