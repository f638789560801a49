"""Partitions (through the Admin.Partition failpoint: Raft traffic and forwarding cut both
ways). A follower cut off serves no linearizable read and takes no write, then catches up
when healed without deposing the leader (pre-vote); a leader cut off from the majority
commits nothing, the majority elects another, and the write it was given never appears."""

from __future__ import annotations

import grpc
import pytest
from conftest import LocalCluster, wait_for

from cluster import errors
from cluster.errors import QuiverError
from proto import client_pb2, client_pb2_grpc

MINORITY_TIMEOUT_S = 3.0


def _count(client: object, consistency: str) -> int:
    from cluster.client import Client

    assert isinstance(client, Client)
    result = client.run(
        "MATCH (n:Event) RETURN count(n)", mode="read", consistency=consistency, timeout_s=10
    )
    return int(result.rows[0][0])


def test_a_minority_serves_no_linearizable_read_and_takes_no_write(
    local_cluster: LocalCluster,
) -> None:
    client = local_cluster.client
    leader = wait_for("a leader", local_cluster.leader)
    members = [member.id for member in client.members]
    follower = next(node for node in members if node != leader)
    majority = [node for node in members if node != follower]
    client.run("CREATE (:Event {i: 0})")

    # 1. A follower alone.
    local_cluster.partition([[follower], majority])
    cut_off = local_cluster.node_client(follower, timeout_s=MINORITY_TIMEOUT_S)
    for i in range(1, 11):
        client.run("CREATE (:Event {i: $i})", {"i": i})  # the majority carries on
    with pytest.raises(QuiverError) as refused_read:
        _count(cut_off, "linearizable")
    assert refused_read.value.retryable
    with pytest.raises(QuiverError) as refused_write:
        cut_off.run("CREATE (:Event {i: -1})")
    assert refused_write.value.retryable
    assert _count(cut_off, "stale") == 1, "a stale read answers from what the replica has"

    local_cluster.partition([])
    cut_off.bookmarks = set(client.bookmarks)
    wait_for("the healed follower to catch up", lambda: _count(cut_off, "causal") == 11)
    assert local_cluster.leader() == leader, "the healed follower deposed the leader"
    cut_off.close()

    # 2. The leader alone: it commits nothing; the majority elects another leader.
    others = [node for node in members if node != leader]
    local_cluster.partition([[leader], others])
    lonely = local_cluster.node_client(leader, timeout_s=MINORITY_TIMEOUT_S)
    # A write with a request id waits in the old leader's log until it steps down
    # (check-quorum), then fails there and then with NotALeader, which the client retries
    # elsewhere with the same id; not after the proposal timeout, of unknown outcome. One
    # without an id (no retry can deduplicate it) waits until its index is decided here:
    # once healed, another entry there says it was lost (or, past the timeout, unknown).
    stub = client_pb2_grpc.QueryStub(lonely._channel(lonely._member(leader)))
    without_id = stub.Run(client_pb2.RunRequest(query="CREATE (:Event {i: -3})"), timeout=60)
    request = client_pb2.RunRequest(query="CREATE (:Event {i: -2})", client_id="lonely", sequence=1)
    with pytest.raises(grpc.RpcError) as refused:
        list(stub.Run(request, timeout=30))
    assert errors.from_rpc_error(refused.value).code == errors.NOT_A_LEADER
    new_leader = wait_for(
        "a leader in the majority",
        lambda: next(
            (
                s.leader_id
                for node, s in local_cluster.statuses().items()
                if node in others and s is not None and s.leader_id in others
            ),
            0,
        ),
    )
    assert new_leader != leader
    client.leader_id = new_leader
    client.run("CREATE (:Event {i: 11})")
    local_cluster.partition([])
    lonely.bookmarks = set(client.bookmarks)
    wait_for("the old leader to catch up", lambda: _count(lonely, "causal") == 12)
    with pytest.raises(grpc.RpcError) as settled:
        list(without_id)
    decided = errors.from_rpc_error(settled.value)
    assert (decided.code, "nothing was committed" in decided.message) in (
        (errors.NOT_A_LEADER, True),
        (errors.COMMIT_OUTCOME_UNKNOWN, False),
    ), decided
    lonely.close()
    events = client.run(
        "MATCH (n:Event) RETURN n.i ORDER BY n.i", mode="read", consistency="linearizable"
    )
    assert [row[0] for row in events.rows] == list(range(12)), "a minority write appeared"
