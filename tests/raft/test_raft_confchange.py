"""Membership arithmetic (raft/confchange.py): the next configuration computed from a
ConfChange, one voter at a time or through joint consensus, and its invariants."""

from __future__ import annotations

import pytest

from raft import confchange
from raft.errors import ConfChangeError
from raft.progress import ProgressState
from raft.tracker import ProgressTracker, TrackerConfig
from raft.types import ConfChangeSingle, ConfChangeType, ConfState

LAST_INDEX = 10


def tracker(conf_state: ConfState) -> ProgressTracker:
    trk = ProgressTracker(max_inflight_msgs=4, max_inflight_bytes=1 << 20)
    trk.config, trk.progress = confchange.restore(conf_state, LAST_INDEX, 4, 1 << 20)
    return trk


def changes(text: str) -> tuple[ConfChangeSingle, ...]:
    """'v4 l5 r3' -> add voter 4, add learner 5, remove 3."""
    kinds = {
        "v": ConfChangeType.ADD_VOTER,
        "l": ConfChangeType.ADD_LEARNER,
        "r": ConfChangeType.REMOVE_NODE,
    }
    return tuple(ConfChangeSingle(kinds[token[0]], int(token[1:])) for token in text.split())


def install(
    trk: ProgressTracker, result: tuple[TrackerConfig, confchange.ProgressMap]
) -> ConfState:
    trk.config, trk.progress = result
    return trk.conf_state()


def test_simple_change_adds_a_voter_with_fresh_progress() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    config, progress = confchange.Changer(trk, LAST_INDEX).simple(changes("v4"))
    assert config.voters.incoming == {1, 2, 3, 4}
    assert not config.voters.is_joint()
    assert progress[4].state is ProgressState.PROBE
    assert (progress[4].match, progress[4].next) == (0, LAST_INDEX)


def test_simple_change_refuses_two_voter_changes_at_once() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    with pytest.raises(ConfChangeError, match="more than one voter"):
        confchange.Changer(trk, LAST_INDEX).simple(changes("v4 r3"))
    with pytest.raises(ConfChangeError, match="more than one voter"):
        confchange.Changer(trk, LAST_INDEX).simple(changes("v4 v5"))


def test_simple_change_may_touch_learners_alongside_one_voter() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    conf = install(trk, confchange.Changer(trk, LAST_INDEX).simple(changes("v4 l5 l6")))
    assert conf == ConfState(voters=(1, 2, 3, 4), learners=(5, 6))


def test_a_refused_change_leaves_the_tracker_untouched() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3), learners=(4,)))
    before = (trk.conf_state(), {node: pr.is_learner for node, pr in trk.progress.items()})
    with pytest.raises(ConfChangeError):
        confchange.Changer(trk, LAST_INDEX).simple(changes("v4 v5"))
    assert (trk.conf_state(), {n: pr.is_learner for n, pr in trk.progress.items()}) == before


def test_promoting_a_learner_keeps_its_progress() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3), learners=(4,)))
    trk.progress[4].match = 7
    config, progress = confchange.Changer(trk, LAST_INDEX).simple(changes("v4"))
    assert 4 in config.voters.incoming
    assert 4 not in config.learners
    assert not progress[4].is_learner
    assert progress[4].match == 7


def test_demoting_a_voter_outside_joint_makes_it_a_learner_at_once() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    conf = install(trk, confchange.Changer(trk, LAST_INDEX).simple(changes("l3")))
    assert conf == ConfState(voters=(1, 2), learners=(3,))
    assert trk.progress[3].is_learner


def test_removing_every_voter_is_refused() -> None:
    trk = tracker(ConfState(voters=(1,)))
    with pytest.raises(ConfChangeError, match="removed all voters"):
        confchange.Changer(trk, LAST_INDEX).simple(changes("r1"))


def test_changes_for_node_zero_and_unknown_removals_are_no_ops() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    conf = install(trk, confchange.Changer(trk, LAST_INDEX).simple(changes("v0 r9")))
    assert conf == ConfState(voters=(1, 2, 3))


def test_adding_an_existing_learner_again_is_a_no_op() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3), learners=(4,)))
    conf = install(trk, confchange.Changer(trk, LAST_INDEX).simple(changes("l4")))
    assert conf == ConfState(voters=(1, 2, 3), learners=(4,))


