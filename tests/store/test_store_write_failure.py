"""A failed RocksDB write of the graph store (``store-write-error``, raised as rocksdict
raises one) is a StoreWriteError: Neo4j's StorageDamageDetected code, the store's path and
RocksDB's reason in one line, the cause chained, and every later write fails too; what the
store says it applied stays what it applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import failpoints
from store.crypto import write_key_file
from store.graph import StoreWriteError
from store.node_store import NodeStore
from store.writeset import CreateNode, WriteSet


def _create(node_id: int) -> WriteSet:
    return WriteSet((CreateNode(node_id, ("A",), ()),))


def test_a_failed_rocksdb_write_stops_the_apply_with_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "kek"
    write_key_file(key_file)
    store = NodeStore.open(tmp_path / "node", key_file)
    try:
        monkeypatch.setattr(failpoints, "ACTIVE", {"store-write-error": "2"})
        monkeypatch.setattr(failpoints, "_STORE_WRITES", failpoints._SyncCounter())
        store.graph.apply(_create(1), 1)
        with pytest.raises(StoreWriteError) as raised:
            store.graph.apply(_create(2), 2)
        message = str(raised.value)
        assert "\n" not in message
        assert message.startswith("Neo.DatabaseError.General.StorageDamageDetected: ")
        assert str(tmp_path / "node") in message and "(failpoint store-write-error)" in message
        assert message.endswith("stopping: the graph might not hold what was applied")
        assert raised.value.status_code == "Neo.DatabaseError.General.StorageDamageDetected"
        assert raised.value.__cause__ is not None
        assert not isinstance(raised.value, OSError)  # no handler of passing I/O trouble takes it
        with pytest.raises(StoreWriteError):
            store.graph.apply(_create(3), 3)  # every write after the K-th fails too
        assert store.graph.applied_index() == 1
        monkeypatch.setattr(failpoints, "ACTIVE", None)
    finally:
        store.close()
