"""Backups of a running cluster: taken from a follower with every acknowledged write, audited,
verified, kept on a schedule with retention, and restored into a new cluster that serves the
same graph, schema and users; no backup or restored file holds a value in the clear."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import grpc
import pytest
from conftest import LocalCluster, quiver, start_cluster, wait_for

from cluster import errors
from cluster.backup import BACKUP_DIR, list_backups
from cluster.client import connect
from cluster.errors import QuiverError
from cluster.security.sessions import FORBIDDEN
from proto import admin_pb2, admin_pb2_grpc

PEOPLE = 300
BLOBS = 30
BLOB = "x" * 100_000
"""3 MB of blobs: a stream of several chunks."""
SENTINEL = "SENTINEL-backup-4f1c9e"
"""A value that must appear in no backup file and no restored member's file."""


def _files_holding(root: Path, text: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def _audited(cluster: LocalCluster, node_id: int) -> list[dict[str, object]]:
    audit = cluster.directory / "nodes" / str(node_id) / "data" / "audit"
    lines = "".join(p.read_text() for p in sorted(audit.glob("security.*.jsonl"))).splitlines()
    fields = [json.loads(line)["fields"] for line in lines]
    return [record for record in fields if record.get("event") == "cluster_admin"]


def _checkpoints(cluster: LocalCluster, node_id: int) -> list[Path]:
    work = cluster.directory / "nodes" / str(node_id) / "data" / "snapshots" / "work"
    return list(work.glob("checkpoint-*"))


def test_a_backup_from_a_follower_restores_into_a_new_cluster(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    cluster = local_cluster
    client = cluster.client
    leader = wait_for("a leader", cluster.leader)
    client.run("CREATE CONSTRAINT person_name FOR (p:Person) REQUIRE p.name IS UNIQUE")
    client.run(
        "UNWIND range(1, $n) AS i CREATE (:Person {name: 'p' + i})-[:OWNS]->(:Pet {i: i})",
        {"n": PEOPLE},
    )
    client.run("UNWIND range(1, $n) AS i CREATE (:Blob {i: i, s: $s})", {"n": BLOBS, "s": BLOB})
    client.run("CREATE (:Secret {s: $s})", {"s": SENTINEL})
    client.system("CREATE USER alice SET PASSWORD 'alice-pass-1' CHANGE NOT REQUIRED")
    client.system("GRANT ROLE reader TO alice")

    # Taken at once after the last acknowledged write, from a follower: it holds them all.
    taken = quiver("backup", "take", "--dir", str(cluster.directory))
    assert taken.returncode == 0, taken.stderr
    assert "(a follower)" in taken.stdout
    nodes = 2 * PEOPLE + BLOBS + 1
    assert " verified " in taken.stdout
    assert f"{nodes} nodes, {PEOPLE} relationships, 2 users" in taken.stdout
    (backup,) = list_backups(cluster.directory / BACKUP_DIR)
    assert backup.manifest is not None and backup.manifest.node != leader
    client.run("CREATE (:After)")
    (record,) = _audited(cluster, backup.manifest.node)
    assert (record["action"], record["outcome"], record["user"]) == ("backup", "ok", "admin")
    assert not _checkpoints(cluster, backup.manifest.node)

    restored = tmp_path / "restored"
    result = quiver("restore", str(backup.path), "--dir", str(restored), "--nodes", "3")
    assert result.returncode == 0, result.stderr
    assert _files_holding(cluster.directory / BACKUP_DIR, SENTINEL) == []
    assert _files_holding(restored, SENTINEL) == []
    with contextlib.contextmanager(start_cluster)(tmp_path, directory=restored) as new:
        wait_for("a leader of the restored cluster", new.leader)
        counted = new.client.run("MATCH (n) RETURN count(n), sum(CASE WHEN n:After THEN 1 END)")
        assert counted.rows == [[nodes, 0]]
        with pytest.raises(QuiverError, match="already exists"):
            new.client.run("CREATE (:Person {name: 'p7'})")  # the constraint came along
        with connect(restored, auth=("alice", "alice-pass-1")) as alice:
            assert alice.run("MATCH (p:Pet {i: 42}) RETURN p.i", mode="read").rows == [[42]]
            with pytest.raises(QuiverError, match=r"Forbidden|not allowed"):
                alice.run("CREATE (:Person {name: 'q'})")  # a reader still
        written = new.client.run("CREATE (:New) RETURN 1")
        assert int(written.bookmark.split(":")[1]) > backup.manifest.applied_index
        statuses = new.statuses()
        assert all(s is not None and sorted(s.voters) == [1, 2, 3] for s in statuses.values())


def test_scheduled_backups_keep_the_newest_and_a_refused_one_is_audited(
    local_cluster: LocalCluster,
) -> None:
    cluster = local_cluster
    client = cluster.client
    leader = wait_for("a leader", cluster.leader)
    client.run("CREATE (:Item)")
    client.system("CREATE USER bob SET PASSWORD 'bob-pass-1' CHANGE NOT REQUIRED")
    follower = next(m.id for m in client.members if m.id != leader)
    with connect(cluster.directory, auth=("bob", "bob-pass-1")) as bob:
        stub = admin_pb2_grpc.AdminStub(bob._channel(bob._member(follower)))
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Backup(admin_pb2.BackupRequest(), timeout=30))
    assert errors.from_rpc_error(refused.value).code == FORBIDDEN
    with connect(cluster.directory, auth=("bob", "not-his-password")) as impostor:
        stub = admin_pb2_grpc.AdminStub(impostor._channel(impostor._member(follower)))
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Backup(admin_pb2.BackupRequest(), timeout=30))
    assert errors.from_rpc_error(refused.value).code == "Neo.ClientError.Security.Unauthorized"
    # (a failed login is in the security log as such, not as a backup)

    stub = admin_pb2_grpc.AdminStub(client._channel(client._member(follower)))
    # Streams the client abandons after a chunk: the member lives on and lets each go at
    # once. (A stream's end once ran its audit after gRPC had freed the call: SIGSEGV.)
    client.run("UNWIND range(1, $n) AS i CREATE (:Blob {i: i, s: $s})", {"n": BLOBS, "s": BLOB})
    pid = cluster.node_pid(follower)
    for _ in range(3):
        call = stub.Backup(admin_pb2.BackupRequest(), timeout=30)
        assert not next(call).last
        call.cancel()
        assert client.node_status(follower).applied_index
    wait_for("the abandoned streams audited", lambda: len(_audited(cluster, follower)) == 4)
    abandoned = [r["outcome"] for r in _audited(cluster, follower)[1:]]
    assert set(abandoned) <= {"cancelled", "ok"} and cluster.node_pid(follower) == pid

    # A member that does not reach the index in time refuses, and says so in its log.
    with pytest.raises(grpc.RpcError) as refused:
        list(stub.Backup(admin_pb2.BackupRequest(min_index=10**9, wait_ms=200), timeout=30))
    assert errors.from_rpc_error(refused.value).code == errors.BOOKMARK_TIMEOUT
    assert not _checkpoints(cluster, follower)

    scheduled = quiver(
        "backup", "schedule", "--dir", str(cluster.directory), "--every", "1", "--keep", "1",
        "--rounds", "2", "--from", str(follower),
    )  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    assert scheduled.stdout.count("verified") == 2, scheduled.stdout
    (kept,) = list_backups(cluster.directory / BACKUP_DIR)
    assert kept.manifest is not None and kept.manifest.verified is not None
    audited = [(r["user"], r["outcome"]) for r in _audited(cluster, follower)]
    del audited[1:4]
    assert audited == [
        ("bob", FORBIDDEN),
        ("admin", errors.BOOKMARK_TIMEOUT),
        ("admin", "ok"),
        ("admin", "ok"),
    ]
