"""Flow control (Inflights) and the leader's per-follower Progress state machine."""

from __future__ import annotations

import pytest

from raft.progress import Inflights, Progress, ProgressState


def make_progress(match: int = 0, next_index: int = 1, max_count: int = 3) -> Progress:
    return Progress(next_index, Inflights(max_count, max_bytes=1 << 20), match=match)


# -- Inflights ---------------------------------------------------------------------------------


def test_inflights_full_once_max_count_appends_are_in_flight() -> None:
    window = Inflights(max_count=3, max_bytes=1000)
    for last_index in (5, 6, 7):
        assert not window.full()
        window.add(last_index, 10)
    assert window.full()
    assert window.count() == 3


def test_inflights_full_once_max_bytes_are_in_flight() -> None:
    window = Inflights(max_count=10, max_bytes=100)
    window.add(1, 60)
    assert not window.full()
    window.add(2, 40)
    assert window.full()


def test_inflights_refuses_to_overflow() -> None:
    window = Inflights(max_count=1, max_bytes=1000)
    window.add(1, 1)
    with pytest.raises(AssertionError, match="overflow"):
        window.add(2, 1)


def test_inflights_free_le_releases_every_append_up_to_the_acknowledged_index() -> None:
    window = Inflights(max_count=4, max_bytes=100)
    for last_index in (3, 5, 8, 9):
        window.add(last_index, 25)
    assert window.full()
    window.free_le(5)
    assert window.count() == 2
    assert not window.full()  # both count and bytes were released
    window.free_le(4)  # older than anything left: nothing to free
    assert window.count() == 2
    window.free_le(100)
    assert window.count() == 0


def test_inflights_reset_empties_the_window() -> None:
    window = Inflights(max_count=1, max_bytes=10)
    window.add(1, 10)
    window.reset()
    assert window.count() == 0
    assert not window.full()


def test_inflights_needs_a_positive_count() -> None:
    with pytest.raises(AssertionError):
        Inflights(max_count=0, max_bytes=10)


# -- Progress transitions -----------------------------------------------------------------------


def test_progress_starts_probing_unpaused() -> None:
    pr = make_progress(next_index=5)
    assert pr.state is ProgressState.PROBE
    assert not pr.is_paused()


def test_probe_sends_one_append_then_pauses_until_an_answer() -> None:
    pr = make_progress(next_index=5)
    pr.sent_entries(7, 30)
    assert pr.is_paused()
    assert pr.next == 5  # a probe does not advance next optimistically
    assert pr.maybe_update(7)
    assert not pr.is_paused()
    assert (pr.match, pr.next) == (7, 8)


def test_replicate_pipelines_and_pauses_when_the_window_fills() -> None:
    pr = make_progress(match=4, next_index=5, max_count=2)
    pr.become_replicate()
    pr.sent_entries(6, 10)
    assert pr.next == 7
    assert not pr.is_paused()
    pr.sent_entries(8, 10)
    assert pr.next == 9
    assert pr.is_paused()
    assert pr.inflights.count() == 2


def test_become_replicate_restarts_from_match_with_an_empty_window() -> None:
    pr = make_progress(match=4, next_index=9)
    pr.inflights.add(8, 1)
    pr.become_replicate()
    assert (pr.state, pr.next, pr.inflights.count()) == (ProgressState.REPLICATE, 5, 0)


def test_become_probe_from_replicate_restarts_after_match() -> None:
    pr = make_progress(match=4, next_index=5)
    pr.become_replicate()
    pr.sent_entries(9, 10)
    pr.become_probe()
    assert (pr.state, pr.next, pr.inflights.count()) == (ProgressState.PROBE, 5, 0)


def test_become_probe_after_snapshot_resumes_after_the_snapshot() -> None:
    pr = make_progress(match=4, next_index=5)
    pr.become_snapshot(20)
    assert pr.is_paused()  # nothing else goes out while a snapshot is in flight
    pr.become_probe()
    assert (pr.state, pr.next, pr.pending_snapshot) == (ProgressState.PROBE, 21, 0)


def test_become_probe_after_failed_snapshot_resumes_after_match() -> None:
    pr = make_progress(match=4, next_index=5)
    pr.become_snapshot(20)
    pr.pending_snapshot = 0  # what a failed SNAPSHOT_STATUS does
    pr.become_probe()
    assert pr.next == 5


def test_maybe_update_ignores_old_acknowledgements() -> None:
    pr = make_progress(match=6, next_index=9)
    assert not pr.maybe_update(5)
    assert (pr.match, pr.next) == (6, 9)
    assert pr.maybe_update(10)
    assert (pr.match, pr.next) == (10, 11)


# -- maybe_decrease_to ------------------------------------------------------------------------


def test_replicate_rejection_at_or_below_match_is_stale() -> None:
    pr = make_progress(match=5, next_index=5)
    pr.become_replicate()
    pr.sent_entries(9, 10)
    assert not pr.maybe_decrease_to(5, match_hint=2)
    assert pr.next == 10


def test_replicate_rejection_above_match_restarts_from_match() -> None:
    pr = make_progress(match=5, next_index=5)
    pr.become_replicate()
    pr.sent_entries(9, 10)
    assert pr.maybe_decrease_to(8, match_hint=2)
    assert pr.next == 6


def test_probe_rejection_of_an_older_probe_is_ignored() -> None:
    pr = make_progress(match=0, next_index=10)
    assert not pr.maybe_decrease_to(7, match_hint=3)
    assert pr.next == 10


def test_probe_rejection_jumps_to_the_hint_and_unpauses() -> None:
    pr = make_progress(match=0, next_index=10)
    pr.sent_entries(12, 10)
    assert pr.is_paused()
    assert pr.maybe_decrease_to(9, match_hint=3)
    assert pr.next == 4
    assert not pr.is_paused()


def test_probe_rejection_never_goes_below_match_plus_one() -> None:
    pr = make_progress(match=5, next_index=10)
    assert pr.maybe_decrease_to(9, match_hint=1)
    assert pr.next == 6


def test_probe_rejection_with_a_hint_past_the_rejected_index_steps_back_one() -> None:
    pr = make_progress(match=0, next_index=10)
    assert pr.maybe_decrease_to(9, match_hint=50)
    assert pr.next == 9
