"""MemoryStorage (raft/storage.py): the in-memory Storage the simulator and tests use, and
the size limiting every storage applies."""

from __future__ import annotations

import pytest

from raft.errors import CompactedError, SnapshotOutOfDateError, UnavailableError
from raft.storage import NO_LIMIT, MemoryStorage, limit_size
from raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata

SIZE = Entry().size()


def run(first: int, terms: list[int]) -> list[Entry]:
    return [Entry(term=term, index=first + offset) for offset, term in enumerate(terms)]


def storage_with(first: int, terms: list[int]) -> MemoryStorage:
    """Storage holding a snapshot at first-1 (term of the first entry) and the entries."""
    storage = MemoryStorage()
    if first > 1:
        storage.apply_snapshot(
            Snapshot(metadata=SnapshotMetadata(ConfState(voters=(1,)), first - 1, terms[0]))
        )
    storage.append(run(first, terms))
    return storage


def indexes(items: list[Entry]) -> list[int]:
    return [entry.index for entry in items]


def test_empty_storage_has_only_the_dummy_entry() -> None:
    storage = MemoryStorage()
    assert (storage.first_index(), storage.last_index(), storage.term(0)) == (1, 0, 0)
    assert storage.initial_state() == (HardState(), ConfState())
    with pytest.raises(UnavailableError):
        storage.entries(1, 1, NO_LIMIT)


def test_term_outside_the_stored_range_raises() -> None:
    storage = storage_with(4, [2, 2, 3])
    assert storage.term(3) == 2  # the snapshot's index keeps its term
    assert storage.term(6) == 3
    with pytest.raises(CompactedError):
        storage.term(2)
    with pytest.raises(UnavailableError):
        storage.term(7)


def test_entries_are_limited_in_size_but_never_empty() -> None:
    storage = storage_with(4, [2, 2, 3])
    assert indexes(storage.entries(4, 7, NO_LIMIT)) == [4, 5, 6]
    assert indexes(storage.entries(4, 7, 2 * SIZE)) == [4, 5]
    assert indexes(storage.entries(4, 7, 2 * SIZE - 1)) == [4]
    assert indexes(storage.entries(5, 7, 0)) == [5]


def test_entries_outside_the_stored_range_raise() -> None:
    storage = storage_with(4, [2, 2, 3])
    with pytest.raises(CompactedError):
        storage.entries(3, 5, NO_LIMIT)
    with pytest.raises(UnavailableError):
        storage.entries(5, 8, NO_LIMIT)


def test_append_replaces_a_conflicting_suffix() -> None:
    storage = storage_with(1, [1, 1, 1, 1])
    storage.append(run(3, [2]))
    assert [(e.index, e.term) for e in storage.entries(1, 4, NO_LIMIT)] == [(1, 1), (2, 1), (3, 2)]
    assert storage.last_index() == 3


def test_append_extends_after_the_last_entry() -> None:
    storage = storage_with(1, [1, 1])
    storage.append(run(3, [1, 2]))
    assert storage.last_index() == 4


def test_append_skips_the_part_already_compacted() -> None:
    storage = storage_with(5, [2, 2])  # snapshot at 4
    storage.append(run(3, [2, 2, 2, 3]))  # 3 and 4 are in the snapshot
    assert (storage.first_index(), storage.last_index(), storage.term(6)) == (5, 6, 3)
    storage.append(run(1, [1, 1]))  # entirely compacted: ignored
    assert storage.last_index() == 6


def test_append_after_a_gap_raises() -> None:
    storage = storage_with(1, [1, 1])
    with pytest.raises(UnavailableError, match="missing log entry"):
        storage.append(run(4, [1]))


def test_compact_drops_entries_before_the_index_and_keeps_its_term() -> None:
    storage = storage_with(1, [1, 1, 2, 2, 3])
    storage.compact(3)
    assert (storage.first_index(), storage.last_index(), storage.term(3)) == (4, 5, 2)
    with pytest.raises(CompactedError):
        storage.term(2)
    with pytest.raises(CompactedError):
        storage.compact(3)
    with pytest.raises(UnavailableError):
        storage.compact(6)


def test_create_snapshot_records_index_term_and_config() -> None:
    storage = storage_with(1, [1, 1, 2])
    conf_state = ConfState(voters=(1, 2, 3))
    snapshot = storage.create_snapshot(2, conf_state, b"state")
    assert snapshot.metadata == SnapshotMetadata(conf_state, index=2, term=1)
    assert storage.snapshot() == snapshot
    assert storage.initial_state()[1] == conf_state
    # The log is not compacted by taking a snapshot.
    assert storage.first_index() == 1


def test_create_snapshot_keeps_the_previous_config_when_given_none() -> None:
    storage = storage_with(4, [1, 1, 2])
    snapshot = storage.create_snapshot(5, None, b"")
    assert snapshot.metadata.conf_state == ConfState(voters=(1,))


def test_create_snapshot_refuses_old_or_unknown_indexes() -> None:
    storage = storage_with(4, [1, 1, 2])
    with pytest.raises(SnapshotOutOfDateError):
        storage.create_snapshot(3, None, b"")
    with pytest.raises(UnavailableError):
        storage.create_snapshot(7, None, b"")


def test_apply_snapshot_replaces_the_log() -> None:
    storage = storage_with(1, [1, 1, 1])
    snapshot = Snapshot(b"s", SnapshotMetadata(ConfState(voters=(1, 2)), index=10, term=4))
    storage.apply_snapshot(snapshot)
    assert (storage.first_index(), storage.last_index(), storage.term(10)) == (11, 10, 4)
    with pytest.raises(SnapshotOutOfDateError):
        storage.apply_snapshot(snapshot)


def test_hard_state_is_what_was_set() -> None:
    storage = MemoryStorage()
    storage.set_hard_state(HardState(term=3, vote=2, commit=1))
    assert storage.initial_state()[0] == HardState(term=3, vote=2, commit=1)


def test_limit_size_keeps_the_longest_prefix_within_budget_but_at_least_one() -> None:
    items = run(1, [1, 1, 1])
    assert limit_size(items, NO_LIMIT) == items
    assert limit_size(items, 2 * SIZE) == items[:2]
    assert limit_size(items, 1) == items[:1]
    assert limit_size([], 0) == []
