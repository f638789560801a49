"""The lifecycle of a node's explicit transactions, without Raft or a store: the writes the
open transactions hold are bounded together (``MAX_OPEN_TRANSACTION_BYTES``; before, 1000
open transactions could each hold 16 MiB), what a transaction held is given back when it
ends however it ends, and its snapshot is closed once, and never under a statement still
running (a rollback, or a caller that went away, while a thread runs it)."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from cluster import errors
from cluster import node as node_module
from cluster.errors import QuiverError
from cluster.node import Node, _OpenTransaction
from cypher import Engine
from store.memory import MemoryGraph

WRITE = "UNWIND range(1, 100) AS i CREATE (:N {i: i, pad: 'abcdefghijklmnop'})"


class _Snapshot:
    def __init__(self) -> None:
        self.closed_event = threading.Event()

    @property
    def closed(self) -> bool:
        return self.closed_event.is_set()

    def close(self) -> None:
        self.closed_event.set()


@pytest.fixture
def node() -> Iterator[Node]:
    """A node with only what explicit transactions use (no Raft, no store)."""
    node = Node.__new__(Node)
    node.id = 1
    node._transactions = {}
    node._open_write_bytes = 0
    node._timed_out = collections.OrderedDict()
    node._quick = {}
    node.sm = SimpleNamespace(lock=SimpleNamespace(writer_waiting_since=None))  # type: ignore[assignment]
    node._read_hold_s = 0.25
    with ThreadPoolExecutor(1) as pool:
        node._readers = node._writers = pool
        yield node


def _open(node: Node, tx_id: str, read_only: bool = False) -> _Snapshot:
    snapshot = _Snapshot()
    node._transactions[tx_id] = _OpenTransaction(
        tx_id,
        Engine().begin(MemoryGraph()),
        snapshot,  # type: ignore[arg-type]
        0,
        time.monotonic() + 30,
        "",
        asyncio.Lock(),
        statements=None if read_only else [],
        read_only=read_only,
    )
    return snapshot


async def test_open_transactions_hold_a_bounded_amount_of_writes_together(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_snapshot = _open(node, "first")
    await node.run_in_transaction("first", WRITE, {})
    one = node._open_write_bytes
    assert one > 0 and node._transactions["first"].write_bytes == one
    monkeypatch.setattr(node_module, "MAX_OPEN_TRANSACTION_BYTES", one * 2 + one // 2)
    await node.run_in_transaction("first", WRITE, {})
    _open(node, "second")
    with pytest.raises(QuiverError) as refused:
        await node.run_in_transaction("second", WRITE, {})
    assert refused.value.code == errors.MEMORY_POOL and refused.value.retryable
    assert "second" not in node._transactions  # rolled back, as Neo4j does
    assert node._open_write_bytes == 2 * one
    # Reads take nothing; an ended transaction gives its writes back.
    _open(node, "third")
    await node.run_in_transaction("third", "MATCH (n) RETURN count(n)", {})
    assert node.rollback("first") and first_snapshot.closed
    assert node._open_write_bytes == 0
    await node.run_in_transaction("third", WRITE, {})
    assert node._open_write_bytes == one


async def _running_statement(
    node: Node,
) -> tuple[_Snapshot, threading.Event, asyncio.Task[object]]:
    """An open transaction "t" whose statement waits in its thread: (its snapshot, the
    event that lets the statement go on, the task awaiting it)."""
    snapshot = _open(node, "t")
    started, release = threading.Event(), threading.Event()
    transaction = node._transactions["t"].transaction
    run = transaction.run

    def held(query: str, parameters: dict[str, object]) -> object:
        started.set()
        release.wait(30)
        return run(query, parameters)

    transaction.run = held  # type: ignore[method-assign, assignment]
    statement = asyncio.create_task(node.run_in_transaction("t", WRITE, {}))
    await asyncio.to_thread(started.wait, 30)
    return snapshot, release, statement  # type: ignore[return-value]


async def test_a_rollback_while_a_statement_runs_ends_it_once_the_thread_is_done(
    node: Node,
) -> None:
    snapshot, release, statement = await _running_statement(node)
    assert node.rollback("t")
    assert not snapshot.closed  # the thread still reads it
    release.set()
    with pytest.raises(QuiverError) as ended:
        await statement
    assert ended.value.code == errors.TRANSACTION_NOT_FOUND
    assert snapshot.closed
    assert node._open_write_bytes == 0  # before, the statement's writes were added after


async def test_a_failed_statement_closes_its_snapshot(node: Node) -> None:
    snapshot = _open(node, "t")
    with pytest.raises(QuiverError):
        await node.run_in_transaction("t", "RETURN 1 / 0", {})
    assert snapshot.closed and "t" not in node._transactions


async def test_a_caller_that_goes_away_ends_the_transaction_and_no_one_runs_beside_it(
    node: Node,
) -> None:
    snapshot, release, statement = await _running_statement(node)
    statement.cancel()  # its client's deadline, a disconnect
    with pytest.raises(asyncio.CancelledError):
        await statement
    assert "t" not in node._transactions  # no next statement beside the running thread
    with pytest.raises(QuiverError) as gone:
        await node.run_in_transaction("t", "RETURN 1", {})
    assert gone.value.code == errors.TRANSACTION_NOT_FOUND
    assert not snapshot.closed
    release.set()
    # Once the thread is done with it (a callback on the event loop closes it).
    assert await asyncio.to_thread(snapshot.closed_event.wait, 10)
    assert node._open_write_bytes == 0


async def test_a_statement_for_a_transaction_past_its_timeout_says_so(node: Node) -> None:
    """Neo4j's TransactionTimedOut, not "no such transaction" (and, to another user, still
    nothing about a transaction that is not theirs)."""
    snapshot = _open(node, "t")
    node._transactions["t"].owner = "ada"
    node._transactions["t"].deadline = time.monotonic() - 1
    with pytest.raises(QuiverError) as late:
        await node.run_in_transaction("t", "RETURN 1", {}, owner="ada")
    assert late.value.code == errors.TRANSACTION_TIMED_OUT and not late.value.retryable
    assert snapshot.closed
    with pytest.raises(QuiverError) as other:
        await node.commit("t", owner="bob")
    assert other.value.code == errors.TRANSACTION_NOT_FOUND


async def test_a_read_transaction_runs_quick_statements_and_its_commit_on_the_event_loop(
    node: Node,
) -> None:
    """As an auto-commit read would: a trip to a thread for each step of a managed read
    (BEGIN, RUN, COMMIT) cost it a third to a half of its latency over Bolt."""
    snapshot = _open(node, "r", read_only=True)
    tx = node._transactions["r"]
    first = await node.run_in_transaction("r", "RETURN 1 AS one", {})  # not known quick yet
    assert first.rows == [[1]] and tx.running is not None
    tx.running = None
    again = await node.run_in_transaction("r", "RETURN 1 AS one", {})
    assert again.rows == [[1]] and tx.running is None  # on the loop
    assert await node.commit("r") == "quiver:0" and tx.running is None
    assert snapshot.closed
