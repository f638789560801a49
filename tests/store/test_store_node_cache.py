"""The graph store's cache of decoded node records: an index seek and the record read after
it decrypt the node once; a read after an apply sees what the apply wrote, a deleted node
is not found, a record read while a commit came in is not kept, the cache keeps to its
byte budget, and a snapshot installation or close forgets it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store.crypto import Keyring, PlaintextCipher
from store.graph import GraphStore
from store.writeset import (
    AddLabel,
    CreateIndex,
    CreateNode,
    DeleteNode,
    RemoveLabel,
    SetNodeProperty,
    WriteSet,
)

KEK = bytes(range(32))


class CountingCipher:
    """A Keyring that counts decryptions of node records (and can act inside one)."""

    def __init__(self, inner: Keyring) -> None:
        self.inner = inner
        self.node_opens = 0
        self.during_node_open: Callable[[], None] | None = None

    def open(self, sealed: bytes, aad: bytes, record: str | None = None) -> bytes:
        plain = self.inner.open(sealed, aad, record)
        if aad.startswith(b"graph:n"):
            self.node_opens += 1
            hook, self.during_node_open = self.during_node_open, None
            if hook is not None:
                hook()
        return plain

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _ws(*operations: object) -> WriteSet:
    return WriteSet(tuple(operations))  # type: ignore[arg-type]


def _store(path: Path, **options: Any) -> tuple[GraphStore, CountingCipher]:
    cipher = CountingCipher(Keyring(path, KEK))
    graph = GraphStore(path / "graph", cipher, **options)  # type: ignore[arg-type]
    graph.apply(
        _ws(
            CreateIndex("person_id", "Person", ("id",)),
            *(CreateNode(n, ("Person",), (("id", n), ("name", f"p{n}"))) for n in range(5)),
        ),
        1,
    )
    return graph, cipher


def _seek(graph: GraphStore, person_id: int) -> list[int]:
    return list(graph.node_ids_by_property("Person", "id", person_id))


def test_a_seek_and_the_record_read_after_it_decrypt_the_node_once(tmp_path: Path) -> None:
    graph, cipher = _store(tmp_path)
    before = cipher.node_opens
    (node_id,) = _seek(graph, 3)
    record = graph.node(node_id)
    assert record is not None and record.properties["name"] == "p3"
    assert cipher.node_opens == before + 1


def test_a_read_after_an_apply_sees_the_changed_node(tmp_path: Path) -> None:
    graph, _ = _store(tmp_path)
    assert _seek(graph, 2) == [2]
    assert graph.node(2).properties["name"] == "p2"  # type: ignore[union-attr]
    graph.apply(_ws(SetNodeProperty(2, "name", "renamed"), AddLabel(2, "Admin")), 2)
    record = graph.node(2)
    assert record is not None
    assert record.properties["name"] == "renamed"
    assert record.labels == {"Person", "Admin"}
    graph.apply(_ws(SetNodeProperty(2, "id", 20), RemoveLabel(2, "Admin")), 3)
    assert _seek(graph, 2) == []
    assert _seek(graph, 20) == [2]
    assert graph.node(2).labels == {"Person"}  # type: ignore[union-attr]


def test_a_deleted_node_is_not_found(tmp_path: Path) -> None:
    graph, _ = _store(tmp_path)
    assert _seek(graph, 4) == [4]
    assert graph.node(4) is not None
    graph.apply(_ws(DeleteNode(4)), 2)
    assert graph.node(4) is None
    assert _seek(graph, 4) == []


def test_a_record_read_while_a_commit_came_in_is_not_kept(tmp_path: Path) -> None:
    graph, cipher = _store(tmp_path)

    def rename_during_the_read() -> None:
        graph.apply(_ws(SetNodeProperty(1, "name", "new")), 2)

    cipher.during_node_open = rename_during_the_read
    stale = graph.node(1)  # decrypted before the apply wrote: the old name
    assert stale is not None and stale.properties["name"] == "p1"
    record = graph.node(1)
    assert record is not None and record.properties["name"] == "new"


def test_the_cache_is_bounded_by_bytes_and_can_be_off(tmp_path: Path) -> None:
    # Each person record costs 512 + about 40 bytes: 1 200 hold two of them, not three.
    graph, cipher = _store(tmp_path / "small", node_cache_bytes=1_200)
    start = cipher.node_opens
    for node_id in (0, 1, 2, 2, 1, 0):  # 0 left the cache when 2 came in
        graph.node(node_id)
    assert cipher.node_opens == start + 4
    graph.apply(_ws(CreateNode(9, ("Blob",), (("data", "x" * 2_000),))), 2)
    start = cipher.node_opens
    for _ in range(3):  # larger than the whole budget: never kept
        assert graph.node(9) is not None
    assert cipher.node_opens == start + 3
    graph.close()
    off, counted = _store(tmp_path / "off", node_cache_bytes=0)
    start = counted.node_opens
    for _ in range(3):
        off.node(0)
    assert counted.node_opens == start + 3
    with pytest.raises(ValueError):
        GraphStore(tmp_path / "bad", PlaintextCipher(), node_cache_bytes=-1)


def test_a_snapshot_installation_forgets_every_cached_node(tmp_path: Path) -> None:
    graph, _ = _store(tmp_path)
    assert graph.node(0) is not None and graph.node(1) is not None
    graph.begin_install()
    assert graph.node(0) is None
    graph.install_operations([CreateNode(0, ("City",), (("name", "Oslo"),))])
    graph.finish_install(10, (1, 0))
    record = graph.node(0)
    assert record is not None and record.labels == {"City"}
    assert graph.node(1) is None


def test_a_closed_store_serves_no_cached_record(tmp_path: Path) -> None:
    graph, _ = _store(tmp_path)
    assert graph.node(0) is not None
    graph.close()
    with pytest.raises(KeyError):
        graph.node(0)
