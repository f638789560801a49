"""A follower's Bolt face proxies a write transaction to the leader (cluster.bolt.forwarded),
against a scripted leader: an in-process gRPC QueryService on 127.0.0.1 that records what
it is sent. What a driver sees when the leader is lost mid-transaction: a retryable transient
error for a statement, a non-retryable one for a commit whose answer was lost; and a
transaction the client abandons is rolled back on the leader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import neo4j
import pytest
from neo4j import exceptions as neo4j_errors

from cluster import errors
from cluster.bolt import server as bolt
from cluster.bolt.cluster_backend import NodeBackend
from cluster.errors import QuiverError
from cluster.node import FORWARDED_METADATA
from proto import admin_pb2, client_pb2, client_pb2_grpc

AUTH = ("admin", "pw")
WAIT_S = 10.0


@dataclass
class ScriptedLeader(client_pb2_grpc.QueryServicer):
    """The leader's client API: answers Begin/Run/Commit/Rollback, or fails the call named
    in `fail` with its error; records (call, request, forwarded?) in order."""

    calls: list[tuple[str, Any, bool]] = field(default_factory=list)
    fail: dict[str, QuiverError] = field(default_factory=dict)

    def _seen(self, name: str, request: Any, context: Any) -> None:
        metadata = tuple(context.invocation_metadata() or ())
        self.calls.append((name, request, any(k == FORWARDED_METADATA for k, _ in metadata)))

    async def _maybe_fail(self, name: str, context: Any) -> None:
        error = self.fail.get(name)
        if error is not None:
            await context.abort(
                errors.grpc_status(error.code), error.message, errors.trailing_metadata(error)
            )

    async def Begin(self, request: Any, context: Any) -> client_pb2.BeginResponse:
        self._seen("Begin", request, context)
        await self._maybe_fail("Begin", context)
        return client_pb2.BeginResponse(transaction_id="tx-1")

    async def Run(self, request: Any, context: Any) -> AsyncIterator[client_pb2.RunResponse]:
        self._seen("Run", request, context)
        await self._maybe_fail("Run", context)
        yield client_pb2.RunResponse(
            header=client_pb2.Header(columns=["n"]),
            records=client_pb2.RecordBatch(
                records=[client_pb2.Record(values=[client_pb2.Value(integer=7)])]
            ),
            summary=client_pb2.Summary(
                counters=client_pb2.Counters(nodes_created=1, contains_updates=True),
                query_type=client_pb2.QUERY_TYPE_READ_WRITE,
            ),
        )

    async def Commit(self, request: Any, context: Any) -> client_pb2.CommitResponse:
        self._seen("Commit", request, context)
        await self._maybe_fail("Commit", context)
        return client_pb2.CommitResponse(bookmark="quiver:42")

    async def Rollback(self, request: Any, context: Any) -> client_pb2.RollbackResponse:
        self._seen("Rollback", request, context)
        return client_pb2.RollbackResponse()

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


@dataclass
class Follower:
    """A follower's request paths: never the leader, forwarding over `channel`."""

    channel: Any
    id: int = 2

    def is_leader(self) -> bool:
        return False

    def status(self) -> admin_pb2.NodeStatus:
        return admin_pb2.NodeStatus(id=self.id, leader_id=1, voters=[1, 2, 3])

    async def forward_channel(self) -> Any:
        if self.channel is None:
            raise QuiverError(errors.UNAVAILABLE, "n2 knows no leader (election running)")
        return self.channel

    async def begin(self, *args: Any, **kwargs: Any) -> str:
        raise AssertionError("a follower does not begin a write transaction locally")


