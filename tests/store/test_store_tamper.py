"""Tampering with stored values gives a clear integrity error naming the record key."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from store.crypto import IntegrityError, Keyring, load_kek, write_key_file
from store.graph import CF_GRAPH, GraphStore, node_key, open_rdict
from store.writeset import CreateNode, WriteSet

KEK = bytes(range(32))


def _populated(path: Path, kek: bytes = KEK) -> None:
    graph = GraphStore(path / "graph", Keyring(path, kek))
    graph.apply(
        WriteSet(tuple(CreateNode(i, ("A",), (("secret", f"value-{i}"),)) for i in range(3))), 1
    )
    graph.close()


def _edit_raw(path: Path, edit: object) -> None:
    db = open_rdict(path / "graph")
    family = db.get_column_family(CF_GRAPH)
    edit(family)  # type: ignore[operator]
    del family
    db.close()


def test_flipped_byte_in_a_value_names_the_record(tmp_path: Path) -> None:
    _populated(tmp_path)

    def flip(family: dict[bytes, bytes]) -> None:
        value = bytearray(family[node_key(1)])
        value[-3] ^= 0x10
        family[node_key(1)] = bytes(value)

    _edit_raw(tmp_path, flip)
    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    assert graph.node(0) is not None
    with pytest.raises(IntegrityError) as caught:
        graph.node(1)
    assert f"graph record key {node_key(1).hex()}" in str(caught.value)
    assert "value-1" not in str(caught.value)
    assert caught.value.status_code == "Neo.DatabaseError.General.StorageDamageDetected"


def test_values_swapped_between_keys_fail_authentication(tmp_path: Path) -> None:
    _populated(tmp_path)

    def swap(family: dict[bytes, bytes]) -> None:
        first, second = family[node_key(0)], family[node_key(2)]
        family[node_key(0)], family[node_key(2)] = second, first

    _edit_raw(tmp_path, swap)
    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    for node_id in (0, 2):
        with pytest.raises(IntegrityError, match=node_key(node_id).hex()):
            graph.node(node_id)
    assert graph.node(1) is not None


def test_a_wrong_key_file_is_refused_with_an_integrity_error(tmp_path: Path) -> None:
    right, wrong = tmp_path / "right.key", tmp_path / "wrong.key"
    write_key_file(right)
    write_key_file(wrong)
    _populated(tmp_path / "node", load_kek(right))
    with pytest.raises(IntegrityError, match="wrong key-encryption key"):
        Keyring(tmp_path / "node", load_kek(wrong))


def test_data_under_another_keyring_fails_naming_the_record(tmp_path: Path) -> None:
    _populated(tmp_path / "a")
    _populated(tmp_path / "b")
    # Graph files of one node beside the keyring of another (same KEK, other data keys).
    shutil.rmtree(tmp_path / "b" / "graph")
    shutil.copytree(tmp_path / "a" / "graph", tmp_path / "b" / "graph")
    with pytest.raises(IntegrityError, match="data key v1"):
        GraphStore(tmp_path / "b" / "graph", Keyring(tmp_path / "b", KEK))
    assert os.path.exists(tmp_path / "b" / "keyring.json")
