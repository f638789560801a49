"""The replicated log as the core sees it: stable storage plus the unstable tail.

It owns the commit and applied indexes and the log-matching logic (conflict search, append
with truncation). It must never write to storage: the application does that from a Ready.
"""

from __future__ import annotations

from raft import defects
from raft.defects import Defect
from raft.errors import CompactedError, UnavailableError
from raft.storage import NO_LIMIT, Storage, limit_size
from raft.types import Entry, Snapshot
from raft.unstable import Unstable


class RaftLog:
    __slots__ = ("applied", "committed", "max_applying_bytes", "storage", "unstable")

    def __init__(self, storage: Storage, max_applying_bytes: int = NO_LIMIT) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(offset=last + 1)
        # Everything before the first index is in the snapshot: committed and applied.
        self.committed = first - 1
        self.applied = first - 1
        self.max_applying_bytes = max_applying_bytes

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, unstable={len(self.unstable.entries)})"
        )

    # -- indexes and terms -------------------------------------------------------------------

    def first_index(self) -> int:
        index = self.unstable.maybe_first_index()
        return index if index is not None else self.storage.first_index()

    def last_index(self) -> int:
        index = self.unstable.maybe_last_index()
        return index if index is not None else self.storage.last_index()

    def term(self, index: int) -> int:
        """Term at `index`; raises CompactedError or UnavailableError outside the log."""
        dummy = self.first_index() - 1
        if index < dummy:
            raise CompactedError(f"index {index} compacted")
        if index > self.last_index():
            raise UnavailableError(f"index {index} past last {self.last_index()}")
        term = self.unstable.maybe_term(index)
        if term is not None:
            return term
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        try:
            return self.term(index)
        except (CompactedError, UnavailableError):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except (CompactedError, UnavailableError):
            return False

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Whether a log ending at (last_index, term) is at least as up to date as ours."""
        our_term = self.last_term()
        return term > our_term or (term == our_term and last_index >= self.last_index())

    # -- appending ---------------------------------------------------------------------------

    def maybe_append(
        self, index: int, log_term: int, committed: int, entries: tuple[Entry, ...]
    ) -> int | None:
        """Append entries that follow (index, log_term) if our log matches there.

        Returns the index of the last new entry, or None when the log does not match.
        """
        if not self.match_term(index, log_term) and not (
            defects.active(Defect.APPEND_WITHOUT_LOG_MATCH) and index <= self.last_index()
        ):
            return None
        last_new = index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            assert conflict > self.committed, (
                f"entry {conflict} conflicts with committed entry (committed {self.committed})"
            )
            self.append(list(entries[conflict - (index + 1) :]))
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, entries: list[Entry]) -> int:
        if not entries:
            return self.last_index()
        after = entries[0].index - 1
        assert after >= self.committed, f"append after {after} is below committed {self.committed}"
        self.unstable.truncate_and_append(entries)
        return self.last_index()

    def find_conflict(self, entries: tuple[Entry, ...]) -> int:
        """Index of the first entry that is new or conflicts with ours; 0 if none."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """The largest index <= `index` whose term is <= `term` (fast back-off on rejection).

        Entries in (result, index] all have terms > `term`, so a leader whose log holds `term`
        at `index` cannot match there; skipping them saves one round trip per entry.
        """
        index = min(index, self.last_index())
        while index > 0:
            try:
                if self.term(index) <= term:
                    return index
            except CompactedError:
                return index
            index -= 1
        return 0

    # -- committing and applying --------------------------------------------------------------

    def commit_to(self, to_commit: int) -> None:
        if to_commit > self.committed:
            assert to_commit <= self.last_index(), (
                f"commit {to_commit} past last index {self.last_index()}: log corrupted or lost"
            )
            self.committed = to_commit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit up to `max_index` if the entry there is from `term` (Raft's Figure 8 rule)."""
        if max_index > self.committed and self.term_or_zero(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def commit_by_counting(self, max_index: int) -> bool:
        """PLANTED DEFECT ONLY: commit whatever a quorum holds, whatever its term."""
        if max_index > self.committed:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, index: int) -> None:
        if index == 0:
            return
        assert self.applied <= index <= self.committed, (
            f"applied {index} out of range [{self.applied}, {self.committed}]"
        )
        self.applied = index

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snapshot_to(self, index: int) -> None:
        self.unstable.stable_snapshot_to(index)

    def has_next_committed_entries(self) -> bool:
        offset = max(self.applied + 1, self.first_index())
        return self.committed + 1 > offset

    def next_committed_entries(self) -> list[Entry]:
        offset = max(self.applied + 1, self.first_index())
        if self.committed + 1 > offset:
            return self.slice(offset, self.committed + 1, self.max_applying_bytes)
        return []

    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def has_pending_snapshot(self) -> bool:
        return self.unstable.snapshot is not None

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def entries(self, index: int, max_size: int) -> list[Entry]:
        if index > self.last_index():
            return []
        return self.slice(index, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        """Every entry from the first index on (tests and the simulator's checks)."""
        return self.entries(self.first_index(), NO_LIMIT)

    def slice(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries in [lo, hi) limited to `max_size` bytes (at least one)."""
        first = self.first_index()
        if lo < first:
            raise CompactedError(f"index {lo} compacted (first is {first})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"slice [{lo},{hi}) past last {self.last_index()}")
        if lo == hi:
            return []
        result: list[Entry] = []
        offset = self.unstable.offset
        if lo < offset:
            stored = self.storage.entries(lo, min(hi, offset), max_size)
            # Storage limited the size: do not add unstable entries after a gap.
            if len(stored) < min(hi, offset) - lo:
                return stored
            result = stored
        if hi > offset:
            tail = self.unstable.slice(max(lo, offset), hi)
            result = [*result, *tail] if result else tail
        return limit_size(result, max_size)

    def restore(self, snapshot: Snapshot) -> None:
        self.committed = snapshot.metadata.index
        self.unstable.restore(snapshot)