@dataclass
class Setup:
    leader: ScriptedLeader
    grpc_server: Any
    bolt_address: str


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    leader = ScriptedLeader()
    grpc_server = grpc.aio.server()
    client_pb2_grpc.add_QueryServicer_to_server(leader, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    backend = NodeBackend(Follower(channel), {1: "127.0.0.1:1", 2: "127.0.0.1:2"}, dict([AUTH]))
    try:
        async with bolt.BoltServer(backend, "127.0.0.1", 0, insecure=True) as server:
            yield Setup(leader, grpc_server, server.address)
    finally:
        await channel.close()
        await grpc_server.stop(None)


async def _until(what: str, condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_begin_run_commit_go_to_the_leader_with_the_bookmarks_and_forwarded(
    setup: Setup,
) -> None:
    async with (
        neo4j.AsyncGraphDatabase.driver(f"bolt://{setup.bolt_address}", auth=AUTH) as driver,
        driver.session(bookmarks=neo4j.Bookmarks.from_raw_values(["quiver:9"])) as session,
    ):
        tx = await session.begin_transaction(timeout=7)
        record = await (await tx.run("CREATE (n) RETURN 7 AS n", v=1)).single(strict=True)
        assert record["n"] == 7
        await tx.commit()
        assert (await session.last_bookmarks()).raw_values == frozenset({"quiver:42"})
    names = setup.leader.names()
    assert names[:3] == ["Begin", "Run", "Commit"]
    (_, begin, begin_forwarded), (_, run, run_forwarded), (_, commit, _) = setup.leader.calls[:3]
    assert begin_forwarded and run_forwarded
    assert list(begin.bookmarks) == ["quiver:9"] and begin.timeout_ms == 7000
    assert begin.access_mode == client_pb2.ACCESS_MODE_WRITE
    assert run.transaction_id == "tx-1" and run.query == "CREATE (n) RETURN 7 AS n"
    assert commit.transaction_id == "tx-1"


async def test_a_transaction_the_client_abandons_is_rolled_back_on_the_leader(
    setup: Setup,
) -> None:
    async with neo4j.AsyncGraphDatabase.driver(f"bolt://{setup.bolt_address}", auth=AUTH) as driver:
        async with driver.session() as session:
            tx = await session.begin_transaction()
            await (await tx.run("CREATE (n) RETURN 7 AS n")).consume()
            await tx.rollback()
        assert setup.leader.names()[-1] == "Rollback"
        async with driver.session() as session:
            tx = await session.begin_transaction()
            await (await tx.run("CREATE (n) RETURN 7 AS n")).consume()
        # Closed without commit: the driver resets the connection, the server rolls back.
        await _until("the second rollback", lambda: setup.leader.names().count("Rollback") == 2)
    # A connection that ends (GOODBYE, then the socket closes) in the middle of a transaction.
    driver = neo4j.AsyncGraphDatabase.driver(f"bolt://{setup.bolt_address}", auth=AUTH)
    session = driver.session()
    tx = await session.begin_transaction()
    await (await tx.run("CREATE (n) RETURN 7 AS n")).consume()
    await driver.close()
    await _until("the third rollback", lambda: setup.leader.names().count("Rollback") == 3)


async def test_a_lost_leader_fails_the_statement_or_commit_with_a_retryable_error(
    setup: Setup,
) -> None:
    lost = [
        ("Commit", QuiverError(errors.NOT_A_LEADER, "n1 is not the leader")),
        ("Run", QuiverError(errors.TRANSACTION_NOT_FOUND, "no open transaction 'tx-1'")),
        ("Begin", QuiverError(errors.NOT_A_LEADER, "n1 is not the leader")),
    ]
    async with neo4j.AsyncGraphDatabase.driver(f"bolt://{setup.bolt_address}", auth=AUTH) as driver:
        for call, error in lost:
            setup.leader.fail = {call: error}
            async with driver.session() as session:
                with pytest.raises(neo4j_errors.TransientError) as failure:
                    tx = await session.begin_transaction()
                    await (await tx.run("CREATE (n) RETURN 7 AS n")).consume()
                    await tx.commit()
                assert failure.value.code == errors.UNAVAILABLE
                assert failure.value.is_retryable()
            # The session after it works again.
            setup.leader.fail = {}
            async with driver.session() as session:
                tx = await session.begin_transaction()
                await (await tx.run("CREATE (n) RETURN 7 AS n")).consume()
                await tx.commit()


async def test_the_leaders_own_errors_pass_through_unchanged(setup: Setup) -> None:
    setup.leader.fail = {"Run": QuiverError("Neo.ClientError.Statement.SyntaxError", "bad")}
    async with (
        neo4j.AsyncGraphDatabase.driver(f"bolt://{setup.bolt_address}", auth=AUTH) as driver,
        driver.session() as session,
    ):
        tx = await session.begin_transaction()
        with pytest.raises(neo4j_errors.ClientError) as failure:
            await (await tx.run("RETURN")).consume()
        assert failure.value.code == "Neo.ClientError.Statement.SyntaxError"


async def test_a_transaction_not_found_after_its_timeout_is_not_made_transient(
    setup: Setup,
) -> None:
    setup.leader.fail = {"Run": QuiverError(errors.TRANSACTION_NOT_FOUND, "timed out")}
    async with (
        neo4j.AsyncGraphDatabase.driver(f"bolt://{setup.bolt_address}", auth=AUTH) as driver,
        driver.session() as session,
    ):
        tx = await session.begin_transaction(timeout=0.001)
        await asyncio.sleep(0.01)  # past the transaction's 1 ms timeout
        with pytest.raises(neo4j_errors.ClientError) as failure:
            await (await tx.run("RETURN 1")).consume()
        assert failure.value.code == errors.TRANSACTION_NOT_FOUND


async def test_a_broken_leader_channel_is_transient_for_a_statement_unknown_for_a_commit(
    setup: Setup,
) -> None:
    async with (
        neo4j.AsyncGraphDatabase.driver(f"bolt://{setup.bolt_address}", auth=AUTH) as driver,
        driver.session() as running,
        driver.session() as committing,
    ):
        statement_tx = await running.begin_transaction()
        commit_tx = await committing.begin_transaction()
        await (await commit_tx.run("CREATE (n) RETURN 7 AS n")).consume()
        await setup.grpc_server.stop(None)
        with pytest.raises(neo4j_errors.TransientError) as statement_failure:
            await (await statement_tx.run("CREATE (n) RETURN 7 AS n")).consume()
        assert statement_failure.value.code == errors.UNAVAILABLE
        # A commit the leader did not answer may have been applied: not to be retried.
        with pytest.raises(neo4j_errors.DatabaseError) as commit_failure:
            await commit_tx.commit()
        assert commit_failure.value.code == errors.COMMIT_OUTCOME_UNKNOWN
        assert not commit_failure.value.is_retryable()


async def test_with_no_leader_known_a_write_transaction_fails_transient() -> None:
    backend = NodeBackend(Follower(None), {}, dict([AUTH]))
    async with (
        bolt.BoltServer(backend, "127.0.0.1", 0, insecure=True) as server,
        neo4j.AsyncGraphDatabase.driver(f"bolt://{server.address}", auth=AUTH) as driver,
        driver.session() as session,
    ):
        with pytest.raises(neo4j_errors.TransientError) as failure:
            await session.begin_transaction()
        assert failure.value.code == errors.UNAVAILABLE