def test_simple_change_in_a_joint_config_is_refused() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    install(trk, confchange.Changer(trk, LAST_INDEX).enter_joint(False, changes("v4 r3")))
    with pytest.raises(ConfChangeError, match="joint"):
        confchange.Changer(trk, LAST_INDEX).simple(changes("v5"))


def test_enter_joint_keeps_the_old_voters_as_the_outgoing_half() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    conf = install(trk, confchange.Changer(trk, LAST_INDEX).enter_joint(True, changes("v4 r3")))
    assert conf == ConfState(voters=(1, 2, 4), voters_outgoing=(1, 2, 3), auto_leave=True)
    assert 3 in trk.progress  # still a voter of the outgoing half


def test_enter_joint_twice_is_refused() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    install(trk, confchange.Changer(trk, LAST_INDEX).enter_joint(False, changes("v4")))
    with pytest.raises(ConfChangeError, match="already joint"):
        confchange.Changer(trk, LAST_INDEX).enter_joint(False, changes("v5"))


def test_enter_joint_from_zero_voters_is_refused() -> None:
    trk = tracker(ConfState())
    with pytest.raises(ConfChangeError, match="zero-voter"):
        confchange.Changer(trk, LAST_INDEX).enter_joint(False, changes("v1"))


def test_leave_joint_outside_a_joint_config_is_refused() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    with pytest.raises(ConfChangeError, match="non-joint"):
        confchange.Changer(trk, LAST_INDEX).leave_joint()


def test_leave_joint_drops_the_outgoing_half_and_removed_voters() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    install(trk, confchange.Changer(trk, LAST_INDEX).enter_joint(True, changes("v4 r3")))
    conf = install(trk, confchange.Changer(trk, LAST_INDEX).leave_joint())
    assert conf == ConfState(voters=(1, 2, 4))
    assert sorted(trk.progress) == [1, 2, 4]


def test_demotion_in_joint_waits_in_learners_next_until_leaving() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    conf = install(trk, confchange.Changer(trk, LAST_INDEX).enter_joint(False, changes("v4 l3")))
    assert conf == ConfState(voters=(1, 2, 4), voters_outgoing=(1, 2, 3), learners_next=(3,))
    assert not trk.progress[3].is_learner  # still votes in the outgoing half
    conf = install(trk, confchange.Changer(trk, LAST_INDEX).leave_joint())
    assert conf == ConfState(voters=(1, 2, 4), learners=(3,))
    assert trk.progress[3].is_learner


def test_promoting_back_a_voter_pending_demotion_cancels_the_demotion() -> None:
    trk = tracker(ConfState(voters=(1, 2, 3)))
    config, _ = confchange.Changer(trk, LAST_INDEX).enter_joint(False, changes("l3 v3"))
    assert config.learners_next == frozenset()
    assert 3 in config.voters.incoming


def test_restore_rebuilds_config_and_progress_from_a_conf_state() -> None:
    conf_state = ConfState(
        voters=(1, 2, 4), voters_outgoing=(1, 2, 3), learners=(5,), learners_next=(3,)
    )
    config, progress = confchange.restore(conf_state, LAST_INDEX, 4, 1 << 20)
    assert sorted(progress) == [1, 2, 3, 4, 5]
    assert progress[5].is_learner
    assert not progress[3].is_learner
    assert config.learners_next == {3}


@pytest.mark.parametrize(
    "conf_state",
    [
        ConfState(voters=(1, 2), learners=(2,)),  # both voter and learner
        ConfState(voters=(1, 2), learners_next=(3,)),  # learners_next outside a joint config
        ConfState(voters=(1, 2), voters_outgoing=(1, 2), learners_next=(3,)),  # not outgoing
        ConfState(voters=(1, 2), auto_leave=True),  # auto_leave outside a joint config
    ],
    ids=["voter-and-learner", "learners-next-not-joint", "learners-next-not-outgoing", "autoleave"],
)
def test_restore_refuses_a_config_that_breaks_the_invariants(conf_state: ConfState) -> None:
    with pytest.raises(ConfChangeError):
        confchange.restore(conf_state, LAST_INDEX, 4, 1 << 20)
