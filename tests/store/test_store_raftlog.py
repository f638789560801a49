"""The durable Raft log: the Storage contract, replay, torn tails, compaction, integrity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raft.errors import CompactedError, UnavailableError
from raft.storage import NO_LIMIT, MemoryStorage
from raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from store.crypto import IntegrityError, Keyring
from store.raftlog import DurableLog

KEK = bytes(range(32))


def _open(path: Path, **kwargs: int) -> DurableLog:
    return DurableLog(path / "raftlog", Keyring(path, KEK), **kwargs)  # type: ignore[arg-type]


def _entries(first: int, count: int, term: int, size: int = 10) -> list[Entry]:
    return [
        Entry(term=term, index=i, data=f"entry-{i}-{term}".encode().ljust(size, b"."))
        for i in range(first, first + count)
    ]


def _same_as(log: DurableLog, model: MemoryStorage) -> None:
    assert log.first_index() == model.first_index()
    assert log.last_index() == model.last_index()
    assert log.initial_state() == model.initial_state()
    for index in range(model.first_index() - 1, model.last_index() + 1):
        assert log.term(index) == model.term(index)
    if model.last_index() >= model.first_index():
        lo, hi = model.first_index(), model.last_index() + 1
        assert log.entries(lo, hi, NO_LIMIT) == model.entries(lo, hi, NO_LIMIT)
    assert log.snapshot().metadata == model.snapshot().metadata


TEARS = ("truncated", "zeroed")
"""How a crash loses the unsynced end of a segment: the file cut short (its growth never
reached the disk), or the bytes back to zeros (a write into preallocated blocks that never
reached the disk)."""


def _tear(segment: Path, cut: int, end: int, how: str) -> int:
    """Lose the bytes ``[cut, end)`` of `segment` the way `how` says, and return where the
    file first changed: bytes that were zeros already are not lost when zeroed (an AEAD tag
    ends in a zero byte once in 256 records)."""
    with open(segment, "r+b") as file:
        if how == "truncated":
            file.truncate(cut)
            return cut
        file.seek(cut)
        lost = file.read(end - cut)
        file.seek(cut)
        file.write(bytes(end - cut))
    return cut + next((at for at, byte in enumerate(lost) if byte), end - cut)


def test_entries_and_hard_state_survive_reopening(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.save(_entries(1, 5, 1), HardState(term=1, vote=2, commit=3))
    log.close()
    log = _open(tmp_path)
    assert log.hard_state() == HardState(term=1, vote=2, commit=3)
    assert log.entries(1, 6, NO_LIMIT) == _entries(1, 5, 1)
    assert log.entries(1, 6, 30) == _entries(1, 1, 1)  # at least one, within the budget


def test_a_conflicting_append_truncates_the_suffix_durably(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.save(_entries(1, 10, 1))
    log.save(_entries(4, 2, 2))
    assert log.last_index() == 5
    log.close()
    log = _open(tmp_path)
    assert log.last_index() == 5
    assert [log.term(i) for i in range(1, 6)] == [1, 1, 1, 2, 2]


def test_group_commit_syncs_once_for_many_entries(tmp_path: Path) -> None:
    syncs: list[int] = []
    log = DurableLog(
        tmp_path / "raftlog", Keyring(tmp_path, KEK), before_sync=lambda: syncs.append(1)
    )
    log.save(_entries(1, 100, 1), HardState(term=1, commit=50))
    assert len(syncs) == 1


def test_a_save_of_entries_that_are_not_consecutive_is_refused(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.save(_entries(1, 3, 1))
    with pytest.raises(ValueError, match="consecutive"):
        log.save(_entries(4, 2, 1) + _entries(7, 1, 1))
    assert log.last_index() == 3
    log.close()
    assert _open(tmp_path).entries(1, 4, NO_LIMIT) == _entries(1, 3, 1)


def test_a_save_partly_below_the_compaction_point_keeps_only_the_rest(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.save(_entries(1, 10, 1))
    log.create_snapshot(6, None, b"state")
    log.compact(6)
    log.save(_entries(4, 6, 1) + _entries(10, 2, 2))  # 4-6 compacted: not written again
    assert (log.first_index(), log.last_index()) == (7, 11)
    log.close()
    log = _open(tmp_path)
    assert log.entries(7, 12, NO_LIMIT) == _entries(7, 3, 1) + _entries(10, 2, 2)
    assert log.entries(7, 12, 3 * 34) == _entries(7, 3, 1)  # Entry.size() is data + 24


@pytest.mark.parametrize("how", TEARS)
def test_torn_tail_is_cut_at_the_last_whole_record(tmp_path: Path, how: str) -> None:
    """A save is one record: a torn save loses all of its entries, never some."""
    log = _open(tmp_path)
    for index in range(1, 21):
        log.save(_entries(index, 1, 1))
    segment, end = log.tail()
    log.close()
    for cut in (end - 1, end - 7, end - 30, end - 200):
        torn = _tear(segment, cut, end, how) < end
        log = _open(tmp_path)
        survivors = log.last_index()
        assert 0 < survivors < 20 if torn else survivors == 20
        assert log.entries(1, survivors + 1, NO_LIMIT) == _entries(1, survivors, 1)
        log.save(_entries(survivors + 1, 20 - survivors, 1))
        assert log.tail()[0] == segment
        end = log.tail()[1]
        log.close()
    assert _open(tmp_path).entries(1, 21, NO_LIMIT) == _entries(1, 20, 1)


def test_the_zero_filled_tail_is_the_end_and_stays_preallocated(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.save(_entries(1, 3, 1))
    segment, end = log.tail()
    log.close()
    size = segment.stat().st_size
    assert size > end, "the segment was not preallocated"
    assert segment.read_bytes()[end:] == bytes(size - end)
    log = _open(tmp_path)
    assert log.last_index() == 3
    assert log.tail() == (segment, end)
    assert segment.stat().st_size == size, "a clean zero tail was cut"
    log.save(_entries(4, 2, 1))
    log.close()
    assert _open(tmp_path).entries(1, 6, NO_LIMIT) == _entries(1, 5, 1)


@pytest.mark.parametrize("where", ["at the end of the records", "past the zero-filled tail"])
def test_garbage_after_the_tail_is_cut(tmp_path: Path, where: str) -> None:
    log = _open(tmp_path)
    log.save(_entries(1, 3, 1))
    segment, end = log.tail()
    log.close()
    garbage = b"\x00\x00\x00\x10\xde\xad\xbe\xefhalf-written"
    with open(segment, "r+b") as file:
        file.seek(end if where == "at the end of the records" else segment.stat().st_size)
        file.write(garbage)
    log = _open(tmp_path)
    assert log.last_index() == 3
    assert segment.stat().st_size == end, "the torn tail was not cut"
    log.save(_entries(4, 1, 1))
    log.close()
    assert _open(tmp_path).entries(1, 5, NO_LIMIT) == _entries(1, 4, 1)


def test_a_whole_record_behind_a_tear_never_comes_back(tmp_path: Path) -> None:
    """A crash can leave a later write whole and an earlier one torn (pages reach the disk
    in any order until fdatasync). Neither was acknowledged; after recovery, new records
    written over the tear must not be followed, on the next replay, by that stale one."""
    log = _open(tmp_path)
    log.save(_entries(1, 1, 1))
    _, first_end = log.tail()
    log.save(_entries(2, 1, 1, size=200))
    _, second_end = log.tail()
    log.save(_entries(3, 1, 1))
    segment, end = log.tail()
    log.close()
    _tear(segment, first_end + 20, second_end, "zeroed")  # record 2 torn, record 3 whole
    assert segment.read_bytes()[second_end:end].strip(b"\x00")
    log = _open(tmp_path)
    assert log.last_index() == 1
    log.save(_entries(2, 1, 2, size=200))  # as long as the torn record: record 3 follows it
    assert log.tail()[1] == second_end
    log.close()
    log = _open(tmp_path)
    assert log.last_index() == 2
    assert log.entries(1, 3, NO_LIMIT) == _entries(1, 1, 1) + _entries(2, 1, 2, size=200)


def test_damage_before_the_last_segment_is_an_integrity_error(tmp_path: Path) -> None:
    log = _open(tmp_path, max_segment_bytes=512)
    for i in range(1, 30):
        log.save(_entries(i, 1, 1, size=100))
    log.close()
    first = sorted((tmp_path / "raftlog").glob("*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[40] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="segment 1"):
        _open(tmp_path)


def test_tampered_entry_fails_authentication_naming_the_entry(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.save(_entries(1, 3, 1))
    segment, end = log.tail()
    log.close()
    data = bytearray(segment.read_bytes())
    data[end - 20] ^= 0x01  # inside the last entry's sealed data; the CRC is fixed up below
    import struct
    import zlib

    # Re-frame the last record so only authentication, not the CRC, can catch it.
    offset = 0
    last = 0
    while offset < end:
        length = struct.unpack_from(">I", data, offset)[0]
        last = offset
        offset += 8 + length
    length = struct.unpack_from(">I", data, last)[0]
    struct.pack_into(">I", data, last + 4, zlib.crc32(bytes(data[last + 8 : last + 8 + length])))
    segment.write_bytes(bytes(data))
    log = _open(tmp_path)
    with pytest.raises(IntegrityError, match="raft log entry 3") as caught:
        log.entries(3, 4, NO_LIMIT)
    assert caught.value.status_code == "Neo.DatabaseError.General.StorageDamageDetected"


def test_compaction_stops_at_the_durable_snapshot_and_drops_whole_segments(
    tmp_path: Path,
) -> None:
    log = _open(tmp_path, max_segment_bytes=1024)
    for i in range(1, 101):
        log.save(_entries(i, 1, 1, size=100))
    with pytest.raises(UnavailableError, match="durable snapshot"):
        log.compact(10)
    before = log.segment_count()
    log.create_snapshot(90, ConfState(voters=(1, 2, 3)), b"state")
    log.compact(90)
    assert log.segment_count() < before
    with pytest.raises(CompactedError):
        log.entries(90, 91, NO_LIMIT)
    log.close()
    log = _open(tmp_path)
    assert (log.first_index(), log.last_index()) == (91, 100)
    assert log.term(90) == 1
    assert log.snapshot().data == b"state"
    assert log.initial_state()[1] == ConfState(voters=(1, 2, 3))


def test_installing_a_snapshot_replaces_the_log(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.save(_entries(1, 10, 1))
    snap = Snapshot(b"x", SnapshotMetadata(ConfState(voters=(1,)), index=50, term=3))
    log.apply_snapshot(snap)
    assert (log.first_index(), log.last_index(), log.term(50)) == (51, 50, 3)
    log.save(_entries(51, 2, 3))
    log.close()
    log = _open(tmp_path)
    assert (log.first_index(), log.last_index()) == (51, 52)
    assert log.snapshot() == snap


_op = st.one_of(
    st.tuples(
        st.just("append"),
        st.integers(0, 12),
        st.integers(1, 6),
        st.integers(0, 3),
    ),
    st.tuples(st.just("compact"), st.integers(0, 12), st.just(0), st.just(0)),
    st.tuples(st.just("install"), st.integers(1, 8), st.just(0), st.just(0)),
    st.tuples(st.just("reopen"), st.just(0), st.just(0), st.just(0)),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_op, max_size=25))
def test_the_durable_log_behaves_like_memory_storage(
    tmp_path_factory: pytest.TempPathFactory, operations: list[tuple[str, int, int, int]]
) -> None:
    path = tmp_path_factory.mktemp("log")
    log = _open(path, max_segment_bytes=600)
    model = MemoryStorage()
    term = 1
    for kind, a, b, c in operations:
        if kind == "append":
            first = max(model.first_index(), model.last_index() + 1 - a)
            term += c
            batch = _entries(first, b, term)
            model.append(batch)
            log.save(batch, HardState(term=term, commit=0))
            model.set_hard_state(HardState(term=term, commit=0))
        elif kind == "compact":
            index = model.first_index() - 1 + a
            if model.first_index() <= index <= model.last_index():
                if index > model.snapshot().metadata.index:
                    model.create_snapshot(index, None, b"s%d" % index)
                    log.create_snapshot(index, None, b"s%d" % index)
                model.compact(index)
                log.compact(index)
        elif kind == "install":
            index = model.last_index() + a
            if index > model.snapshot().metadata.index:
                snap = Snapshot(b"i", SnapshotMetadata(ConfState(voters=(1,)), index, term))
                model.apply_snapshot(snap)
                log.apply_snapshot(snap)
        else:
            log.close()
            log = _open(path, max_segment_bytes=600)
        _same_as(log, model)
    log.close()
    _same_as(_open(path, max_segment_bytes=600), model)


def test_no_entry_data_in_plaintext_on_disk(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.save([Entry(term=1, index=1, data=b"SENTINEL-raft-log")])
    log.close()
    for path in (tmp_path / "raftlog").iterdir():
        assert b"SENTINEL-raft-log" not in path.read_bytes()
    assert os.listdir(tmp_path / "raftlog")


def test_concurrent_savers_share_fdatasyncs(tmp_path: Path) -> None:
    import threading
    import time

    syncs: list[int] = []

    def slow_sync() -> None:
        syncs.append(1)
        time.sleep(0.01)  # a slow disk: others queue up behind this fdatasync

    log = DurableLog(tmp_path / "raftlog", Keyring(tmp_path, KEK), before_sync=slow_sync)
    threads = [
        threading.Thread(
            target=lambda t=t: [
                log.save((), HardState(term=t, commit=i), sync=True) for i in range(10)
            ]
        )
        for t in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(syncs) < 80, "every save paid for its own fdatasync"
    log.close()
    assert _open(tmp_path).hard_state().commit == 9


def test_a_large_save_spans_several_records_and_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import store.raftlog

    monkeypatch.setattr(store.raftlog, "MAX_ENTRIES_RECORD_BYTES", 100)
    monkeypatch.setattr(store.raftlog, "MAX_ENTRIES_PER_RECORD", 3)
    log = _open(tmp_path)
    log.save(_entries(1, 25, 1, size=30), HardState(term=1, commit=25))
    log.save(_entries(10, 3, 2, size=30))
    assert log.entries(1, 13, NO_LIMIT) == _entries(1, 9, 1, size=30) + _entries(10, 3, 2, size=30)
    log.close()
    log = _open(tmp_path)
    assert log.last_index() == 12
    assert log.entries(1, 13, NO_LIMIT) == _entries(1, 9, 1, size=30) + _entries(10, 3, 2, size=30)
    with pytest.raises(ValueError, match="at most 100"):
        log.save([Entry(term=2, index=13, data=b"x" * 101)])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(1, 5)), min_size=1, max_size=12),
    st.floats(0.0, 1.0),
    st.sampled_from(TEARS),
)
def test_a_log_cut_anywhere_reopens_as_some_prefix_of_its_saves(
    tmp_path_factory: pytest.TempPathFactory,
    saves: list[tuple[int, int]],
    cut_fraction: float,
    how: str,
) -> None:
    """Whatever byte a crash tears the tail at, the log reopens exactly as it was after
    some whole number of saves: never a partial save, never garbage."""
    path = tmp_path_factory.mktemp("torn")
    log = _open(path)
    model = MemoryStorage()
    states: list[tuple[int, list[Entry]]] = []
    ends: list[int] = []
    for term, (back, count) in enumerate(saves, start=1):
        first = max(1, model.last_index() + 1 - back)
        batch = _entries(first, count, term, size=5 + term)
        model.append(batch)
        log.save(batch)
        last = model.last_index()
        states.append((last, model.entries(1, last + 1, NO_LIMIT)))
        segment, end = log.tail()
        ends.append(end)
    log.close()
    cut = _tear(segment, int(ends[-1] * cut_fraction), ends[-1], how)
    reopened = _open(path)
    whole = sum(1 for end in ends if end <= cut)
    expected_last, expected_entries = states[whole - 1] if whole else (0, [])
    assert reopened.last_index() == expected_last
    if expected_last:
        assert reopened.entries(1, expected_last + 1, NO_LIMIT) == expected_entries
