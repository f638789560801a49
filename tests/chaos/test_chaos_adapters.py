"""The graph workload's checker on hand-built histories: a clean history passes; a dangling
or phantom relationship, a negative count and a lost link are each caught; a link whose
deletion was attempted is not counted lost."""

from __future__ import annotations

from typing import Any

from chaos.adapters import check_graph
from chaos.history import Operation, Status

VERTICES = 4


def _op(
    index: int, op: str, input_: Any, output: Any = None, status: Status = Status.OK
) -> Operation:
    return Operation(
        process=0,
        key="graph",
        op=op,
        input=input_,
        output=output,
        call_ns=index * 10,
        return_ns=None if status is Status.INFO else index * 10 + 5,
        status=status,
        index=index,
    )


def _read(
    index: int, links: list[list[Any]], count: int | None = None, paths: int = 0
) -> Operation:
    seen = {"links": links, "count": len(links) if count is None else count, "paths": paths}
    return _op(index, "read", None, seen)


def test_a_clean_history_is_valid() -> None:
    ops = [
        _op(0, "link", [1, 0, 1]),
        _op(1, "link", [2, 1, 2]),
        _read(2, [[1, 0, 1, True], [2, 1, 2, True]], paths=1),
    ]
    result = check_graph(ops, VERTICES)
    assert result.valid is True
    assert result.reads == 1


def test_no_read_is_unknown_not_valid() -> None:
    assert check_graph([_op(0, "link", [1, 0, 1])], VERTICES).valid is None


def test_a_dangling_or_phantom_link_is_caught() -> None:
    ops = [
        _op(0, "link", [1, 0, 1]),
        _read(1, [[1, 0, 3, True], [9, 0, 1, True]]),
        _read(2, [[1, 0, 1, False]]),
    ]
    kinds = {a.kind for a in check_graph(ops, VERTICES).anomalies}
    assert {"dangling", "phantom"} <= kinds


def test_a_negative_count_is_caught() -> None:
    ops = [_op(0, "link", [1, 0, 1]), _read(1, [[1, 0, 1, True]], count=1, paths=-1)]
    result = check_graph(ops, VERTICES)
    assert [a.kind for a in result.anomalies] == ["negative-count"]


def test_an_acknowledged_link_missing_at_the_end_is_lost_unless_deleted() -> None:
    ops = [
        _op(0, "link", [1, 0, 1]),
        _op(1, "link", [2, 1, 2]),
        _op(2, "link", [3, 2, 3], status=Status.INFO),
        _op(3, "unlink", 2, status=Status.INFO),
        _read(4, []),
    ]
    result = check_graph(ops, VERTICES)
    assert result.valid is False
    assert result.lost == frozenset({1})  # 2 may have been deleted, 3 may never have been made
