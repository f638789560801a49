"""Statements a hostile or careless client may send end with a typed error, in bounded time
and memory: values that double themselves, SKIP/LIMIT beyond 64 bits, and statements that a
guard (`statement_guard`, the node's deadline and yield to the writer) stops part-way."""

from __future__ import annotations

import pytest

from cypher import CypherError, Engine, expressions
from cypher.executor import CHECK_EVERY_STEPS, statement_guard
from cypher.functions import RANGE_CHUNK
from store.memory import MemoryGraph

ENGINE = Engine()


def _run(query: str) -> CypherError:
    with pytest.raises(CypherError) as raised:
        ENGINE.run(MemoryGraph(), query)
    return raised.value


@pytest.mark.parametrize("clause", ["SKIP", "LIMIT"])
def test_skip_or_limit_beyond_64_bits_is_a_syntax_error_not_an_internal_one(clause: str) -> None:
    error = _run(f"UNWIND [1, 2, 3] AS x RETURN x {clause} 99999999999999999999")
    assert error.status_code == "Neo.ClientError.Statement.SyntaxError"
    assert "too large" in str(error)


@pytest.mark.parametrize(
    "query",
    [
        "RETURN size(reduce(s = [1], i IN range(1, 12) | s + s))",
        "RETURN size(reduce(s = [1], i IN range(1, 12) | s || s))",
        "RETURN size(reduce(s = [1], i IN range(1, 12) | s + [i] + s))",
    ],
)
def test_a_list_that_doubles_itself_stops_at_the_list_bound(
    query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expressions, "MAX_LIST_SIZE", 1000)
    error = _run(query)
    assert error.status_code == "Neo.ClientError.General.MemoryPoolOutOfMemoryError"
    assert "exceeds 1000" in str(error)


@pytest.mark.parametrize("operator", ["+", "||"])
def test_a_string_that_doubles_itself_stops_at_the_string_bound(
    operator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expressions, "MAX_STRING_CHARS", 4096)
    error = _run(f"RETURN size(reduce(s = 'x', i IN range(1, 13) | s {operator} s))")
    assert error.status_code == "Neo.ClientError.General.MemoryPoolOutOfMemoryError"
    assert "exceeds 4096" in str(error)
    # Under the bound the same operators still work.
    assert ENGINE.run(MemoryGraph(), "RETURN size('ab' + 'cd'), 'a' || 'b'").rows == [[4, "ab"]]


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    "query",
    [
        # a cartesian product counted in a stream (no intermediate result is materialised)
        "UNWIND range(1, 3000) AS a UNWIND range(1, 3000) AS b RETURN count(*)",
        # expression loops: no rows at all
        "RETURN reduce(t = 0, a IN range(1, 3000) | t + size([b IN range(1, 3000) | b]))",
        "RETURN all(a IN range(1, 3000) WHERE any(b IN range(1, 3000) WHERE b < 0))",
        # a MATCH whose WHERE keeps nothing
        "UNWIND range(1, 3000) AS a MATCH (n) WHERE n.x * 1 = a RETURN count(*)",
    ],
)
def test_a_guard_stops_a_long_statement_within_a_bounded_number_of_steps(query: str) -> None:
    graph = MemoryGraph()
    graph.apply(ENGINE.run(graph, "UNWIND range(1, 300) AS i CREATE (:N {x: -i})").write_set)
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise CypherError("stopped", kind="TransactionTimedOut")

    with statement_guard(check), pytest.raises(CypherError) as raised:
        ENGINE.run(graph, query)
    assert raised.value.status_code == "Neo.ClientError.Transaction.TransactionTimedOut"
    assert calls == 3  # asked every CHECK_EVERY_STEPS steps, stopped at the third
    # Outside the block statements run unguarded again.
    assert ENGINE.run(
        graph, "UNWIND range(1, $n) AS i RETURN count(*)", {"n": 4 * CHECK_EVERY_STEPS}
    ).rows == [[4 * CHECK_EVERY_STEPS]]


def test_a_guard_stops_a_traversal_whose_hops_all_fail_their_filter() -> None:
    graph = MemoryGraph()
    created = "CREATE (h:Hub) WITH h UNWIND range(1, 500) AS i CREATE (h)-[:R]->(:L)"
    graph.apply(ENGINE.run(graph, created).write_set)
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise CypherError("stopped", kind="TransactionTimedOut")

    query = "UNWIND range(1, 100) AS i MATCH (:Hub)-[:R]->(m {y: i}) RETURN count(*)"
    with statement_guard(check), pytest.raises(CypherError):
        ENGINE.run(graph, query)
    assert calls == 2


@pytest.mark.parametrize("shape", ["[x]", "{a: x}"])
def test_returning_a_value_nested_in_itself_is_a_typed_error(shape: str) -> None:
    error = _run(f"RETURN reduce(x = [], i IN range(1, 100000) | {shape}) AS v")
    assert error.status_code == "Neo.ClientError.General.MemoryPoolOutOfMemoryError"
    assert "nested too deeply" in str(error)


def test_range_is_built_in_chunks_that_the_guard_can_stop() -> None:
    # One list(range(...)) of millions of items holds the GIL (a node's event loop) for
    # most of a second; built in chunks, the guard is asked between them.
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1

    with statement_guard(check):
        rows = ENGINE.run(MemoryGraph(), "RETURN size(range(1, 200000)) AS n").rows
    assert rows == [[200000]] and calls >= 200000 // RANGE_CHUNK - 1

    def stop() -> None:
        raise CypherError("stopped", kind="TransactionTimedOut")

    with statement_guard(stop), pytest.raises(CypherError):
        ENGINE.run(MemoryGraph(), "RETURN size(range(1, 200000)) AS n")


@pytest.mark.parametrize(
    ("start", "end", "step"),
    [
        (1, 100_000, 1),
        (1, 100_000, 7),
        (100_000, 1, -3),
        (-50_000, 50_000, 2),
        (5, 5, 1),
        (1, 0, 1),
    ],
)
def test_range_in_chunks_equals_the_whole_range(start: int, end: int, step: int) -> None:
    rows = ENGINE.run(
        MemoryGraph(), "RETURN range($a, $b, $c) AS r", {"a": start, "b": end, "c": step}
    ).rows
    assert rows == [[list(range(start, end + (1 if step > 0 else -1), step))]]
