"""One node's storage, opened together: keyring, Raft log, graph and snapshots.

Owns the layout of a node's data directory::

    <data>/keyring.json     data keys and the index key, wrapped by the KEK
    <data>/raftlog/         the durable Raft log (store.raftlog)
    <data>/graph/           the graph (store.graph, RocksDB)
    <data>/snapshots/       durable snapshot streams (store.snapshot) and checkpoints

and the order of things across them: a snapshot file is durable before the log records it,
and the log is compacted only up to a snapshot it recorded. The cluster calls every method
here from a worker thread (they block on fsync and RocksDB), never from the event loop.

Must never: open without a key-encryption key unless told, explicitly, to store plaintext
(``encrypt=False`` exists for the benchmark's baseline and for the test that proves the
sentinel scan can fail).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from raft.types import ConfState, HardState, Snapshot, SnapshotMetadata
from store.crypto import Cipher, Keyring, PlaintextCipher, load_kek
from store.graph import GraphStore
from store.raftlog import DEFAULT_MAX_SEGMENT_BYTES, DurableLog
from store.snapshot import (
    SnapshotError,
    SnapshotSource,
    StreamKeyOpener,
    install_chunks,
    read_snapshot_file,
    write_snapshot_file,
)

SEED_TERM: Final = 1
"""The term of the snapshot a seeded store's log begins with (``NodeStore.seed``): the same
on every member of the new cluster, which elects its first leader in a later term."""
SNAPSHOTS_KEPT: Final = 2
"""Snapshot files kept on disk; older ones are deleted when a new one is taken."""
DEFAULT_REENCRYPT_STEP_RECORDS: Final = 1_000
"""Graph values one ``reencrypt_step`` visits (reads, and reseals if under an old key)."""


@dataclass(slots=True, frozen=True)
class ReencryptStatus:
    """What one ``NodeStore.reencrypt_step`` did, and what is left."""

    resealed: int
    """Graph values moved to the current data key by this step."""
    idle: bool
    """Only the current data key is left: nothing to do until the next rotation."""
    retired: tuple[int, ...] = ()
    """Data key versions retired by this step."""
    waiting_for: tuple[int, ...] = ()
    """Older versions still in use after a complete graph pass: by Raft log entries not yet
    compacted (a snapshot and compaction past the rotation frees them), or by a snapshot
    checkpoint being streamed."""


class NodeStore:
    def __init__(
        self,
        data_dir: Path,
        kek: bytes | None,
        *,
        encrypt: bool = True,
        max_segment_bytes: int | None = None,
        rotate_after: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cipher: Cipher
        if encrypt:
            if kek is None:
                raise ValueError("encryption is on: a key-encryption key is required")
            options = {} if rotate_after is None else {"rotate_after": rotate_after}
            self.keyring: Keyring | None = Keyring(self.data_dir, kek, **options)
            self.cipher = self.keyring
        else:
            self.keyring = None
            self.cipher = PlaintextCipher()
        self.log = DurableLog(
            self.data_dir / "raftlog",
            self.cipher,
            max_segment_bytes=max_segment_bytes or DEFAULT_MAX_SEGMENT_BYTES,
        )
        self.graph = GraphStore(self.data_dir / "graph", self.cipher)
        self.snapshot_dir = self.data_dir / "snapshots"
        # Checkpoints left by a process that died while streaming one: nothing reads them
        # now, and each would pin old SSTs (and hold back key retirement) for ever.
        for stale in (self.snapshot_dir / "work").glob("checkpoint-*"):
            shutil.rmtree(stale, ignore_errors=True)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        key_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> NodeStore:
        """Open with the KEK from `key_file` (mode 0600) or else ``$QUIVER_KEK``."""
        return cls(data_dir, load_kek(key_file, environ))

    def take_snapshot(self, conf_state: ConfState | None = None) -> Snapshot:
        """Write the graph's state at its applied index to a durable snapshot file and
        record it in the log (which may then be compacted up to it)."""
        with self.checkpoint() as source:
            return self.write_snapshot(source, conf_state)

    def checkpoint(self) -> SnapshotSource:
        """Pin the graph at its applied index (cheap: hard links). Taken where no apply runs
        concurrently, so that the caller knows which configuration goes with it; written
        out later, elsewhere, by ``write_snapshot``. The caller closes it."""
        self.snapshot_dir.mkdir(exist_ok=True)
        return SnapshotSource(self.graph, self.snapshot_dir / "work")

    def write_snapshot(self, source: SnapshotSource, conf_state: ConfState | None) -> Snapshot:
        """Write a pinned checkpoint to a durable snapshot file and record it in the log
        (which may then be compacted up to it). `conf_state` is the configuration as of the
        checkpoint's applied index."""
        descriptor = self._snapshot_file(source)
        snapshot = self.log.create_snapshot(source.applied_index, conf_state, descriptor)
        for old in sorted(self.snapshot_dir.glob("snapshot-*.qsnap"))[:-SNAPSHOTS_KEPT]:
            old.unlink()
        return snapshot

    def _snapshot_file(self, source: SnapshotSource) -> bytes:
        """Write the checkpoint's stream to its durable file; the log's descriptor of it."""
        applied = source.applied_index
        path = self.snapshot_dir / f"snapshot-{applied:020d}.qsnap"
        write_snapshot_file(source.chunks(), path)
        return json.dumps({"file": path.name, "index": applied}).encode()

    def seed(
        self,
        chunks: Iterable[bytes],
        conf_state: ConfState,
        *,
        keys: StreamKeyOpener | None = None,
        keep_meta: Callable[[bytes], bool] | None = None,
    ) -> Snapshot:
        """Make this new store a member of a new cluster holding the state `chunks` carry
        (a backup): the graph installed from them, and the log beginning with a snapshot of
        it in `conf_state`, at the stream's applied index and ``SEED_TERM``. Every member
        seeded from one stream starts from the same state and log. `keys` opens the
        stream's key when this store's KEK is not the one that sealed it.

        Refuses a store that holds anything (a log, a snapshot or an applied entry)."""
        if self.log.last_index() or self.log.snapshot().metadata.index:
            raise ValueError(f"{self.data_dir} has a Raft log: only a new store is seeded")
        if self.graph.applied_index():
            raise ValueError(f"{self.data_dir} has a graph: only a new store is seeded")
        applied = install_chunks(self.graph, chunks, keys=keys, keep_meta=keep_meta)
        if applied < 1:
            raise SnapshotError("seed stream", "holds no applied entry to begin a log at")
        self.snapshot_dir.mkdir(exist_ok=True)
        with self.checkpoint() as source:
            descriptor = self._snapshot_file(source)
        snapshot = Snapshot(
            data=descriptor,
            metadata=SnapshotMetadata(conf_state=conf_state, index=applied, term=SEED_TERM),
        )
        self.log.apply_snapshot(snapshot)
        # Its term as the log's: the new cluster's first election is in a later one.
        self.log.save(hard_state=HardState(term=SEED_TERM, commit=applied))
        return snapshot

    def retire_unused_keys(self) -> list[int]:
        """Retire every data key older than the current one that nothing on disk uses.

        Run after ``graph.reencrypt`` reports a complete pass and the log was compacted
        past the rotation; refuses while a snapshot checkpoint is being streamed (it may
        hold values under old keys). Snapshot files use per-stream keys, not data keys.
        """
        if self.keyring is None:
            return []
        if self._snapshot_streaming():
            raise RuntimeError("a snapshot is being streamed; retire keys afterwards")
        current = self.keyring.current_version()
        self.log.reseal_files()
        in_use = self.graph.key_versions() | self.log.key_versions()
        retired = [v for v in self.keyring.versions() if v < current and v not in in_use]
        for version in retired:
            self.keyring.retire(version)
        return retired

    def reencrypt_step(self, max_records: int = DEFAULT_REENCRYPT_STEP_RECORDS) -> ReencryptStatus:
        """One bounded step of background re-encryption, for the cluster to call
        periodically from its storage thread (it blocks on RocksDB).

        Idle (no reads at all) when the keyring holds only the current data key. Otherwise
        it visits up to `max_records` graph values, resealing those under older keys
        (``GraphStore.reencrypt``, resumable); when a whole pass found nothing left to
        move, it reseals the Raft log's files and retires every older key nothing on disk
        uses. Log entries are never rewritten: keys they use wait for compaction.
        """
        if self.keyring is None:
            return ReencryptStatus(0, idle=True)
        current = self.keyring.current_version()
        if self.keyring.versions() == [current]:
            return ReencryptStatus(0, idle=True)
        progress = self.graph.reencrypt(max_values=max_records)
        if not progress.complete:
            return ReencryptStatus(progress.resealed, idle=False)
        # While a snapshot checkpoint is streamed it may hold old values: a later step.
        retired = [] if self._snapshot_streaming() else self.retire_unused_keys()
        left = tuple(v for v in self.keyring.versions() if v != current)
        return ReencryptStatus(progress.resealed, not left, tuple(retired), left)

    def _snapshot_streaming(self) -> bool:
        return any((self.snapshot_dir / "work").glob("checkpoint-*"))

    def snapshot_path(self, snapshot: Snapshot) -> Path:
        name = json.loads(snapshot.data)["file"]
        assert isinstance(name, str)
        return self.snapshot_dir / name

    def install_snapshot_file(self, path: Path) -> int:
        """Replace the graph with a snapshot stream kept in `path`; its applied index."""
        return install_chunks(self.graph, read_snapshot_file(path))

    def close(self) -> None:
        self.log.close()
        self.graph.close()
