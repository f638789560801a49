"""NodeBackend: the Bolt face over a node's request paths (a fake node stands in for Raft)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import neo4j
import pytest

from cluster import errors
from cluster.bolt import server as bolt
from cluster.bolt.cluster_backend import NodeBackend
from cluster.errors import QuiverError
from cypher import Engine
from proto import admin_pb2, client_pb2
from store.memory import MemoryGraph

AUTH = ("admin", "pw")


@dataclass
class FakeAnswer:
    columns: list[str]
    rows: list[list[Any]]
    counters: dict[str, int]
    bookmark: str
    query_type: int


@dataclass
class FakeNode:
    """The request paths of cluster.node.Node over one in-memory graph."""

    id: int = 1
    leader: bool = True
    leader_id: int = 1
    learners: list[int] = field(default_factory=list)
    graph: MemoryGraph = field(default_factory=MemoryGraph)
    engine: Engine = field(default_factory=Engine)
    applied: int = 0
    calls: list[str] = field(default_factory=list)
    transactions: dict[str, Any] = field(default_factory=dict)

    def is_leader(self) -> bool:
        return self.leader

    def status(self) -> admin_pb2.NodeStatus:
        return admin_pb2.NodeStatus(
            id=self.id, leader_id=self.leader_id, voters=[1, 2, 3], learners=self.learners
        )

    def _not_leader(self) -> QuiverError:
        return QuiverError(errors.NOT_A_LEADER, f"n{self.id} is not the leader")

    async def read(
        self,
        query: str,
        parameters: dict[str, Any],
        consistency: int,
        bookmarks: list[str],
        privileges: Any = None,
        deadline: float | None = None,
    ) -> FakeAnswer:
        self.calls.append(f"read {consistency} {bookmarks}")
        result = self.engine.run(self.graph, query, parameters)
        if result.write_set:
            raise QuiverError("Neo.ClientError.Statement.AccessMode", "write in a read")
        return FakeAnswer(result.columns, result.rows, result.counters, "", 1)

    async def write(
        self,
        query: str,
        parameters: dict[str, Any],
        client_id: str,
        sequence: int,
        privileges: Any = None,
        deadline: float | None = None,
    ) -> FakeAnswer:
        if not self.leader:
            raise self._not_leader()
        result = self.engine.run(self.graph, query, parameters)
        if result.write_set:
            self.graph.apply(result.write_set)
            self.applied += 1
        return FakeAnswer(result.columns, result.rows, result.counters, f"quiver:{self.applied}", 3)

    async def wait_applied(self, index: int, timeout_s: float, code: str) -> None:
        if index > self.applied:
            raise QuiverError(code, f"index {index} not applied (applied {self.applied})")

    async def begin(
        self, client_id: str, timeout_ms: int, privileges: Any = None, read_only: bool = False
    ) -> str:
        if not self.leader and not read_only:
            raise self._not_leader()
        tx_id = f"tx{len(self.transactions)}"
        self.calls.append(f"begin {'read' if read_only else 'write'} {tx_id}")
        self.transactions[tx_id] = (self.engine.begin(self.graph), read_only)
        return tx_id

    async def run_in_transaction(
        self, tx_id: str, query: str, parameters: dict[str, Any]
    ) -> FakeAnswer:
        transaction, read_only = self.transactions[tx_id]
        result = transaction.run(query, parameters)
        if read_only and transaction.tx.operations:
            del self.transactions[tx_id]
            raise QuiverError(errors.ACCESS_MODE, errors.WRITE_IN_READ_MODE)
        return FakeAnswer(result.columns, result.rows, result.counters, "", 3)

    async def commit(self, tx_id: str) -> str:
        write_set = self.transactions.pop(tx_id)[0].commit()
        if write_set:
            self.graph.apply(write_set)
            self.applied += 1
        return f"quiver:{self.applied}"

    def rollback(self, tx_id: str) -> None:
        self.transactions.pop(tx_id, None)

    async def forward_channel(self) -> Any:
        raise QuiverError(errors.UNAVAILABLE, "n1 knows no leader (election running)")


ADDRESSES = {1: "127.0.0.1:7101", 2: "127.0.0.1:7102", 3: "127.0.0.1:7103", 4: "127.0.0.1:7104"}


@pytest.fixture
async def cluster_node() -> AsyncIterator[tuple[FakeNode, bolt.BoltServer]]:
    node = FakeNode()
    backend = NodeBackend(node, ADDRESSES, {"admin": "pw"})
    async with bolt.BoltServer(backend, "127.0.0.1", 0, insecure=True) as server:
        yield node, server


async def test_route_names_the_leader_writer_other_members_readers_all_routers() -> None:
    node = FakeNode(leader_id=2, learners=[4])
    backend = NodeBackend(node, ADDRESSES, {})
    info = bolt.ConnectionInfo("c", "s")
    table = await backend.route(None, "neo4j", (), info)
    assert table.writers == (ADDRESSES[2],)
    assert table.readers == (ADDRESSES[1], ADDRESSES[3], ADDRESSES[4])
    assert table.routers == tuple(ADDRESSES[i] for i in (1, 2, 3, 4))
    leaderless = await NodeBackend(FakeNode(leader_id=0), ADDRESSES, {}).route(
        None, "neo4j", (), info
    )
    assert leaderless.writers == ()


async def test_driver_writes_reads_and_transactions_go_through_the_node_paths(
    cluster_node: tuple[FakeNode, bolt.BoltServer],
) -> None:
    node, server = cluster_node
    async with neo4j.AsyncGraphDatabase.driver(f"bolt://{server.address}", auth=AUTH) as d:
        async with d.session() as session:
            await (await session.run("CREATE (:N {v: 1})")).consume()
            bookmarks = await session.last_bookmarks()
        assert bookmarks.raw_values == frozenset({"quiver:1"})
        async with d.session(bookmarks=bookmarks, default_access_mode="READ") as session:

            async def count(tx: neo4j.AsyncManagedTransaction) -> int:
                return int((await (await tx.run("MATCH (n:N) RETURN count(n) AS c")).single())["c"])

            assert await session.execute_read(count) == 1
            await (await session.run("MATCH (n:N) RETURN count(n)")).consume()
        # The read transaction on this node (after its bookmarks), the auto-commit read causal.
        assert node.calls[:2] == [
            "begin read tx0",
            f"read {client_pb2.CONSISTENCY_CAUSAL} ['quiver:1']",
        ]
        async with d.session() as session:
            tx = await session.begin_transaction()
            await tx.run("CREATE (:N {v: 2})")
            await tx.commit()
            assert (await session.last_bookmarks()).raw_values == frozenset({"quiver:2"})
