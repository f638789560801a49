"""Snapshots of the graph: a consistent, encrypted, checksummed stream in chunks.

Owns the snapshot stream format and its two ends:
- ``snapshot_chunks`` takes a RocksDB checkpoint (consistent across column families, at
  one applied index), reads the graph's logical content out of it and yields chunks;
- ``SnapshotInstaller`` verifies and installs chunks, in order, into another store.

The content is logical (names, ids, values; never the sender's tokens, HMACs or keys), so a
receiver with its own data keys and index key rebuilds its own keyspace. Each stream has a
fresh random AES-256-GCM key, wrapped by the key-encryption key that the cluster's nodes
share; chunk ``n`` is sealed with nonce ``n`` and the stream id, ``n`` and the final flag
as associated data, so chunks cannot be reordered, dropped, replayed from another stream or
truncated; the final chunk carries the SHA-256 of all records and their counts.

Chunk: ``MAGIC | stream id(16) | seq u64 | final u8 | wrapped-key length u16 | wrapped key |
sealed payload``. Payload: records, each ``length u32 | store.codec value``: the header,
then ``["M", key, value]`` per application record (``GraphStore.app_meta``), nodes,
relationships, and the ``["E", nodes, relationships]`` trailer.

Must never: put plaintext records on disk or on the wire (with encryption on); install a
stream that did not verify to its end (the store stays marked ``installing`` until then).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from rocksdict import Checkpoint

from store.codec import DecodeError, decode_value, encode_value
from store.crypto import Cipher, IntegrityError, fsync_dir
from store.graph import GraphStore
from store.values import Value
from store.view import ConstraintInfo, IndexInfo
from store.writeset import (
    CreateIndex,
    CreateNode,
    CreateRelationship,
    CreateUniqueConstraint,
    DropIndex,
    Operation,
)

MAGIC: Final = b"QSNP1"
FORMAT: Final = 1
DEFAULT_CHUNK_BYTES: Final = 1 << 20
MAX_CHUNK_BYTES: Final = 64 << 20
INSTALL_BATCH_OPERATIONS: Final = 2_000
"""Operations per RocksDB batch while installing: bounds the memory of one batch."""

_HEAD = struct.Struct(">16sQBH")
_U32 = struct.Struct(">I")
_DIGEST_BYTES: Final = 32


class SnapshotError(IntegrityError):
    """A snapshot stream that does not verify: damaged, reordered, truncated or foreign."""


def _aad(stream_id: bytes, seq: int, final: bool) -> bytes:
    return b"quiver-snapshot:" + stream_id + seq.to_bytes(8, "big") + bytes((final,))


def _nonce(seq: int) -> bytes:
    # A fresh key per stream, so a counter nonce never repeats under one key.
    return seq.to_bytes(12, "big")


class SnapshotSource:
    """A checkpoint of a store, pinned at one applied index, to stream from.

    Creating it takes the checkpoint (hard links, cheap); ``close`` removes it.
    """

    def __init__(self, store: GraphStore, work_dir: Path) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        self._dir = work_dir / f"checkpoint-{os.urandom(8).hex()}"
        self._cipher = store.cipher
        Checkpoint(store.db).create_checkpoint(str(self._dir))
        try:
            self._view = GraphStore(self._dir, store.cipher)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.applied_index = self._view.applied_index()
        self.installing = self._view.installing()
        """Pinned in the middle of a snapshot install: not a whole state."""

    def chunks(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
        if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be in (0, {MAX_CHUNK_BYTES}]")
        return _stream(self._view, self._cipher, chunk_bytes)

    def close(self) -> None:
        self._view.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SnapshotSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def snapshot_chunks(
    store: GraphStore, work_dir: Path, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[bytes]:
    """The store's state at its current applied index, as a chunked sealed stream.

    The checkpoint under `work_dir` is removed when the iteration ends (or is closed).
    """
    with SnapshotSource(store, work_dir) as source:
        yield from source.chunks(chunk_bytes)


def _records(view: GraphStore) -> Iterator[Value]:
    header: dict[str, Value] = {
        "format": FORMAT,
        "applied": view.applied_index(),
        "next": list(view.next_ids()),
        "indexes": [
            [i.name, i.label, list(i.properties), i.on_relationships, i.unique]
            for i in view.indexes()
        ],
        "constraints": [[c.name, c.label, list(c.properties), c.kind] for c in view.constraints()],
    }
    yield header
    for key, value in view.app_meta_items():
        yield ["M", key, value]
    for node_id in view.node_ids():
        node = view.node(node_id)
        assert node is not None
        labels: list[Value] = [*sorted(node.labels)]
        yield ["N", node_id, labels, dict(node.properties)]
    for rel_id in view.relationship_ids():
        rel = view.relationship(rel_id)
        assert rel is not None
        yield ["R", rel_id, rel.type, rel.start, rel.end, dict(rel.properties)]


def _stream(view: GraphStore, cipher: Cipher, chunk_bytes: int) -> Iterator[bytes]:
    stream_id = os.urandom(16)
    stream_key = os.urandom(32)
    wrapped = cipher.wrap_key(stream_key, stream_id.hex().encode())
    aead = AESGCM(stream_key) if cipher.encrypts else None
    digest = hashlib.sha256()
    counts = {"N": 0, "R": 0}
    seq = 0

    def chunk(payload: bytes, final: bool) -> bytes:
        aad = _aad(stream_id, seq, final)
        body = payload if aead is None else aead.encrypt(_nonce(seq), payload, aad)
        head = _HEAD.pack(stream_id, seq, final, len(wrapped))
        return MAGIC + head + wrapped + body

    buffer = bytearray()
    for record in _records(view):
        if isinstance(record, list) and record[0] in counts:
            counts[str(record[0])] += 1
        encoded = encode_value(record)
        framed = _U32.pack(len(encoded)) + encoded
        digest.update(framed)
        buffer += framed
        if len(buffer) >= chunk_bytes:
            yield chunk(bytes(buffer), final=False)
            seq += 1
            buffer = bytearray()
    trailer = encode_value(["E", counts["N"], counts["R"]])
    framed = _U32.pack(len(trailer)) + trailer
    digest.update(framed)
    buffer += framed + digest.digest()
    yield chunk(bytes(buffer), final=True)


class StreamKeyOpener(Protocol):
    """What opens a stream's key: the receiving store's cipher, or a backup's KEK."""

    def unwrap_key(self, wrapped: bytes, label: bytes) -> bytes: ...

    @property
    def encrypts(self) -> bool: ...


