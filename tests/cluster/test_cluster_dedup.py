"""A write retried with the same request id (client id, sequence) after a leader change is
applied once: the new leader answers with the first commit's bookmark."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from conftest import LocalCluster, wait_for

from cluster.values import to_proto
from proto import admin_pb2, admin_pb2_grpc, client_pb2, client_pb2_grpc


def _run(channel: grpc.Channel, request: client_pb2.RunRequest) -> client_pb2.Summary:
    responses = list(client_pb2_grpc.QueryStub(channel).Run(request, timeout=10))
    assert responses[-1].HasField("summary")
    return responses[-1].summary


def test_a_retried_write_after_a_leader_change_applies_once(local_cluster: LocalCluster) -> None:
    client = local_cluster.client
    leader = wait_for("a leader", local_cluster.leader)
    request = client_pb2.RunRequest(
        query="CREATE (:Payment {ref: $ref})",
        parameters={"ref": to_proto("p-1")},
        client_id="dedup-test-client",
        sequence=7,
    )
    leader_channel = client._channel(client._member(leader))
    first = _run(leader_channel, request)
    assert first.counters.nodes_created == 1 and first.bookmark

    admin = admin_pb2_grpc.AdminStub(leader_channel)
    moved = admin.TransferLeader(admin_pb2.TransferLeaderRequest(to=0), timeout=10)
    new_leader = wait_for(
        "the new leader", lambda: (lead := local_cluster.leader()) != leader and lead
    )
    assert moved.leader_id == new_leader

    # The same request again: to the new leader, and through the old one (which forwards).
    for node_id in (new_leader, leader):
        again = _run(client._channel(client._member(node_id)), request)
        assert again.bookmark == first.bookmark, "a retry must answer with the first commit"
        assert again.counters.nodes_created == 1
    # A new sequence number is a new request.
    request.sequence = 8
    request.parameters["ref"].CopyFrom(to_proto("p-2"))
    assert _run(client._channel(client._member(new_leader)), request).bookmark != first.bookmark

    count = client.run(
        "MATCH (p:Payment) RETURN p.ref AS ref ORDER BY ref",
        mode="read",
        consistency="linearizable",
    )
    assert count.rows == [["p-1"], ["p-2"]]


def test_a_retry_of_a_compare_and_set_still_pending_answers_as_the_first(
    local_cluster: LocalCluster,
) -> None:
    """The same request sent twice at once: the second is checked on arrival before the
    first applied, and run after it, where its condition no longer holds (it wrote nothing
    only because the first did). It must answer as the duplicate it is: set, with the first
    commit's bookmark, not as a compare-and-set that failed."""
    client = local_cluster.client
    leader = wait_for("a leader", local_cluster.leader)
    client.run("CREATE (:Reg {key: 'k', v: 1})")
    request = client_pb2.RunRequest(
        query="MATCH (r:Reg {key: 'k'}) WHERE r.v = $old SET r.v = $new",
        parameters={"old": to_proto(1), "new": to_proto(2)},
        client_id="cas-test-client",
        sequence=1,
    )
    channel = client._channel(client._member(leader))
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: _run(channel, request), range(2))
    assert first.counters.properties_set == 1
    assert second.counters.properties_set == 1, "a duplicate answered as a failed CAS"
    assert second.bookmark == first.bookmark
    value = client.run(
        "MATCH (r:Reg {key: 'k'}) RETURN r.v", mode="read", consistency="linearizable"
    )
    assert value.rows == [[2]]
