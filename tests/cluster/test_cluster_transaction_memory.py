"""The writes a node's open transactions hold are bounded together, not only one by one:
a statement that would take them past ``MAX_OPEN_TRANSACTION_BYTES`` fails its transaction
with Neo4j's transient MemoryPoolOutOfMemoryError, and what a transaction held is given back
when it ends. Before, 1000 open transactions could each hold 16 MiB of writes."""

from __future__ import annotations

import asyncio
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
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def node() -> Iterator[Node]:
    """A node with only what explicit transactions use (no Raft, no store)."""
    node = Node.__new__(Node)
    node.id = 1
    node._transactions = {}
    node._open_write_bytes = 0
    node.sm = SimpleNamespace(lock=SimpleNamespace(writer_waiting_since=None))  # type: ignore[assignment]
    node._read_hold_s = 0.25
    with ThreadPoolExecutor(1) as pool:
        node._readers = node._writers = pool
        yield node


def _open(node: Node, tx_id: str) -> _Snapshot:
    snapshot = _Snapshot()
    node._transactions[tx_id] = _OpenTransaction(
        Engine().begin(MemoryGraph()),
        snapshot,  # type: ignore[arg-type]
        0,
        time.monotonic() + 30,
        "",
        asyncio.Lock(),
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
