"""A long statement neither wedges the cluster nor runs for ever. A long read runs on a
snapshot of the graph while committed writes are applied beside it: before, it held the
graph's read lock and the Raft loop waited for its apply (a 36M-row count on the leader
held every write for ~10 s and cost the leader its leadership), and then, giving way after
half an election timeout, it could not finish while writes kept coming. A statement in an
explicit transaction stops at the transaction's timeout with Neo4j's TransactionTimedOut;
before, nothing stopped it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from conftest import LocalCluster, wait_for

from cluster.client import Result
from cluster.errors import QuiverError

# Tens of seconds of work on this machine: far longer than anything below waits.
LONG_READ = "UNWIND range(1, 6000) AS a UNWIND range(1, 6000) AS b RETURN count(*)"
# Seconds of work (9M rows) between two counts of the same nodes.
SPINNING_READ = (
    "MATCH (w:Written) WITH count(w) AS first "
    "UNWIND range(1, 3000) AS a UNWIND range(1, 3000) AS b WITH first, count(*) AS spun "
    "OPTIONAL MATCH (w:Written) RETURN first, spun, count(w) AS last"
)


@dataclass(frozen=True)
class _Steady:
    """The leader, its term and every node's process, to check that none changed."""

    leader: int
    term: int
    pids: dict[int, int | None]

    @staticmethod
    def now(cluster: LocalCluster) -> _Steady:
        leader = wait_for("a leader", cluster.leader)
        pids = {node: cluster.node_pid(node) for node in (1, 2, 3)}
        return _Steady(leader, cluster.statuses()[leader].term, pids)

    def holds(self, cluster: LocalCluster) -> None:
        status = cluster.statuses()[self.leader]
        assert (cluster.leader(), status.term) == (self.leader, self.term)
        assert {node: cluster.node_pid(node) for node in (1, 2, 3)} == self.pids


def test_a_long_read_completes_beside_writes_on_one_snapshot_and_the_leader_stays(
    local_cluster: LocalCluster,
) -> None:
    client = local_cluster.client
    steady = _Steady.now(local_cluster)
    on_leader = local_cluster.node_client(steady.leader, timeout_s=120)
    call = on_leader.prepare_run(SPINNING_READ, {}, "read", "stale")
    ended: list[QuiverError | Result] = []

    def read_once() -> None:
        try:
            member = on_leader._member(steady.leader)
            ended.append(on_leader._run_once(member, call.request, 120))
        except QuiverError as error:
            ended.append(error)

    reader = threading.Thread(target=read_once)
    reader.start()
    written = 0
    try:
        # Writes applied on the leader while the read runs there (it once made them wait,
        # then gave way to them): they keep coming until the read is done.
        while written < 5 or (reader.is_alive() and written < 500):
            client.run("CREATE (:Written {i: $i})", {"i": written})
            written += 1
        reader.join(timeout=60)
        assert not reader.is_alive()
    finally:
        reader.join()
        on_leader.close()
    (outcome,) = ended
    assert isinstance(outcome, Result), outcome
    ((first, spun, last),) = outcome.rows
    assert spun == 9_000_000
    assert first == last  # one snapshot, although writes were applied meanwhile
    counted = client.run(
        "MATCH (w:Written) RETURN count(w)", mode="read", consistency="linearizable"
    )
    assert counted.rows == [[written]]
    steady.holds(local_cluster)


def test_a_statement_in_an_explicit_transaction_stops_at_the_transaction_timeout(
    local_cluster: LocalCluster,
) -> None:
    client = local_cluster.client
    wait_for("a leader", local_cluster.leader)
    # Everything committed so far applied (logins, the leader's no-op), so that no apply
    # waits on the statement below and only its timeout can stop it.
    client.run("RETURN 1", mode="read", consistency="linearizable")
    tx = client.begin(timeout_s=1.0)
    with pytest.raises(QuiverError) as stopped:
        tx.run(LONG_READ)
    assert stopped.value.code == "Neo.ClientError.Transaction.TransactionTimedOut"
    assert not stopped.value.retryable
    # The node goes on serving.
    assert client.run("RETURN 1 AS one", mode="read").rows == [[1]]


def test_big_writes_apply_off_the_raft_loop_and_the_leader_stays(
    local_cluster: LocalCluster,
) -> None:
    # Each of these write sets takes a second or more to apply on every node. Applied while
    # the Raft loop waited, they kept the leader from sending heartbeats and the followers
    # from answering, and cost elections (6 terms for 4 such writes on this machine).
    client = local_cluster.client
    steady = _Steady.now(local_cluster)
    created = client.run("UNWIND range(1, 60000) AS i CREATE (:Big {i: i})")
    assert created.counters["nodes_created"] == 60_000
    for value in range(2):
        updated = client.run("MATCH (b:Big) SET b.value = $v RETURN count(*)", {"v": value})
        assert updated.rows == [[60_000]]
    counted = client.run(
        "MATCH (b:Big {value: 1}) RETURN count(b)", mode="read", consistency="linearizable"
    )
    assert counted.rows == [[60_000]]
    steady.holds(local_cluster)


# About a second of work before it writes one node.
SPINNING_WRITE = (
    "MATCH (w:Beside) WITH count(w) AS first "
    "UNWIND range(1, 1500) AS a UNWIND range(1, 1500) AS b WITH first, count(*) AS spun "
    "CREATE (:AfterSpin {first: first}) RETURN first, spun"
)


def test_a_long_write_completes_beside_a_stream_of_small_writes(
    local_cluster: LocalCluster,
) -> None:
    """A write statement that is not quick runs in a thread over a snapshot of the graph
    plus the pending writes, so the small writes proposed before it are applied while it
    runs. Before, it held the graph's read lock: their apply waited for it, and after half
    an election timeout it gave way with a retryable Outdated, again on every retry while
    writes kept coming."""
    client = local_cluster.client
    steady = _Steady.now(local_cluster)
    on_leader = local_cluster.node_client(steady.leader, timeout_s=60)
    stop = threading.Event()
    written: list[int] = []

    def small_writes() -> None:
        with local_cluster.node_client(steady.leader, timeout_s=30) as writer:
            while not stop.is_set() and len(written) < 2000:
                writer.run("CREATE (:Beside {i: $i})", {"i": len(written)})
                written.append(1)

    beside = [threading.Thread(target=small_writes) for _ in range(4)]
    for thread in beside:
        thread.start()
    try:
        wait_for("small writes going", lambda: len(written) >= 20)
        outcomes: list[QuiverError | Result] = []
        for _ in range(3):
            call = on_leader.prepare_run(SPINNING_WRITE, {}, "write", "causal")
            try:  # once, without the client's retries
                outcomes.append(
                    on_leader._run_once(on_leader._member(steady.leader), call.request, 60)
                )
            except QuiverError as error:
                outcomes.append(error)
    finally:
        stop.set()
        for thread in beside:
            thread.join()
        on_leader.close()
    assert all(isinstance(outcome, Result) for outcome in outcomes), outcomes
    assert all(outcome.rows[0][1] == 1500 * 1500 for outcome in outcomes)  # type: ignore[union-attr]
    counted = client.run(
        "MATCH (w:Beside) WITH count(w) AS beside MATCH (a:AfterSpin) RETURN beside, count(a)",
        mode="read",
        consistency="linearizable",
    )
    assert counted.rows == [[len(written), 3]]
    steady.holds(local_cluster)
