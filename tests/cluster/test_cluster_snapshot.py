"""Log compaction and snapshot install: a follower cut off and then SIGKILLed while the
others write past several snapshots (the leader's log compacted beyond what it has) restarts
and catches up by an InstallSnapshot stream; every acknowledged write is on it, and the
request-dedup table came with the snapshot (a retried request is still a duplicate there)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from conftest import LocalCluster, start_cluster, wait_for

from cluster.client import Client
from cluster.errors import QuiverError
from cluster.values import to_proto
from proto import admin_pb2, admin_pb2_grpc, client_pb2, client_pb2_grpc

SNAPSHOT_ENTRIES = 20
WRITES_BEFORE = 5
WRITES_WHILE_DOWN = 70


@pytest.fixture
def compacting_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    yield from start_cluster(tmp_path, "--snapshot-entries", str(SNAPSHOT_ENTRIES))


def _run(channel: grpc.Channel, request: client_pb2.RunRequest) -> client_pb2.Summary:
    responses = list(client_pb2_grpc.QueryStub(channel).Run(request, timeout=10))
    return responses[-1].summary


def _items(client: Client) -> list[int] | None:
    try:
        result = client.run(
            "MATCH (n:Item) RETURN n.i AS i ORDER BY i",
            mode="read",
            consistency="causal",
            timeout_s=2.0,
        )
    except QuiverError:
        return None
    return [row[0] for row in result.rows]


def test_a_node_behind_the_compacted_log_catches_up_by_snapshot(
    compacting_cluster: LocalCluster,
) -> None:
    cluster = compacting_cluster
    client = cluster.client
    leader = wait_for("a leader", cluster.leader)
    lagging = next(m.id for m in client.members if m.id != leader)
    others = [m.id for m in client.members if m.id != lagging]
    acknowledged: list[int] = []
    for i in range(WRITES_BEFORE):
        client.run("CREATE (:Item {i: $i})", {"i": i})
        acknowledged.append(i)

    cluster.partition([[lagging], others])
    dedup_request = client_pb2.RunRequest(
        query="CREATE (:Payment {ref: $ref})",
        parameters={"ref": to_proto("p-1")},
        client_id="snapshot-dedup-client",
        sequence=3,
    )
    first = _run(client._channel(client._member(leader)), dedup_request)
    assert first.counters.nodes_created == 1
    for i in range(WRITES_BEFORE, WRITES_BEFORE + WRITES_WHILE_DOWN):
        client.run("CREATE (:Item {i: $i})", {"i": i})
        acknowledged.append(i)

    statuses = cluster.statuses()
    behind = statuses[lagging].applied_index
    leader_status = wait_for(
        "the leader to compact its log past the cut-off node",
        lambda: (s := client.node_status(leader, 1.0)).first_index > behind + 1 and s,
    )
    assert leader_status.snapshots_taken >= 1 and leader_status.snapshot_index > behind

    old_pid = statuses[lagging].pid
    os.kill(old_pid, signal.SIGKILL)
    for node_id in others:
        stub = admin_pb2_grpc.AdminStub(client._channel(client._member(node_id)))
        stub.Partition(admin_pb2.PartitionRequest(peers=[]), timeout=5)

    wait_for(
        "the killed node to be restarted",
        lambda: (pid := cluster.node_pid(lagging)) is not None and pid != old_pid,
    )
    restarted = wait_for(
        "the restarted node to install a snapshot",
        lambda: _status_or_none(client, lagging, lambda s: s.snapshots_installed >= 1),
    )
    assert restarted.snapshot_index >= leader_status.snapshot_index
    node = cluster.node_client(lagging)
    node.bookmarks = set(client.bookmarks)
    assert wait_for("the acknowledged writes on the node", lambda: _items(node)) == acknowledged
    node.close()

    # The dedup table came with the snapshot: led by the caught-up node, the same request
    # is a duplicate answered with the first commit's bookmark.
    admin = admin_pb2_grpc.AdminStub(client._channel(client._member(leader)))
    admin.TransferLeader(admin_pb2.TransferLeaderRequest(to=lagging), timeout=10)
    wait_for("the caught-up node to lead", lambda: cluster.leader() == lagging)
    again = _run(client._channel(client._member(lagging)), dedup_request)
    assert again.bookmark == first.bookmark
    payments = client.run("MATCH (p:Payment) RETURN count(p) AS n", mode="read")
    assert payments.rows == [[1]]


def _status_or_none(
    client: Client, node_id: int, ok: Callable[[admin_pb2.NodeStatus], bool]
) -> admin_pb2.NodeStatus | None:
    try:
        status = client.node_status(node_id, 1.0)
    except QuiverError:  # still starting
        return None
    return status if ok(status) else None
