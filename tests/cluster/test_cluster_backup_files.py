"""Backups on disk, without a cluster: the stream written whole or not at all, a damaged or
foreign backup found by verify, retention, and a restore that seeds every member."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import backup
from cluster.backup import Manifest
from cluster.config import load_cluster, load_node_config
from cluster.errors import QuiverError
from cluster.node import Node
from cluster.statemachine import MEMBER_PREFIX, SECURITY_KEY
from proto import admin_pb2
from store.crypto import load_kek, write_key_file
from store.node_store import NodeStore
from store.snapshot import snapshot_chunks
from store.writeset import CreateNode, CreateRelationship, CreateUniqueConstraint, WriteSet

DAMAGE = "Neo.DatabaseError.General.StorageDamageDetected"
HOLD_S = 10.0
"""The longest the stream test holds the backup thread busy."""


def _source(path: Path) -> tuple[NodeStore, Path]:
    key_file = path / "key"
    path.mkdir(parents=True)
    write_key_file(key_file)
    store = NodeStore(path / "data", load_kek(key_file))
    ops = [CreateUniqueConstraint("name", "P", ("name",))]
    ops += [CreateNode(i, ("P",), (("name", f"p{i}"), ("pad", "x" * 300))) for i in range(200)]
    ops += [CreateRelationship(i, "R", i, (i + 1) % 200, ()) for i in range(150)]
    meta = {MEMBER_PREFIX + b"9": b'{"zone": "old"}', b"sm/other": b"kept"}
    store.graph.apply(WriteSet(tuple(ops)), 30, meta)
    return store, key_file


def _responses(store: NodeStore, work: Path, last: bool = True) -> Iterator[admin_pb2.BackupChunk]:
    chunks = list(snapshot_chunks(store.graph, work, chunk_bytes=4096))
    for at, chunk in enumerate(chunks):
        final = at == len(chunks) - 1
        if final and not last:
            return
        yield admin_pb2.BackupChunk(applied_index=30, node_id=2, data=chunk, last=final)


def _take(folder: Path, store: NodeStore, work: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = backup._receive(_responses(store, work), folder / ".partial-x.qbackup", 7)
    path = folder / (manifest.name + backup.SUFFIX)
    backup._write_manifest(path, manifest)
    return path


@pytest.fixture
def taken(tmp_path: Path) -> tuple[Path, Path]:
    store, key_file = _source(tmp_path / "source")
    path = _take(tmp_path / "backups", store, tmp_path / "work")
    store.close()
    return path, key_file


def test_a_backup_verifies_by_restoring_and_records_what_it_found(taken: tuple[Path, Path]) -> None:
    path, key_file = taken
    manifest = backup.verify(path, key_file)
    assert manifest.verified is not None
    assert (manifest.verified["nodes"], manifest.verified["relationships"]) == (200, 150)
    assert (manifest.applied_index, manifest.node, manifest.cluster_id) == (30, 2, 7)
    on_disk = json.loads(path.with_suffix(".json").read_text())
    assert Manifest.from_json(on_disk) == manifest
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".verify")] == []


def test_a_damaged_backup_is_found_with_or_without_the_key(taken: tuple[Path, Path]) -> None:
    path, key_file = taken
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(QuiverError, match="does not match its manifest") as caught:
        backup.verify(path, key_file)
    assert caught.value.code == DAMAGE
    # Damage that matches the manifest (both rewritten) is still found: by the stream itself.
    manifest = Manifest.from_json(json.loads(path.with_suffix(".json").read_text()))
    forged = dataclasses.replace(manifest, sha256=hashlib.sha256(data).hexdigest())
    backup._write_manifest(path, forged)
    with pytest.raises(QuiverError, match="does not restore") as caught:
        backup.verify(path, key_file)
    assert caught.value.code == DAMAGE


@pytest.fixture
def other_key(tmp_path: Path) -> Path:
    """Another cluster's key file."""
    path = tmp_path / "other-key"
    write_key_file(path)
    return path


def test_a_backup_opens_only_with_its_clusters_key(
    taken: tuple[Path, Path], other_key: Path
) -> None:
    path, _ = taken
    other = other_key
    with pytest.raises(QuiverError, match="wrong key-encryption key"):
        backup.verify(path, other)


