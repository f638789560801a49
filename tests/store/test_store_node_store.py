"""A node's data directory opened as one: the key comes from a 0600 file or the
environment, and a store written with one key does not open with another."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from raft.types import Entry, HardState
from store.crypto import KEK_ENV_VAR, IntegrityError, KeyConfigurationError, write_key_file
from store.node_store import NodeStore, ReencryptStatus
from store.writeset import CreateNode, WriteSet


def test_open_with_a_key_file_then_with_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "kek"
    write_key_file(key_file)
    store = NodeStore.open(tmp_path / "node", key_file)
    store.log.save([Entry(term=1, index=1, data=b"x")], HardState(term=1, commit=1))
    store.graph.apply(WriteSet((CreateNode(0, ("A",), ()),)), 1)
    store.close()
    kek_hex = key_file.read_text().strip()
    store = NodeStore.open(tmp_path / "node", environ={KEK_ENV_VAR: kek_hex})
    assert store.graph.count_nodes("A") == 1
    store.close()
    with pytest.raises(IntegrityError):
        NodeStore.open(tmp_path / "node", environ={KEK_ENV_VAR: "00" * 32})
    os.chmod(key_file, 0o640)
    with pytest.raises(KeyConfigurationError):
        NodeStore.open(tmp_path / "node", key_file)


def test_encryption_cannot_be_on_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="key-encryption key is required"):
        NodeStore(tmp_path, None)


def test_an_old_key_retires_only_once_nothing_uses_it(tmp_path: Path) -> None:
    kek = bytes(range(32))
    store = NodeStore(tmp_path, kek, max_segment_bytes=2048)
    assert store.keyring is not None

    def write(first: int, count: int) -> None:
        for index in range(first, first + count):
            store.log.save(
                [Entry(term=1, index=index, data=b"e" * 200)], HardState(term=1, commit=index)
            )
            store.graph.apply(WriteSet((CreateNode(index, ("A",), (("v", index),)),)), index)

    write(1, 20)
    store.keyring.rotate()
    write(21, 5)
    assert store.retire_unused_keys() == []  # graph and log still hold v1
    while not store.graph.reencrypt(max_values=7).complete:
        pass
    assert store.graph.key_versions() == {2}
    assert store.retire_unused_keys() == []  # the log still does
    write(26, 20)  # the log moves on to segments sealed under v2
    snapshot = store.take_snapshot()
    store.log.compact(snapshot.metadata.index)
    assert 1 not in store.log.key_versions()
    assert store.retire_unused_keys() == [1]
    assert store.keyring.versions() == [2]
    store.close()
    store = NodeStore(tmp_path, kek, max_segment_bytes=2048)
    assert store.graph.count_nodes("A") == 45
    assert store.log.hard_state().commit == 45
    store.close()


def test_background_reencryption_steps_are_bounded_and_end_idle(tmp_path: Path) -> None:
    kek = bytes(range(32))
    store = NodeStore(tmp_path, kek, max_segment_bytes=2048)
    assert store.keyring is not None
    assert store.reencrypt_step() == ReencryptStatus(0, idle=True)

    def write(first: int, count: int) -> None:
        for index in range(first, first + count):
            store.log.save(
                [Entry(term=1, index=index, data=b"e" * 200)], HardState(term=1, commit=index)
            )
            store.graph.apply(WriteSet((CreateNode(index, ("A",), (("v", index),)),)), index)

    write(1, 30)
    store.keyring.rotate()
    moved, steps = 0, 0
    while (status := store.reencrypt_step(max_records=8)).resealed or not status.waiting_for:
        assert status.resealed <= 8 and not status.idle and not status.retired
        moved += status.resealed
        steps += 1
        write(30 + steps, 1)  # applies go on between steps, under the new key
        assert steps < 100
    assert moved >= 30 and store.graph.key_versions() == {2}
    assert status.waiting_for == (1,), "the log's old entries keep v1 until compaction"
    write(31 + steps, 20)
    snapshot = store.take_snapshot()
    store.log.compact(snapshot.metadata.index)
    for _ in range(100):
        status = store.reencrypt_step(max_records=8)
        if status.idle:
            break
    assert status == ReencryptStatus(0, idle=True, retired=(1,), waiting_for=())
    assert store.keyring.versions() == [2]
    assert store.reencrypt_step() == ReencryptStatus(0, idle=True)
    store.close()
    store = NodeStore(tmp_path, kek, max_segment_bytes=2048)
    assert store.graph.count_nodes("A") == 30 + steps + 20
    store.close()