class SnapshotInstaller:
    """Feeds verified chunks, in order, into `store`, replacing everything in it.

    `keys` opens the stream's key (default: the store's own cipher, which shares the
    sender's KEK); `keep_meta` chooses the application records installed (default: all).
    """

    def __init__(
        self,
        store: GraphStore,
        *,
        keys: StreamKeyOpener | None = None,
        keep_meta: Callable[[bytes], bool] | None = None,
    ) -> None:
        self._store = store
        self._cipher: StreamKeyOpener = store.cipher if keys is None else keys
        self._keep_meta = keep_meta
        self._stream_id: bytes | None = None
        self._aead: AESGCM | None = None
        self._next_seq = 0
        self._done = False
        self._digest = hashlib.sha256()
        self._header: dict[str, Value] | None = None
        self._pending: list[Operation] = []
        self._app_meta: list[tuple[bytes, bytes]] = []
        self._counts = {"N": 0, "R": 0}
        self.applied_index = 0

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, chunk: bytes) -> None:
        where = f"snapshot chunk {self._next_seq}"
        if self._done:
            raise SnapshotError(where, "arrived after the final chunk")
        if not chunk.startswith(MAGIC) or len(chunk) < len(MAGIC) + _HEAD.size:
            raise SnapshotError(where, "not a Quiver snapshot chunk")
        stream_id, seq, final, wrapped_len = _HEAD.unpack_from(chunk, len(MAGIC))
        body_at = len(MAGIC) + _HEAD.size + wrapped_len
        if self._stream_id is None:
            self._stream_id = stream_id
            wrapped = chunk[len(MAGIC) + _HEAD.size : body_at]
            key = self._cipher.unwrap_key(wrapped, stream_id.hex().encode())
            self._aead = AESGCM(key) if self._cipher.encrypts else None
        if stream_id != self._stream_id:
            raise SnapshotError(where, "belongs to another snapshot stream")
        if seq != self._next_seq:
            raise SnapshotError(where, f"out of order (got chunk {seq})")
        body = chunk[body_at:]
        if self._aead is not None:
            try:
                body = self._aead.decrypt(_nonce(seq), body, _aad(stream_id, seq, bool(final)))
            except InvalidTag:
                raise SnapshotError(where, "failed authentication") from None
        self._next_seq += 1
        if final:
            if len(body) < _DIGEST_BYTES:
                raise SnapshotError(where, "final chunk too short")
            body, expected = body[:-_DIGEST_BYTES], body[-_DIGEST_BYTES:]
            self._records(body, where)
            if self._digest.digest() != expected:
                raise SnapshotError(where, "checksum of the stream does not match")
            self._finish(where)
        else:
            self._records(body, where)

    def _records(self, body: bytes, where: str) -> None:
        self._digest.update(body)
        at = 0
        while at < len(body):
            if at + 4 > len(body):
                raise SnapshotError(where, "record length runs past the chunk")
            (length,) = _U32.unpack_from(body, at)
            end = at + 4 + length
            if end > len(body):
                raise SnapshotError(where, "record runs past the chunk")
            try:
                record = decode_value(body[at + 4 : end])
            except DecodeError as error:
                raise SnapshotError(where, f"malformed record ({error})") from None
            self._record(record, where)
            at = end

    def _record(self, record: Value, where: str) -> None:
        if self._header is None:
            if not isinstance(record, dict) or record.get("format") != FORMAT:
                raise SnapshotError(where, "stream does not start with a known header")
            self._header = record
            self._store.begin_install()
            self._store.install_operations(_schema_operations(record))
            return
        if not isinstance(record, list) or not record or record[0] not in ("M", "N", "R", "E"):
            raise SnapshotError(where, "unknown record")
        kind = record[0]
        if kind == "M":
            _, key, value = record
            if not isinstance(key, bytes) or not isinstance(value, bytes):
                raise SnapshotError(where, "malformed application record")
            if self._keep_meta is None or self._keep_meta(key):
                self._app_meta.append((key, value))
        elif kind == "N":
            _, node_id, labels, props = record
            assert isinstance(node_id, int) and isinstance(labels, list)
            assert isinstance(props, dict)
            labels_tuple = tuple(str(label) for label in labels)
            self._pending.append(CreateNode(node_id, labels_tuple, tuple(props.items())))
            self._counts["N"] += 1
        elif kind == "R":
            _, rel_id, rel_type, start, end, props = record
            assert isinstance(rel_id, int) and isinstance(rel_type, str)
            assert isinstance(start, int) and isinstance(end, int) and isinstance(props, dict)
            self._pending.append(
                CreateRelationship(rel_id, rel_type, start, end, tuple(props.items()))
            )
            self._counts["R"] += 1
        else:
            if record[1:] != [self._counts["N"], self._counts["R"]]:
                raise SnapshotError(where, "record counts do not match the trailer")
        if len(self._pending) + len(self._app_meta) >= INSTALL_BATCH_OPERATIONS:
            self._flush()

    def _flush(self) -> None:
        if self._app_meta:
            self._store.install_app_meta(self._app_meta)
            self._app_meta = []
        if self._pending:
            self._store.install_operations(self._pending)
            self._pending = []

    def _finish(self, where: str) -> None:
        header = self._header
        if header is None:
            raise SnapshotError(where, "stream ended before its header")
        self._flush()
        applied, next_ids = header["applied"], header["next"]
        assert isinstance(applied, int) and isinstance(next_ids, list)
        node_next, rel_next = next_ids
        assert isinstance(node_next, int) and isinstance(rel_next, int)
        self._store.finish_install(applied, (node_next, rel_next))
        self.applied_index = applied
        self._done = True


