"""Received snapshot files: once the log names a snapshot, the received files at or below its
index go, but the one it names, and a newer one still on its way to the core stays. Before,
the snapshotter (writing this node's own snapshot) removed that newer file, and installing
it then stopped the node (seen twice in a chaos soak)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from cluster.node import Node
from raft.types import Snapshot, SnapshotMetadata


def _received(directory: Path, index: int) -> Path:
    path = directory / f"received-{index:020d}-2.qsnap"
    path.write_bytes(b"chunks")
    return path


def test_received_snapshot_files_newer_than_the_logs_are_kept(
    unstarted_node: Node, tmp_path: Path
) -> None:
    directory = tmp_path / "snapshots"
    directory.mkdir()
    older, named, newer = (_received(directory, i) for i in (90, 100, 120))
    current = Snapshot(json.dumps({"file": named.name}).encode(), SnapshotMetadata(index=100))
    unstarted_node.store = SimpleNamespace(  # type: ignore[assignment]
        log=SimpleNamespace(snapshot=lambda: current),
        snapshot_dir=directory,
        snapshot_path=lambda snapshot: directory / json.loads(snapshot.data)["file"],
    )
    unstarted_node._remove_stale_snapshot_files()
    assert sorted(p.name for p in directory.iterdir()) == [named.name, newer.name]
    assert not older.exists()
