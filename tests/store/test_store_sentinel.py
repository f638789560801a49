"""No plaintext at rest: a sentinel written everywhere a user can put data is found in no
file under the data directory — and the same scan finds it when encryption is off."""

from __future__ import annotations

import os
from pathlib import Path

from raft.types import ConfState, Entry, HardState
from store.node_store import NodeStore
from store.writeset import (
    CreateIndex,
    CreateNode,
    CreateRelationship,
    CreateUniqueConstraint,
    WriteSet,
)

KEK = bytes(range(32))


def _forms(sentinel: str) -> list[bytes]:
    raw = sentinel.encode()
    return [
        raw,
        sentinel.encode("utf-16-le"),
        sentinel.encode("utf-16-be"),
        raw.hex().encode(),
        raw.hex().upper().encode(),
    ]


def _fill(data_dir: Path, sentinel: str, encrypt: bool) -> None:
    store = NodeStore(data_dir, KEK if encrypt else None, encrypt=encrypt)
    label, key, rel_type = f"L{sentinel}", f"k{sentinel}", f"T{sentinel}"

    def write(index: int, base: int) -> None:
        ops = [
            CreateNode(base, (label,), ((key, f"v{sentinel}"), ("b", sentinel.encode()))),
            CreateNode(base + 1, ("Plain",), (("list", [sentinel, "x"]),)),
            CreateRelationship(base, rel_type, base, base + 1, ((key, sentinel),)),
        ]
        entry = Entry(term=1, index=index, data=f"write set carrying {sentinel}".encode())
        store.log.save([entry], HardState(term=1, vote=1, commit=index))
        store.graph.apply(WriteSet(tuple(ops)), index)

    store.graph.apply(
        WriteSet(
            (
                CreateIndex(f"i{sentinel}", label, (key,)),
                CreateUniqueConstraint(f"u{sentinel}", label, (f"id{sentinel}",)),
            )
        ),
        1,
    )
    store.log.save([Entry(term=1, index=1, data=b"schema")], HardState(term=1, commit=1))
    for index in range(2, 40):
        write(index, index * 10)
    store.take_snapshot(ConfState(voters=(1,)))
    if store.keyring is not None:
        store.keyring.rotate()
    for index in range(40, 60):
        write(index, index * 10)
    assert list(store.graph.node_ids_by_property(label, key, f"v{sentinel}"))
    store.graph.flush()  # memtables into SST files, so those are scanned too
    store.close()


def _hits(data_dir: Path, sentinel: str) -> list[str]:
    hits = []
    scanned = 0
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            path = Path(root) / name
            data = path.read_bytes()
            scanned += 1
            hits += [f"{path.relative_to(data_dir)}" for form in _forms(sentinel) if form in data]
    assert scanned > 10
    return hits


def test_sentinel_is_nowhere_on_disk_with_encryption_on(tmp_path: Path) -> None:
    sentinel = "S3NT1NEL" + os.urandom(8).hex()
    _fill(tmp_path / "node", sentinel, encrypt=True)
    kinds = {p.suffix or p.name for p in (tmp_path / "node").rglob("*") if p.is_file()}
    assert {".sst", ".log", ".seg", ".qsnap", ".bin", ".json"} <= kinds
    assert _hits(tmp_path / "node", sentinel) == []


def test_the_scan_finds_the_sentinel_when_encryption_is_off(tmp_path: Path) -> None:
    sentinel = "S3NT1NEL" + os.urandom(8).hex()
    _fill(tmp_path / "node", sentinel, encrypt=False)
    hits = _hits(tmp_path / "node", sentinel)
    assert any(hit.endswith(".seg") for hit in hits)
    assert any(hit.endswith(".qsnap") for hit in hits)
    assert any(hit.endswith(".sst") or hit.endswith(".log") for hit in hits)