def test_a_stream_that_stops_early_leaves_no_backup(tmp_path: Path) -> None:
    store, _ = _source(tmp_path / "source")
    folder = tmp_path / "backups"
    folder.mkdir()
    with pytest.raises(QuiverError, match="ended before its end"):
        backup._receive(
            _responses(store, tmp_path / "work", last=False), folder / ".partial-y.qbackup", 7
        )
    store.close()
    assert backup.list_backups(folder) == []
    assert backup.prune(folder, 1) == [".partial-y.qbackup"]  # the partial file the taker left


def test_retention_keeps_the_newest_complete_backups(tmp_path: Path) -> None:
    store, _ = _source(tmp_path / "source")
    folder = tmp_path / "backups"
    paths = [_take(folder, store, tmp_path / "work") for _ in range(5)]
    store.close()
    paths[1].with_suffix(".json").unlink()  # a taker died before the manifest
    paths[2].with_suffix(".json").write_text('{"format": 2}')  # a newer version's: kept
    orphan = folder / "backup-19990101T000000.000000Z-1.json"
    orphan.write_text("{}")  # a verify wrote it as a prune removed its backup
    listed = backup.list_backups(folder)
    assert [b.path for b in listed] == paths
    assert [b.problem.split(":")[0] for b in listed] == [
        "", "incomplete", "unreadable manifest", "", ""
    ]  # fmt: skip
    removed = backup.prune(folder, 1)
    assert sorted(removed) == sorted([paths[0].name, paths[1].name, paths[3].name, orphan.name])
    assert [b.path for b in backup.list_backups(folder)] == [paths[2], paths[4]]
    assert backup.resolve(tmp_path, "latest", folder) == paths[4]
    with pytest.raises(QuiverError, match="at least 1"):
        backup.prune(folder, 0)


def test_prune_removes_what_a_killed_verify_left_but_not_a_running_one(
    taken: tuple[Path, Path],
) -> None:
    path, _ = taken
    folder = path.parent
    left = folder / ".verify-killed"
    (left / "data").mkdir(parents=True)
    (left / backup.LOCK_FILE).touch()  # its lock died with it
    with backup._scratch(folder) as running:
        removed = backup.prune(folder, 1)
        assert running.exists()
    assert removed == [left.name] and not left.exists()


def test_verify_records_beside_the_file_it_verified(taken: tuple[Path, Path]) -> None:
    path, key_file = taken
    renamed = path.with_name("mine" + backup.SUFFIX)
    path.rename(renamed)
    path.with_suffix(".json").rename(renamed.with_suffix(".json"))
    manifest = backup.verify(renamed, key_file)
    assert manifest.verified is not None
    assert backup._read_manifest(renamed) == manifest
    assert sorted(p.name for p in path.parent.glob("*.json")) == ["mine.json"]


def test_a_stream_older_than_the_index_asked_for_is_refused(tmp_path: Path) -> None:
    store, _ = _source(tmp_path / "source")
    folder = tmp_path / "backups"
    folder.mkdir()
    with pytest.raises(QuiverError, match="before 31: retry"):
        backup._receive(_responses(store, tmp_path / "work"), folder / ".partial-z.qbackup", 7, 31)
    store.close()


def test_restore_seeds_every_member_of_a_new_cluster(
    taken: tuple[Path, Path], tmp_path: Path
) -> None:
    path, key_file = taken
    target = tmp_path / "restored"
    manifest, has_users = backup.restore(path, target, key_file, None, nodes=3, zones=3)
    assert (manifest.applied_index, has_users) == (30, False)
    cluster = load_cluster(target)
    for node in cluster.nodes:
        config = load_node_config(target / node.config)
        store = NodeStore(config.data_dir, load_kek(config.key_file))
        snapshot = store.log.snapshot()
        assert (snapshot.metadata.index, snapshot.metadata.conf_state.voters) == (30, (1, 2, 3))
        assert store.graph.count_nodes("P") == 200
        assert store.graph.app_meta(MEMBER_PREFIX + b"9") is None  # the old cluster's member
        assert store.graph.app_meta(b"sm/other") == b"kept"
        assert store.graph.app_meta(SECURITY_KEY) is None
        store.close()
    with pytest.raises(QuiverError, match="not empty"):
        backup.restore(path, target, key_file, None, nodes=3, zones=3)


