"""A rolling restart (``quiver admin roll``) of a cluster under writes: every node restarts
in turn, the leader last, handing leadership over as it stops; no write fails, none is lost."""

from __future__ import annotations

import threading

from conftest import LocalCluster, quiver, wait_for

from cluster.client import connect
from cluster.errors import QuiverError

WRITER_JOIN_S = 60.0


def test_a_rolling_restart_under_writes_fails_and_loses_no_write(
    local_cluster: LocalCluster,
) -> None:
    cluster = local_cluster
    leader = wait_for("a leader", cluster.leader)
    members = [member.id for member in cluster.client.members]
    pids = {node_id: cluster.node_pid(node_id) for node_id in members}
    stop = threading.Event()
    acknowledged: list[int] = []
    failures: list[QuiverError] = []

    def writer() -> None:
        with connect(cluster.directory) as client:
            i = 0
            while not stop.is_set():
                try:
                    client.run("CREATE (:Rolled {i: $i})", {"i": i})
                    acknowledged.append(i)
                except QuiverError as error:
                    failures.append(error)
                i += 1

    thread = threading.Thread(target=writer, name="roll-writer")
    thread.start()
    try:
        wait_for("writes to flow", lambda: len(acknowledged) >= 20)
        rolled = quiver("admin", "roll", "--dir", str(cluster.directory), timeout=300)
        wait_for("writes after the roll", lambda: len(acknowledged) >= 20 + 20)
    finally:
        stop.set()
        thread.join(WRITER_JOIN_S)
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.count("restarted") == len(members), rolled.stdout
    assert rolled.stdout.splitlines()[-1].startswith(f"n{leader} restarted")
    assert failures == []
    assert all(cluster.node_pid(node_id) not in (None, pids[node_id]) for node_id in members)
    log = (cluster.directory / "nodes" / str(leader) / "node.log").read_text()
    assert f"n{leader} stopping: leadership handed to" in log
    stored = cluster.client.run(
        "MATCH (n:Rolled) RETURN n.i", mode="read", consistency="linearizable"
    )
    assert set(acknowledged) <= {row[0] for row in stored.rows}


def test_a_roll_needs_the_supervisor() -> None:
    result = quiver("admin", "roll", "--dir", "/nonexistent-quiver-dir")
    assert result.returncode == 1
    assert "no 'quiver up' supervisor runs" in result.stderr
