"""Membership online, through Raft, under a write load with no failed writes: a node
prepared by `quiver add-node` joins as a learner (catching up from the leader), is promoted
to voter; the leader refuses to remove itself, hands leadership to the new node, and is then
removed. Every acknowledged write is readable at the end, and the configuration is the
expected one."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from conftest import LocalCluster, quiver, wait_for

from cluster.client import Client, connect
from cluster.errors import QuiverError
from proto import admin_pb2

PHASE_WRITES = 5
STOP_TIMEOUT_S = 10.0


class _Writer(threading.Thread):
    """Writes :Load nodes one after another until stopped; records what was acknowledged."""

    def __init__(self, directory: Path) -> None:
        super().__init__(daemon=True)
        self.client = connect(directory, timeout_s=30.0)
        self.acknowledged: list[int] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            try:
                self.client.run("CREATE (:Load {i: $i})", {"i": i})
            except QuiverError as error:
                self.failures.append(f"{i}: {error.code}: {error.message}")
            else:
                self.acknowledged.append(i)
            i += 1

    def wait_for_more(self, count: int) -> None:
        target = len(self.acknowledged) + count
        wait_for(f"{count} more acknowledged writes", lambda: len(self.acknowledged) >= target)

    def stop(self) -> None:
        self.stopping.set()
        self.join(STOP_TIMEOUT_S)
        assert not self.is_alive()
        self.client.close()


def _ok(*args: str) -> str:
    result = quiver(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_add_promote_transfer_and_remove_under_load_with_no_failed_write(
    local_cluster: LocalCluster,
) -> None:
    directory = str(local_cluster.directory)
    old_leader = wait_for("a leader", local_cluster.leader)
    writer = _Writer(local_cluster.directory)
    writer.start()
    joining: subprocess.Popen[bytes] | None = None
    try:
        writer.wait_for_more(PHASE_WRITES)
        _ok("add-node", "--dir", directory)
        new_id = max(m.id for m in connect(local_cluster.directory).members)
        assert new_id == 4
        config = local_cluster.directory / "nodes" / str(new_id) / "node.json"
        with open(config.parent / "node.log", "ab") as log_file:
            joining = subprocess.Popen(
                [sys.executable, "-m", "cluster.cli", "serve", "--config", str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        _ok("admin", "add-learner", str(new_id), "--dir", directory)
        observer = connect(local_cluster.directory)
        learner = wait_for(
            "the learner to catch up",
            lambda: _status(observer, new_id, lambda s: s.role == admin_pb2.ROLE_LEARNER),
        )
        assert new_id in learner.learners
        writer.wait_for_more(PHASE_WRITES)

        _ok("admin", "promote", str(new_id), "--dir", directory)
        wait_for(
            "the new node to be a voter",
            lambda: _status(observer, new_id, lambda s: new_id in s.voters),
        )
        writer.wait_for_more(PHASE_WRITES)

        leader = wait_for("a leader", local_cluster.leader)
        refused = quiver("admin", "remove", str(leader), "--dir", directory)
        assert refused.returncode != 0 and "transfer leadership first" in refused.stderr
        assert "n4 leads" in _ok("admin", "transfer-leader", str(new_id), "--dir", directory)
        writer.wait_for_more(PHASE_WRITES)
        _ok("admin", "remove", str(leader), "--dir", directory)
        writer.wait_for_more(PHASE_WRITES)
        remaining = sorted(m.id for m in connect(local_cluster.directory).members)
        assert leader not in remaining and new_id in remaining
        final = wait_for(
            "the final configuration on the new leader",
            lambda: _status(observer, new_id, lambda s: sorted(s.voters) == remaining),
        )
        assert final.role == admin_pb2.ROLE_LEADER and not final.learners
        observer.close()
    finally:
        writer.stop()
        if joining is not None:
            joining.kill()
            joining.wait(STOP_TIMEOUT_S)

    assert writer.failures == []
    reader = connect(local_cluster.directory)
    everything = reader.run(
        "MATCH (n:Load) RETURN n.i AS i ORDER BY i", mode="read", consistency="linearizable"
    )
    reader.close()
    found = [row[0] for row in everything.rows]
    assert found == writer.acknowledged
    print(f"membership under load: {len(found)} writes, old leader n{old_leader}")


def _status(
    client: Client, node_id: int, ok: Callable[[admin_pb2.NodeStatus], bool]
) -> admin_pb2.NodeStatus | None:
    try:
        status = client.node_status(node_id, 1.0)
    except (QuiverError, KeyError):
        return None
    return status if ok(status) else None