def test_a_restore_that_fails_leaves_no_cluster_behind(
    taken: tuple[Path, Path], other_key: Path, tmp_path: Path
) -> None:
    path, _ = taken
    other = other_key
    target = tmp_path / "restored"
    with pytest.raises(QuiverError, match="does not restore"):
        backup.restore(path, target, other, None, nodes=3, zones=3)
    assert not target.exists()
    assert not list(tmp_path.glob(".restored.restoring-*"))
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(QuiverError, match="not empty"):
        backup.restore(path, target, other, None, nodes=3, zones=3)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert backup.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "0", "1w", "nan", "inf"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(QuiverError, match="duration"):
        backup.parse_duration(text)


def _checkpoints(store: NodeStore) -> list[Path]:
    return list((store.snapshot_dir / "work").glob("checkpoint-*"))


def test_a_node_lets_go_of_a_backup_however_the_stream_ends(
    unstarted_node: Node, tmp_path: Path
) -> None:
    """Closed after one chunk, closed while a chunk is read, or read to its end: the
    checkpoint goes (on the backup thread, after that read) and the next backup runs."""
    node = unstarted_node
    store = NodeStore(tmp_path / "data", bytes(32))
    blob = "x" * 100_000
    store.graph.apply(WriteSet(tuple(CreateNode(i, ("B",), (("s", blob),)) for i in range(30))), 9)
    node.store, node.applied_index = store, 9

    async def released() -> bool:
        await asyncio.get_running_loop().run_in_executor(node._backups, lambda: None)
        return not _checkpoints(store) and not node._backing_up

    async def scenario() -> int:
        stream = await node.open_backup(0, 1.0)
        assert stream.applied_index == 9 and await stream.next()
        assert _checkpoints(store)
        with pytest.raises(QuiverError, match="running already"):
            await node.open_backup(0, 1.0)
        stream.close()
        stream.close()
        assert await released()

        stream = await node.open_backup(0, 1.0)
        # The backup thread held busy, so that the read queues behind it: closed meanwhile,
        # the stream's release queues behind the read, which gets to finish.
        busy, free = threading.Event(), threading.Event()
        node._backups.submit(lambda: (busy.set(), free.wait(HOLD_S)))
        reading = asyncio.ensure_future(stream.next())
        assert await asyncio.to_thread(busy.wait, HOLD_S)  # the read was queued meanwhile
        stream.close()
        free.set()
        assert await reading
        assert await released()

        stream = await node.open_backup(0, 1.0)
        chunks = 0
        while await stream.next() is not None:
            chunks += 1
        stream.close()
        assert await released()
        return chunks

    try:
        assert asyncio.run(scenario()) > 1
    finally:
        node._backups.shutdown(wait=True)
        store.close()


def test_a_backup_needs_a_whole_state_at_the_index_it_must_hold(
    unstarted_node: Node, tmp_path: Path
) -> None:
    node = unstarted_node
    store = NodeStore(tmp_path / "data", bytes(32))
    store.graph.apply(WriteSet(), 5)
    node.store, node.applied_index = store, 5

    async def scenario() -> None:
        with pytest.raises(QuiverError, match="index 6 not applied") as caught:
            await node.open_backup(6, 0.05)
        assert caught.value.code == "Neo.TransientError.Transaction.BookmarkTimeout"
        assert not node._backing_up and not _checkpoints(store)
        store.graph.begin_install()  # a snapshot from the leader half-way in
        with pytest.raises(QuiverError, match="no whole state"):
            await node.open_backup(0, 0.05)
        await asyncio.get_running_loop().run_in_executor(node._backups, lambda: None)
        assert not node._backing_up and not _checkpoints(store)

    try:
        asyncio.run(scenario())
    finally:
        node._backups.shutdown(wait=True)
        store.close()
