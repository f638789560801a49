"""Plain values of the core: ConfChange encoding and transitions (raft/types.py), Config
validation (raft/core.py), and the RawNode contract's guard rails (raft/rawnode.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raft import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    Config,
    ConfState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    ReadOnlyOption,
    Ready,
    Snapshot,
    SnapshotMetadata,
)
from raft.errors import StepLocalMessageError
from raft.types import add_learner, add_voter, remove_node, vote_response_type

singles = st.builds(
    ConfChangeSingle, st.sampled_from(ConfChangeType), st.integers(min_value=0, max_value=2**40)
)
conf_changes = st.builds(
    ConfChange,
    st.lists(singles, max_size=5).map(tuple),
    st.sampled_from(ConfChangeTransition),
    st.binary(max_size=32),
)


@given(conf_changes)
def test_conf_change_survives_encode_then_decode(change: ConfChange) -> None:
    assert ConfChange.decode(change.encode()) == change
    assert change.to_entry_data() == change.encode()


def test_conf_change_with_no_changes_and_auto_transition_means_leave_joint() -> None:
    assert ConfChange().leave_joint()
    assert not ConfChange(transition=ConfChangeTransition.JOINT_EXPLICIT).leave_joint()
    assert not add_voter(2).leave_joint()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (add_voter(4), (False, False)),  # one change, auto: applied directly
        (ConfChange(add_voter(4).changes + remove_node(3).changes), (True, True)),
        (ConfChange(add_voter(4).changes, ConfChangeTransition.JOINT_IMPLICIT), (True, True)),
        (ConfChange(add_learner(4).changes, ConfChangeTransition.JOINT_EXPLICIT), (True, False)),
    ],
    ids=["single", "several-auto", "implicit", "explicit"],
)
def test_enter_joint_says_whether_joint_and_whether_it_leaves_by_itself(
    change: ConfChange, expected: tuple[bool, bool]
) -> None:
    assert change.enter_joint() == expected


def test_vote_response_type_pairs_requests_with_their_answers() -> None:
    assert vote_response_type(MessageType.VOTE) is MessageType.VOTE_RESPONSE
    assert vote_response_type(MessageType.PRE_VOTE) is MessageType.PRE_VOTE_RESPONSE
    with pytest.raises(ValueError, match="not a vote"):
        vote_response_type(MessageType.APPEND)


def test_conf_state_members_are_voters_learners_and_outgoing_voters() -> None:
    conf = ConfState(voters=(1, 2), learners=(5,), voters_outgoing=(2, 3))
    assert conf.members() == {1, 2, 3, 5}


# -- Config.validate ------------------------------------------------------------------------------


def config(**overrides: object) -> Config:
    fields: dict[str, object] = {"id": 1, "storage": MemoryStorage(), **overrides}
    return Config(**fields)  # type: ignore[arg-type]


def test_default_config_is_valid() -> None:
    config().validate()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"id": 0}, "node id"),
        ({"heartbeat_ticks": 0}, "heartbeat_ticks"),
        ({"election_ticks": 1, "heartbeat_ticks": 1}, "election_ticks"),
        ({"max_inflight_msgs": 0}, "in-flight"),
        ({"max_inflight_bytes": 0}, "in-flight"),
        ({"lease_margin_ticks": -1}, "lease_margin_ticks"),
        ({"lease_margin_ticks": 10}, "lease_margin_ticks"),
        (
            {"read_only_option": ReadOnlyOption.LEASE_BASED, "check_quorum": False},
            "check_quorum",
        ),
    ],
    ids=[
        "node-zero",
        "no-heartbeat",
        "election-not-above-heartbeat",
        "no-inflight-msgs",
        "no-inflight-bytes",
        "negative-lease-margin",
        "lease-margin-eats-the-lease",
        "lease-without-check-quorum",
    ],
)
def test_config_validate_refuses(overrides: dict[str, object], message: str) -> None:
    candidate = config(**overrides)
    with pytest.raises(ValueError, match=message):
        candidate.validate()
    with pytest.raises(ValueError, match=message):
        RawNode(candidate)  # the core validates its config before anything else


# -- RawNode guard rails ----------------------------------------------------------------------


def voter(node_id: int = 1, voters: tuple[int, ...] = (1, 2, 3)) -> RawNode:
    storage = MemoryStorage()
    storage.apply_snapshot(Snapshot(metadata=SnapshotMetadata(ConfState(voters=voters), 2, 1)))
    return RawNode(Config(id=node_id, storage=storage, rng=random.Random(node_id)))


def persist_and_advance(node: RawNode, ready: Ready) -> None:
    """The persistence contract, for a node whose messages go nowhere."""
    storage = node.raft.log.storage
    assert isinstance(storage, MemoryStorage)
    storage.append(ready.entries)
    if ready.hard_state is not None:
        storage.set_hard_state(ready.hard_state)
    node.advance(ready)


def test_proposal_without_a_known_leader_is_dropped() -> None:
    with pytest.raises(ProposalDroppedError, match="no leader"):
        voter().propose(b"x")


@pytest.mark.parametrize(
    "kind", [MessageType.HUP, MessageType.BEAT, MessageType.CHECK_QUORUM, MessageType.UNREACHABLE]
)
def test_local_messages_may_not_arrive_from_the_network(kind: MessageType) -> None:
    with pytest.raises(StepLocalMessageError):
        voter().step(Message(type=kind, sender=2, to=1, term=1))


def test_response_from_a_node_outside_the_configuration_is_ignored() -> None:
    node = voter()
    node.step(Message(type=MessageType.VOTE_RESPONSE, sender=9, to=1, term=5))
    assert node.raft.term == 0


def test_ready_twice_without_advance_is_a_bug() -> None:
    node = voter()
    node.ready()
    with pytest.raises(AssertionError, match="twice"):
        node.ready()


def test_advance_without_ready_is_a_bug() -> None:
    node = voter()
    ready = node.ready()
    node.advance(ready)
    with pytest.raises(AssertionError, match="without ready"):
        node.advance(ready)


def test_single_voter_elects_itself_and_commits_alone() -> None:
    node = voter(voters=(1,))
    node.campaign()
    ready = node.ready()
    assert ready.soft_state is not None and ready.soft_state.lead == 1
    assert ready.must_sync  # a new term and vote must reach the disk before anything else
    assert [entry.index for entry in ready.committed_entries] == [3]
    persist_and_advance(node, ready)
    node.propose(b"solo")
    ready = node.ready()
    assert [entry.data for entry in ready.committed_entries] == [b"solo"]
    assert ready.messages == []


def test_single_voter_read_index_is_served_at_once() -> None:
    node = voter(voters=(1,))
    node.campaign()
    persist_and_advance(node, node.ready())
    node.read_index(b"ctx")
    ready = node.ready()
    assert [(state.index, state.request_ctx) for state in ready.read_states] == [(3, b"ctx")]