def _schema_operations(header: dict[str, Value]) -> list[Operation]:
    """Operations that rebuild exactly the header's indexes and constraints."""
    raw_indexes, raw_constraints = header["indexes"], header["constraints"]
    assert isinstance(raw_indexes, list) and isinstance(raw_constraints, list)
    indexes: dict[str, IndexInfo] = {}
    for item in raw_indexes:
        assert isinstance(item, list)
        name, label, props, on_rels, unique = item
        assert isinstance(name, str) and isinstance(label, str) and isinstance(props, list)
        properties = tuple(str(p) for p in props)
        indexes[name] = IndexInfo(name, label, properties, bool(on_rels), bool(unique))
    operations: list[Operation] = []
    for item in raw_constraints:
        assert isinstance(item, list)
        name, label, props, _kind = item
        assert isinstance(name, str) and isinstance(label, str) and isinstance(props, list)
        constraint = ConstraintInfo(name, label, tuple(str(p) for p in props))
        operations.append(CreateUniqueConstraint(name, label, constraint.properties))
        if name not in indexes:
            operations.append(DropIndex(name))
    for name, index in indexes.items():
        implied = IndexInfo(name, index.label, index.properties, unique=True)
        if index == implied and any(
            isinstance(op, CreateUniqueConstraint) and op.name == name for op in operations
        ):
            continue
        operations.append(CreateIndex(name, index.label, index.properties, index.on_relationships))
    return operations


def install_chunks(
    store: GraphStore,
    chunks: Iterable[bytes],
    *,
    keys: StreamKeyOpener | None = None,
    keep_meta: Callable[[bytes], bool] | None = None,
) -> int:
    """Install a whole stream; the applied index it brought."""
    installer = SnapshotInstaller(store, keys=keys, keep_meta=keep_meta)
    for chunk in chunks:
        installer.feed(chunk)
    if not installer.done:
        raise SnapshotError("snapshot stream", "ended before its final chunk")
    return installer.applied_index


def write_snapshot_file(chunks: Iterable[bytes], path: Path) -> None:
    """Keep a stream on disk (length-prefixed chunks), durably and atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as file:
        for chunk in chunks:
            file.write(_U32.pack(len(chunk)) + chunk)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_snapshot_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while head := file.read(4):
            if len(head) < 4:
                raise SnapshotError(f"snapshot file {path.name}", "truncated")
            (length,) = _U32.unpack(head)
            if length > MAX_CHUNK_BYTES + 4096:
                raise SnapshotError(f"snapshot file {path.name}", "chunk too large")
            chunk = file.read(length)
            if len(chunk) != length:
                raise SnapshotError(f"snapshot file {path.name}", "truncated")
            yield chunk
