"""The log as the core sees it: the unstable tail (raft/unstable.py) and RaftLog
(raft/log.py) over MemoryStorage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raft.errors import CompactedError, UnavailableError
from raft.log import RaftLog
from raft.storage import NO_LIMIT, MemoryStorage
from raft.types import ConfState, Entry, Snapshot, SnapshotMetadata
from raft.unstable import Unstable

ENTRY_OVERHEAD = Entry().size()


def run(first: int, terms: list[int]) -> list[Entry]:
    """Consecutive entries starting at `first` with the given terms."""
    return [Entry(term=term, index=first + offset) for offset, term in enumerate(terms)]


def snapshot_at(index: int, term: int) -> Snapshot:
    return Snapshot(
        metadata=SnapshotMetadata(conf_state=ConfState(voters=(1,)), index=index, term=term)
    )


def log_with(
    stable: list[Entry], unstable: list[Entry] | None = None, snapshot: Snapshot | None = None
) -> RaftLog:
    storage = MemoryStorage()
    if snapshot is not None:
        storage.apply_snapshot(snapshot)
    storage.append(stable)
    log = RaftLog(storage)
    if unstable:
        log.append(unstable)
    return log


def terms_of(items: list[Entry]) -> list[tuple[int, int]]:
    return [(entry.index, entry.term) for entry in items]


# -- Unstable -----------------------------------------------------------------------------------


def test_unstable_indexes_come_from_the_snapshot_and_entries() -> None:
    tail = Unstable(offset=5)
    assert tail.maybe_first_index() is None
    assert tail.maybe_last_index() is None
    tail.restore(snapshot_at(4, 2))
    assert tail.maybe_first_index() == 5
    assert tail.maybe_last_index() == 4
    tail.truncate_and_append(run(5, [2, 3]))
    assert tail.maybe_last_index() == 6


def test_unstable_term_covers_the_snapshot_index_and_the_entries_only() -> None:
    tail = Unstable(offset=5)
    tail.restore(snapshot_at(4, 2))
    tail.truncate_and_append(run(5, [3]))
    assert tail.maybe_term(4) == 2
    assert tail.maybe_term(5) == 3
    assert tail.maybe_term(3) is None
    assert tail.maybe_term(6) is None


def test_unstable_stable_to_drops_the_persisted_prefix() -> None:
    tail = Unstable(offset=5)
    tail.truncate_and_append(run(5, [1, 1, 2]))
    tail.stable_to(6, 1)
    assert (tail.offset, terms_of(tail.entries)) == (7, [(7, 2)])


def test_unstable_stable_to_ignores_an_entry_that_was_replaced_since() -> None:
    tail = Unstable(offset=5)
    tail.truncate_and_append(run(5, [1, 1]))
    tail.stable_to(6, 2)  # the persisted entry 6 was of term 2, ours is term 1
    assert (tail.offset, len(tail.entries)) == (5, 2)
    tail.stable_to(9, 1)  # past the end
    assert len(tail.entries) == 2


@pytest.mark.parametrize(
    ("appended", "expected_offset", "expected"),
    [
        (run(8, [2]), 5, [(5, 1), (6, 1), (7, 1), (8, 2)]),  # right after: extends
        (run(6, [2, 2]), 5, [(5, 1), (6, 2), (7, 2)]),  # inside: truncates then appends
        (run(4, [3]), 4, [(4, 3)]),  # before the tail: replaces it
    ],
    ids=["extend", "truncate-inside", "replace-all"],
)
def test_unstable_truncate_and_append(
    appended: list[Entry], expected_offset: int, expected: list[tuple[int, int]]
) -> None:
    tail = Unstable(offset=5)
    tail.truncate_and_append(run(5, [1, 1, 1]))
    tail.truncate_and_append(appended)
    assert (tail.offset, terms_of(tail.entries)) == (expected_offset, expected)


def test_unstable_slice_outside_the_tail_is_a_bug() -> None:
    tail = Unstable(offset=5)
    tail.truncate_and_append(run(5, [1, 1]))
    assert terms_of(tail.slice(5, 7)) == [(5, 1), (6, 1)]
    with pytest.raises(AssertionError):
        tail.slice(4, 6)
    with pytest.raises(AssertionError):
        tail.slice(6, 8)


# -- RaftLog: terms and bounds ------------------------------------------------------------------


def test_log_term_raises_outside_the_log() -> None:
    log = log_with(run(6, [2, 2]), snapshot=snapshot_at(5, 2))
    assert log.term(5) == 2  # the snapshot's index still has a known term
    assert log.term(7) == 2
    with pytest.raises(CompactedError):
        log.term(4)
    with pytest.raises(UnavailableError):
        log.term(8)
    assert log.term_or_zero(4) == 0


def test_log_starts_committed_and_applied_at_its_snapshot() -> None:
    log = log_with(run(6, [2]), snapshot=snapshot_at(5, 2))
    assert (log.first_index(), log.last_index(), log.committed, log.applied) == (6, 6, 5, 5)


@pytest.mark.parametrize(
    ("last_index", "last_term", "up_to_date"),
    [(3, 3, True), (9, 1, False), (2, 2, False), (3, 2, True), (4, 2, True)],
)
def test_is_up_to_date_compares_last_term_then_length(
    last_index: int, last_term: int, up_to_date: bool
) -> None:
    log = log_with(run(1, [1, 2, 2]))
    assert log.is_up_to_date(last_index, last_term) is up_to_date


# -- RaftLog: appending ------------------------------------------------------------------------


def test_maybe_append_rejects_when_the_previous_entry_does_not_match() -> None:
    log = log_with(run(1, [1, 1, 2]))
    assert log.maybe_append(3, 1, 3, tuple(run(4, [2]))) is None
    assert log.maybe_append(5, 2, 3, ()) is None  # past our end
    assert log.last_index() == 3


def test_maybe_append_appends_and_commits_no_further_than_the_new_entries() -> None:
    log = log_with(run(1, [1, 1]))
    assert log.maybe_append(2, 1, 10, tuple(run(3, [2, 2]))) == 4
    assert terms_of(log.all_entries()) == [(1, 1), (2, 1), (3, 2), (4, 2)]
    assert log.committed == 4


def test_maybe_append_truncates_a_conflicting_suffix() -> None:
    log = log_with(run(1, [1, 1, 1, 1]))
    assert log.maybe_append(2, 1, 0, tuple(run(3, [2]))) == 3
    assert terms_of(log.all_entries()) == [(1, 1), (2, 1), (3, 2)]


def test_maybe_append_of_entries_already_held_keeps_the_longer_log() -> None:
    # A delayed, shorter append must not truncate entries it does not contradict.
    log = log_with(run(1, [1, 1, 1, 1]))
    assert log.maybe_append(1, 1, 0, tuple(run(2, [1]))) == 2
    assert log.last_index() == 4


def test_maybe_append_may_never_overwrite_a_committed_entry() -> None:
    log = log_with(run(1, [1, 1, 1]))
    log.commit_to(3)
    with pytest.raises(AssertionError, match="committed"):
        log.maybe_append(1, 1, 3, tuple(run(2, [2])))


def test_find_conflict_returns_the_first_new_or_conflicting_index() -> None:
    log = log_with(run(1, [1, 2, 3]))
    assert log.find_conflict(tuple(run(1, [1, 2, 3]))) == 0
    assert log.find_conflict(tuple(run(2, [2, 3, 4]))) == 4
    assert log.find_conflict(tuple(run(2, [2, 4]))) == 3
    assert log.find_conflict(()) == 0


@pytest.mark.parametrize(
    ("index", "term", "expected"),
    [
        (10, 5, 10),  # 10 holds term 5: matches as it is
        (10, 4, 6),  # skip 7..10 (term 5): 6 holds term 4
        (10, 3, 3),  # skip the fours and fives
        (10, 1, 0),  # every entry is above term 1
        (20, 4, 6),  # past the end: starts from the last index
        (5, 9, 5),
    ],
)
def test_find_conflict_by_term_skips_every_entry_of_a_higher_term(
    index: int, term: int, expected: int
) -> None:
    log = log_with(run(1, [2, 2, 3, 4, 4, 4, 5, 5, 5, 5]))
    assert log.find_conflict_by_term(index, term) == expected


def test_find_conflict_by_term_stops_at_the_compacted_boundary() -> None:
    log = log_with(run(6, [5, 5]), snapshot=snapshot_at(5, 5))
    # Everything above term 4, down to the snapshot: the answer is the first unknown index.
    assert log.find_conflict_by_term(7, 4) == 4


# -- RaftLog: committing and applying -----------------------------------------------------------


def test_commit_never_goes_backwards() -> None:
    log = log_with(run(1, [1, 1, 1]))
    log.commit_to(3)
    log.commit_to(1)
    assert log.committed == 3


@given(st.lists(st.integers(min_value=0, max_value=6), max_size=20))
def test_commit_index_is_the_running_maximum(targets: list[int]) -> None:
    log = log_with(run(1, [1] * 6))
    highest = 0
    for target in targets:
        log.commit_to(target)
        highest = max(highest, target)
        assert log.committed == highest


def test_commit_past_the_last_index_is_a_lost_log() -> None:
    log = log_with(run(1, [1, 1]))
    with pytest.raises(AssertionError, match="past last index"):
        log.commit_to(3)


def test_maybe_commit_only_commits_an_entry_of_the_given_term() -> None:
    log = log_with(run(1, [1, 1, 2]))
    assert not log.maybe_commit(2, 2)  # entry 2 is of term 1: Figure 8 rule
    assert log.committed == 0
    assert log.maybe_commit(3, 2)
    assert log.committed == 3
    assert not log.maybe_commit(2, 1)  # below committed: never back


def test_applied_must_stay_between_applied_and_committed() -> None:
    log = log_with(run(1, [1, 1, 1]))
    log.commit_to(2)
    log.applied_to(2)
    with pytest.raises(AssertionError):
        log.applied_to(3)
    with pytest.raises(AssertionError):
        log.applied_to(1)


def test_next_committed_entries_are_those_after_applied_within_the_apply_budget() -> None:
    log = log_with(run(1, [1, 1, 1, 1]))
    log.max_applying_bytes = 2 * ENTRY_OVERHEAD
    log.commit_to(4)
    log.applied_to(1)
    assert log.has_next_committed_entries()
    assert [entry.index for entry in log.next_committed_entries()] == [2, 3]
    log.applied_to(4)
    assert not log.has_next_committed_entries()
    assert log.next_committed_entries() == []


# -- RaftLog: slicing across storage and the unstable tail --------------------------------------


def sliced_log() -> RaftLog:
    # Snapshot at 3; stable 4..6; unstable 7..9; every entry ENTRY_OVERHEAD bytes.
    return log_with(run(4, [1, 1, 1]), run(7, [2, 2, 2]), snapshot=snapshot_at(3, 1))


@pytest.mark.parametrize(
    ("lo", "hi", "max_size", "expected"),
    [
        (4, 10, NO_LIMIT, [4, 5, 6, 7, 8, 9]),  # all of it, across the boundary
        (5, 8, NO_LIMIT, [5, 6, 7]),
        (7, 9, NO_LIMIT, [7, 8]),  # unstable only
        (4, 6, NO_LIMIT, [4, 5]),  # stable only
        (4, 10, 2 * ENTRY_OVERHEAD, [4, 5]),  # the limit binds inside storage
        (6, 10, 2 * ENTRY_OVERHEAD, [6, 7]),  # the limit binds across the boundary
        (4, 10, 0, [4]),  # never fewer than one entry
        (5, 5, NO_LIMIT, []),
    ],
)
def test_slice_spans_storage_and_unstable_within_the_size_limit(
    lo: int, hi: int, max_size: int, expected: list[int]
) -> None:
    assert [entry.index for entry in sliced_log().slice(lo, hi, max_size)] == expected


def test_slice_outside_the_log_raises() -> None:
    log = sliced_log()
    with pytest.raises(CompactedError):
        log.slice(3, 5, NO_LIMIT)
    with pytest.raises(UnavailableError):
        log.slice(8, 11, NO_LIMIT)


def test_entries_past_the_end_are_empty() -> None:
    log = sliced_log()
    assert log.entries(10, NO_LIMIT) == []
    assert [entry.index for entry in log.entries(8, NO_LIMIT)] == [8, 9]


def test_restore_from_a_snapshot_commits_it_and_empties_the_tail() -> None:
    log = sliced_log()
    log.restore(snapshot_at(20, 4))
    assert (log.first_index(), log.last_index(), log.committed) == (21, 20, 20)
    assert log.has_pending_snapshot()
    assert log.term(20) == 4
    log.stable_snapshot_to(20)
    assert not log.has_pending_snapshot()


def test_stable_to_moves_entries_from_the_unstable_tail() -> None:
    log = sliced_log()
    log.stable_to(8, 2)
    assert [entry.index for entry in log.unstable_entries()] == [9]
