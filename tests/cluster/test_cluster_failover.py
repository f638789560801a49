"""SIGKILL of the leader: a new leader is elected, the client carries on, nothing it was told
was committed is lost, and the supervisor restarts the killed node, which catches up."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TICK_MS, LocalCluster, start_cluster, wait_for

WRITES_BEFORE = 20
WRITES_AFTER = 20
LONG_ELECTION_TICKS = 100
"""An election timeout of 5 s (at the tests' 50 ms tick): long enough to tell an election
that waited it out from one the followers brought forward."""


def test_leader_sigkill_loses_no_acknowledged_write_and_the_node_catches_up(
    local_cluster: LocalCluster,
) -> None:
    client = local_cluster.client
    old_leader = wait_for("a leader", local_cluster.leader)
    acknowledged: list[int] = []
    for i in range(WRITES_BEFORE):
        client.run("CREATE (:Item {i: $i})", {"i": i})
        acknowledged.append(i)
    old_pid = local_cluster.statuses()[old_leader].pid
    os.kill(old_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    # The client retries through the election (same request ids) and carries on.
    first = client.run("CREATE (:Item {i: $i})", {"i": WRITES_BEFORE})
    failover_s = time.monotonic() - killed_at
    acknowledged.append(WRITES_BEFORE)
    for i in range(WRITES_BEFORE + 1, WRITES_BEFORE + WRITES_AFTER):
        client.run("CREATE (:Item {i: $i})", {"i": i})
        acknowledged.append(i)
    new_leader = wait_for(
        "a new leader", lambda: (lead := local_cluster.leader()) != old_leader and lead
    )
    assert new_leader != old_leader
    assert first.bookmark
    print(f"failover: first write acknowledged {failover_s * 1000:.0f} ms after SIGKILL")

    everything = client.run(
        "MATCH (n:Item) RETURN n.i AS i ORDER BY i", mode="read", consistency="linearizable"
    )
    assert [row[0] for row in everything.rows] == acknowledged

    # The supervisor restarts the killed node; it catches up with the whole log.
    wait_for(
        "the killed node to be restarted",
        lambda: (pid := local_cluster.node_pid(old_leader)) is not None and pid != old_pid,
    )
    restarted = local_cluster.node_client(old_leader)
    restarted.bookmarks = set(client.bookmarks)
    caught_up = wait_for(
        "the restarted node to serve the bookmark",
        lambda: _causal_items(restarted),
    )
    assert caught_up == acknowledged
    restarted.close()


def _causal_items(client: object) -> list[int] | None:
    from cluster.client import Client
    from cluster.errors import QuiverError

    assert isinstance(client, Client)
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


@pytest.fixture
def slow_election_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    yield from start_cluster(tmp_path, "--election-ticks", str(LONG_ELECTION_TICKS))


def test_followers_campaign_before_the_election_timeout_when_the_leader_process_dies(
    slow_election_cluster: LocalCluster,
) -> None:
    # The followers' streams to a killed leader break at once. They take that as a hint and
    # campaign within half an election timeout, where waiting out the leader's silence
    # would take a whole one (5 s here) and a random part of another.
    cluster = slow_election_cluster
    old_leader = wait_for("a leader", cluster.leader)
    cluster.client.run("CREATE (:Item {i: 0})")
    os.kill(cluster.statuses()[old_leader].pid, signal.SIGKILL)
    timeout_s = LONG_ELECTION_TICKS * TICK_MS / 1000
    wait_for(
        "a new leader before the election timeout",
        lambda: cluster.leader() not in (0, old_leader),
        deadline_s=timeout_s * 0.8,
    )
    result = cluster.client.run("MATCH (n:Item) RETURN count(n) AS n", mode="read")
    assert result.rows == [[1]]
