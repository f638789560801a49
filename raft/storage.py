"""The storage boundary of the consensus core, and an in-memory implementation.

`Storage` is what the core reads from: the stable log, the hard state and the latest
snapshot. The application writes to it (after persisting a `Ready`), never the core.
`store/` implements it durably; `MemoryStorage` serves the simulator and the tests.
Nothing here performs I/O.
"""

from __future__ import annotations

from typing import Protocol

from raft.errors import (
    CompactedError,
    SnapshotOutOfDateError,
    UnavailableError,
)
from raft.types import (
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
)

NO_LIMIT = 1 << 62
"""A byte budget that never binds."""


class Storage(Protocol):
    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries in [lo, hi), at most `max_size` bytes but always at least one.

        Raises CompactedError when lo is compacted, UnavailableError when hi-1 is past the end.
        """
        ...

    def term(self, index: int) -> int:
        """Term of the entry at `index`, for index in [first_index-1, last_index]."""
        ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot; SnapshotTemporarilyUnavailableError if not ready."""
        ...


def limit_size(entries: list[Entry], max_size: int) -> list[Entry]:
    """The longest prefix within `max_size` bytes, but never fewer than one entry."""
    if not entries:
        return entries
    size = entries[0].size()
    for count in range(1, len(entries)):
        size += entries[count].size()
        if size > max_size:
            return entries[:count]
    return entries


class MemoryStorage:
    """Storage held in memory. entries[0] is a dummy at the snapshot's index and term."""

    def __init__(self) -> None:
        self.hard_state = HardState()
        self._snapshot = Snapshot()
        self._entries: list[Entry] = [Entry(term=0, index=0)]

    # -- reads (the Storage protocol) --------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self._snapshot.metadata.conf_state

    def _offset(self) -> int:
        return self._entries[0].index

    def first_index(self) -> int:
        return self._offset() + 1

    def last_index(self) -> int:
        return self._offset() + len(self._entries) - 1

    def term(self, index: int) -> int:
        offset = self._offset()
        if index < offset:
            raise CompactedError(f"index {index} compacted (first is {offset + 1})")
        if index - offset >= len(self._entries):
            raise UnavailableError(f"index {index} past last {self.last_index()}")
        return self._entries[index - offset].term

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        offset = self._offset()
        if lo <= offset:
            raise CompactedError(f"index {lo} compacted (first is {offset + 1})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"entries up to {hi - 1} past last {self.last_index()}")
        if len(self._entries) == 1:
            # Only the dummy entry: nothing to return.
            raise UnavailableError("log is empty")
        return limit_size(self._entries[lo - offset : hi - offset], max_size)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- writes (the application, after persisting a Ready) ----------------------------------

    def set_hard_state(self, hard_state: HardState) -> None:
        self.hard_state = hard_state

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.metadata.index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {snapshot.metadata.index} is not newer than "
                f"{self._snapshot.metadata.index}"
            )
        self._snapshot = snapshot
        self._entries = [Entry(term=snapshot.metadata.term, index=snapshot.metadata.index)]

    def create_snapshot(self, index: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        """Record a snapshot of the application state as of `index` (already applied)."""
        if index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError(f"snapshot at {index} is not newer")
        if index > self.last_index():
            raise UnavailableError(f"snapshot index {index} past last {self.last_index()}")
        metadata = SnapshotMetadata(
            conf_state=conf_state if conf_state is not None else self._snapshot.metadata.conf_state,
            index=index,
            term=self._entries[index - self._offset()].term,
        )
        self._snapshot = Snapshot(data=data, metadata=metadata)
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Discard entries before `compact_index`; the entry at it becomes the dummy."""
        offset = self._offset()
        if compact_index <= offset:
            raise CompactedError(f"index {compact_index} already compacted")
        if compact_index > self.last_index():
            raise UnavailableError(f"compact index {compact_index} past last")
        cut = compact_index - offset
        dummy = Entry(term=self._entries[cut].term, index=compact_index)
        self._entries = [dummy, *self._entries[cut + 1 :]]

    def append(self, entries: list[Entry]) -> None:
        """Append entries, replacing any conflicting suffix of the stored log."""
        if not entries:
            return
        first = self.first_index()
        last_new = entries[-1].index
        if last_new < first:
            return  # everything here is already compacted
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        position = entries[0].index - self._offset()
        if position > len(self._entries):
            raise UnavailableError(
                f"missing log entry: last {self.last_index()}, appending at {entries[0].index}"
            )
        self._entries = [*self._entries[:position], *entries]
