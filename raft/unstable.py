"""The unstable tail of the log: entries and a snapshot not yet written to storage.

It owns the bookkeeping between "the core decided this" and "the application persisted it".
It never touches storage itself.
"""

from __future__ import annotations

from raft.types import Entry, Snapshot


class Unstable:
    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset  # index of entries[0]

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, index: int) -> int | None:
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == index:
                return self.snapshot.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to `index` (of `term`) were persisted: drop them from the tail."""
        current = self.maybe_term(index)
        if current is None:
            return
        # Only if the entry is still the one persisted; a newer leader may have replaced it.
        if current == term and index >= self.offset:
            del self.entries[: index + 1 - self.offset]
            self.offset = index + 1

    def stable_snapshot_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == index:
            self.snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        self.offset = snapshot.metadata.index + 1
        self.entries = []
        self.snapshot = snapshot

    def truncate_and_append(self, entries: list[Entry]) -> None:
        after = entries[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif after <= self.offset:
            # Replaces the whole unstable tail (and possibly part of the stable log).
            self.offset = after
            self.entries = list(entries)
        else:
            self.entries = [*self.entries[: after - self.offset], *entries]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        assert self.offset <= lo <= hi <= self.offset + len(self.entries), (
            f"unstable slice [{lo},{hi}) out of [{self.offset},{self.offset + len(self.entries)})"
        )
        return self.entries[lo - self.offset : hi - self.offset]
