"""A failed fdatasync of the raft log is final: the error names the file and tells the node
to stop (StorageDamageDetected), and no later sync succeeds, even once the disk answers
again (the kernel may have dropped the unsynced pages: PostgreSQL's fsyncgate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raft.types import Entry
from store import failpoints
from store.crypto import write_key_file
from store.node_store import NodeStore
from store.raftlog import LogSyncError


def _entry(index: int) -> Entry:
    return Entry(term=1, index=index, data=f"entry-{index}".encode())


def test_after_a_failed_fdatasync_the_log_never_syncs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "kek"
    write_key_file(key_file)
    store = NodeStore.open(tmp_path / "node", key_file)
    try:
        store.log.save([_entry(1)])
        monkeypatch.setattr(failpoints, "ACTIVE", {"fsync-error": "1"})
        monkeypatch.setattr(failpoints, "_SYNCS", failpoints._SyncCounter())
        with pytest.raises(LogSyncError) as failed:
            store.log.save([_entry(2)])
        message = str(failed.value)
        assert message.startswith("Neo.DatabaseError.General.StorageDamageDetected: fdatasync of ")
        assert str(tmp_path / "node") in message and "(failpoint fsync-error)" in message
        assert message.endswith("stopping: the data might not be on disk")
        assert "\n" not in message

        monkeypatch.setattr(failpoints, "ACTIVE", None)  # the disk answers again
        with pytest.raises(LogSyncError):
            store.log.save([_entry(3)])
        with pytest.raises(LogSyncError):
            store.log.sync()
    finally:
        monkeypatch.setattr(failpoints, "ACTIVE", None)
        store.close()
