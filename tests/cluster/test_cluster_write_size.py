"""A transaction whose writes do not fit one replicated log entry is refused on the leader
with Neo4j's TransactionOutOfMemoryError, and the cluster goes on. Before, the leader
proposed it and every node that tried to persist it stopped (the log's record limit),
leaving the client a deadline error."""

from __future__ import annotations

import pytest
from conftest import LocalCluster, wait_for

from cluster import errors
from cluster.errors import QuiverError
from cluster.node import MAX_WRITE_SET_BYTES

BLOBS = 300
BLOB = "x" * (MAX_WRITE_SET_BYTES // BLOBS + 1024)  # 300 of them overflow the limit
TOO_LARGE = "UNWIND range(1, $n) AS i CREATE (:Blob {i: i, data: $blob})"


def test_a_write_too_large_for_one_entry_is_refused_and_the_cluster_goes_on(
    local_cluster: LocalCluster,
) -> None:
    client = local_cluster.client
    leader = wait_for("a leader", local_cluster.leader)
    pids = {node: local_cluster.node_pid(node) for node in (1, 2, 3)}

    with pytest.raises(QuiverError) as refused:
        client.run(TOO_LARGE, {"n": BLOBS, "blob": BLOB})
    assert refused.value.code == errors.TOO_LARGE and not refused.value.retryable
    assert str(MAX_WRITE_SET_BYTES) in refused.value.message

    # The same through an explicit transaction: refused at the statement that overflows
    # (the transaction could never commit; it ends rather than hold its writes), nothing
    # written, also when each statement alone fits.
    tx = client.begin()
    with pytest.raises(QuiverError) as at_statement:
        tx.run(TOO_LARGE, {"n": BLOBS, "blob": BLOB})
    assert at_statement.value.code == errors.TOO_LARGE
    tx = client.begin()
    tx.run(TOO_LARGE, {"n": BLOBS // 2, "blob": BLOB})
    with pytest.raises(QuiverError) as second:
        tx.run(TOO_LARGE, {"n": BLOBS // 2 + 10, "blob": BLOB})
    assert second.value.code == errors.TOO_LARGE
    with pytest.raises(QuiverError) as ended:
        tx.commit()
    assert ended.value.code == errors.TRANSACTION_NOT_FOUND

    # Half of it fits; the leader and every node are the same processes as before.
    fits = client.run(TOO_LARGE, {"n": BLOBS // 2, "blob": BLOB})
    assert fits.counters["nodes_created"] == BLOBS // 2
    counted = client.run("MATCH (b:Blob) RETURN count(b)", mode="read", consistency="linearizable")
    assert counted.rows == [[BLOBS // 2]]
    assert local_cluster.leader() == leader
    assert {node: local_cluster.node_pid(node) for node in (1, 2, 3)} == pids
