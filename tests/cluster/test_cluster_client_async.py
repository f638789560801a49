"""The async client (`cluster.connect_async`) and zone-preferring reads, against one real
three-node cluster shared by the tests of this file: writes, reads at the three consistency
levels, a transaction, a write whose answer is lost across a leadership transfer and that is
retried with its request id and applied once, many tasks on one client, and reads that go to
the client's zone while its replica keeps up and elsewhere when it does not."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LocalCluster, start_cluster, wait_for

from cluster import connect_async, errors
from cluster.client import AsyncClient, ClientError, Member, TransientError, connect
from cluster.session import bookmark_index
from proto import admin_pb2, admin_pb2_grpc, client_pb2

WAIT_S = 30.0
TASKS = 16
WRITES_PER_TASK = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from start_cluster(tmp_path_factory.mktemp("client"))


async def eventually(what: str, check: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_S:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def _index(bookmark: str) -> int:
    index = bookmark_index(bookmark)
    assert index is not None, bookmark
    return index


async def test_async_writes_are_read_back_at_every_consistency_level(
    cluster: LocalCluster,
) -> None:
    async with connect_async(cluster.directory) as client:
        written = await client.run("CREATE (:Note {text: $text})", {"text": "hello"})
        assert written.counters == {"nodes_created": 1, "properties_set": 1, "labels_added": 1}
        assert client.bookmarks == {written.bookmark}
        query = "MATCH (n:Note) RETURN n.text AS text"
        linearizable = await client.run(query, mode="read", consistency="linearizable")
        assert linearizable.rows == [["hello"]]
        assert linearizable.served_by == client.leader_id
        causal = await client.run(query, mode="read", consistency="causal")
        assert causal.rows == [["hello"]] and causal.applied_index >= _index(written.bookmark)

    # Stale reads answer at once from the replica of the client's zone, whatever it applied.
    for member in cluster.client.members:
        async with connect_async(cluster.directory, zone=member.zone) as zoned:

            async def seen(zoned: AsyncClient = zoned, node_id: int = member.id) -> Any:
                stale = await zoned.run(query, mode="read", consistency="stale")
                assert stale.served_by == node_id
                return stale.applied_index >= _index(written.bookmark) and stale.rows

            assert await eventually(f"n{member.id} to apply the note", seen) == [["hello"]]

    async with connect_async(cluster.directory) as client:
        with pytest.raises(ClientError) as refused:
            await client.run("CREATE (:Oops", mode="write")
        assert refused.value.code == "Neo.ClientError.Statement.SyntaxError"


async def test_an_async_transaction_commits_its_statements_together_or_not_at_all(
    cluster: LocalCluster,
) -> None:
    async with connect_async(cluster.directory) as client:
        async with client.transaction() as tx:
            await tx.run("CREATE (:Account {name: 'a', balance: 10})")
            seen = await tx.run("MATCH (a:Account) RETURN a.balance AS b")
            assert seen.rows == [[10]], "a statement sees the transaction's earlier writes"
            await tx.run("MATCH (a:Account {name: 'a'}) SET a.balance = a.balance - 3")
        committed = next(iter(client.bookmarks))

        with pytest.raises(RuntimeError, match="abandon"):
            async with client.transaction() as tx:
                await tx.run("MATCH (a:Account) SET a.balance = 0")
                raise RuntimeError("abandon the transaction")
        assert not tx.open
        with pytest.raises(ClientError) as ended:
            await tx.run("RETURN 1")
        assert ended.value.code == errors.TRANSACTION_NOT_FOUND

        balances = await client.run(
            "MATCH (a:Account) RETURN a.balance AS b", mode="read", consistency="linearizable"
        )
        assert balances.rows == [[7]]
        assert client.bookmarks == {committed}


class _LosesTheFirstAnswer(AsyncClient):
    """Its first write is applied by the cluster, but the answer never arrives: leadership
    moves to another node before the client hears back and retries."""

    def __init__(self, cluster: LocalCluster) -> None:
        members = [Member(m.id, m.zone, m.address) for m in cluster.client.members]
        super().__init__(
            members,
            cluster.client.credentials,
            timeout_s=WAIT_S,
            metadata=cluster.client.metadata,
        )
        self.cluster = cluster
        self.lost: list[Any] = []
        self.requests: list[client_pb2.RunRequest] = []

    async def _run_once(
        self, member: Member, request: client_pb2.RunRequest, timeout_s: float
    ) -> Any:
        self.requests.append(request)
        result = await super()._run_once(member, request, timeout_s)
        if not self.lost:
            self.lost.append(result)
            stub = admin_pb2_grpc.AdminStub(self._channel(member))
            await stub.TransferLeader(admin_pb2.TransferLeaderRequest(to=0), timeout=10)
            await asyncio.to_thread(
                wait_for,
                "a new leader",
                lambda: (lead := self.cluster.leader()) not in (0, member.id) and lead,
            )
            raise TransientError(errors.SERVICE_UNAVAILABLE, "the answer was lost")
        return result


async def test_a_write_retried_after_a_leadership_transfer_is_applied_once(
    cluster: LocalCluster,
) -> None:
    old_leader = wait_for("a leader", cluster.leader)
    async with _LosesTheFirstAnswer(cluster) as client:
        retried = await client.run("CREATE (:Payment {ref: $ref})", {"ref": "once"})
        first = client.lost[0]
        assert first.served_by == old_leader and first.counters["nodes_created"] == 1
        assert len(client.requests) >= 2
        assert all(r.sequence == client.requests[0].sequence for r in client.requests)
        assert retried.served_by == client.leader_id != old_leader, "the client followed"
        assert retried.bookmark == first.bookmark, "a retry answers with the first commit"
        payments = await client.run(
            "MATCH (p:Payment {ref: 'once'}) RETURN count(p) AS n",
            mode="read",
            consistency="linearizable",
        )
        assert payments.rows == [[1]]


def test_the_client_follows_a_leadership_transfer_that_raised_no_error(
    cluster: LocalCluster,
) -> None:
    old_leader = wait_for("a leader", cluster.leader)
    client = connect(cluster.directory)
    try:
        assert client.run("CREATE (:Hop {n: 0})").served_by == old_leader
        stub = admin_pb2_grpc.AdminStub(client._channel(client._member(old_leader)))
        moved = stub.TransferLeader(admin_pb2.TransferLeaderRequest(to=0), timeout=10)
        new_leader = wait_for(
            "the new leader", lambda: (lead := cluster.leader()) not in (0, old_leader) and lead
        )
        assert moved.leader_id == new_leader
        # The old leader forwards the writes it gets, so none fails; the client must still
        # find out, and go to the new leader directly.
        served = wait_for(
            "a write served by the new leader",
            lambda: (r := client.run("CREATE (:Hop {n: 1})")).served_by == new_leader and r,
        )
        assert client.leader_id == new_leader and served.counters["nodes_created"] == 1
    finally:
        client.close()


async def test_concurrent_tasks_share_one_async_client(cluster: LocalCluster) -> None:
    async with connect_async(cluster.directory) as client:

        async def worker(task: int) -> list[str]:
            bookmarks = []
            for i in range(WRITES_PER_TASK):
                result = await client.run(
                    "CREATE (:Job {task: $task, i: $i})", {"task": task, "i": i}
                )
                bookmarks.append(result.bookmark)
                read = await client.run(
                    "MATCH (j:Job {task: $task}) RETURN count(j) AS n",
                    {"task": task},
                    mode="read",
                )
                assert read.rows == [[i + 1]], "a causal read sees the session's writes"
            return bookmarks

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(worker(task)) for task in range(TASKS)]
        bookmarks = [b for task in tasks for b in task.result()]
        assert len(set(bookmarks)) == TASKS * WRITES_PER_TASK, "every write committed apart"
        newest = max(bookmarks, key=_index)
        assert client.bookmarks == {newest}, "the session carries the newest bookmark"
        jobs = await client.run(
            "MATCH (j:Job) RETURN count(j) AS n, count(DISTINCT [j.task, j.i]) AS d",
            mode="read",
            consistency="linearizable",
        )
        assert jobs.rows == [[TASKS * WRITES_PER_TASK, TASKS * WRITES_PER_TASK]]


def test_threads_sharing_one_sync_client_each_write_once(cluster: LocalCluster) -> None:
    threads, writes = 8, 4
    client = connect(cluster.directory)
    failures: list[BaseException] = []

    def worker(thread: int) -> None:
        try:
            for i in range(writes):
                client.run("CREATE (:Shared {thread: $t, i: $i})", {"t": thread, "i": i})
        except BaseException as error:  # reported by the test below
            failures.append(error)

    try:
        workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(WAIT_S)
        assert not any(thread.is_alive() for thread in workers) and not failures, failures
        shared = client.run(
            "MATCH (s:Shared) RETURN count(s) AS n, count(DISTINCT [s.thread, s.i]) AS d",
            mode="read",
            consistency="linearizable",
        )
        assert shared.rows == [[threads * writes, threads * writes]]
    finally:
        client.close()


async def test_a_read_streams_its_records_batch_by_batch_sync_and_async(
    cluster: LocalCluster,
) -> None:
    rows = 250
    query = "MATCH (r:Row) RETURN r.i AS i ORDER BY i"
    async with connect_async(cluster.directory) as client:
        await client.run("UNWIND range(1, $n) AS i CREATE (:Row {i: i})", {"n": rows})
        streamed = [record["i"] async for record in client.stream(query, fetch_size=40)]
        assert streamed == list(range(1, rows + 1))
        async with contextlib.aclosing(client.stream(query, fetch_size=10)) as records:
            async for record in records:
                assert record["i"] == 1
                break  # leaving early cancels the call; the client carries on
        assert (await client.run("RETURN 1 AS one", mode="read")).rows == [[1]]
        with pytest.raises(ClientError):
            async for _ in client.stream("MATCH (r:Row RETURN r"):
                pass
        bookmarks = set(client.bookmarks)

    def read_sync() -> list[int]:
        sync = connect(cluster.directory)
        try:
            sync.bookmarks = bookmarks
            streamed = [record["i"] for record in sync.stream(query, fetch_size=64)]
            with contextlib.closing(sync.stream(query, fetch_size=10)) as records:
                for record in records:
                    assert record["i"] == 1
                    break  # leaving early cancels the call on the caller's thread
            assert sync.run("RETURN 1 AS one", mode="read").rows == [[1]]
            return streamed
        finally:
            sync.close()

    assert await asyncio.to_thread(read_sync) == list(range(1, rows + 1))


def test_reads_go_to_the_clients_zone_and_elsewhere_while_its_replica_lags(
    cluster: LocalCluster,
) -> None:
    leader = wait_for("a leader", cluster.leader)
    follower = next(m for m in cluster.client.members if m.id != leader)
    others = [m.id for m in cluster.client.members if m.id != follower.id]
    writer = cluster.client
    before = writer.run("CREATE (:Visit {n: 1})")
    zoned = connect(Path(cluster.directory), zone=follower.zone, timeout_s=WAIT_S)
    zoned.suspect_s = 10 * WAIT_S  # so that the fallback below is not undone by the clock
    try:
        zoned.bookmarks = {before.bookmark}
        query = "MATCH (v:Visit) RETURN count(v) AS n"
        for consistency in ("causal", "stale", "causal"):
            result = zoned.run(query, mode="read", consistency=consistency)
            assert result.served_by == follower.id
        cluster.partition([[follower.id], others])
        try:
            after = writer.run("CREATE (:Visit {n: 2})")
            # The cut-off replica still answers stale reads, from what it had applied.
            stale = zoned.run(query, mode="read", consistency="stale")
            assert stale.served_by == follower.id
            assert stale.rows == [[1]] and stale.applied_index < _index(after.bookmark)
            assert zoned.node_status(follower.id).applied_index == stale.applied_index
            # A causal read it cannot serve in time goes to another replica...
            zoned.bookmarks = {after.bookmark}
            causal = zoned.run(query, mode="read", consistency="causal")
            assert causal.served_by in others and causal.rows == [[2]]
            # ...and so do the next ones, without waiting on the lagging replica again.
            again = zoned.run(query, mode="read", consistency="causal")
            assert again.served_by in others and again.rows == [[2]]
        finally:
            cluster.partition([])
        wait_for(
            "the healed replica to catch up",
            lambda: zoned.node_status(follower.id).applied_index >= _index(after.bookmark),
        )
    finally:
        zoned.close()
