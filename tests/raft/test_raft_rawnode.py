"""RawNode (raft/rawnode.py): the guard rails of its contract, the limits it enforces on a
leader, and restarts from what a crash left on disk."""

from __future__ import annotations

import random

import pytest

from raft import (
    Config,
    ConfState,
    Entry,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    ReadOnlyOption,
    Ready,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from raft.errors import StepLocalMessageError

# -- guard rails ---------------------------------------------------------------------------


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


# -- limits on the leader -------------------------------------------------------------------


def leader_of_three(**options: object) -> RawNode:
    """Node 1 elected by 2's vote; its first Ready persisted. Messages go nowhere."""
    storage = MemoryStorage()
    storage.apply_snapshot(Snapshot(metadata=SnapshotMetadata(ConfState(voters=(1, 2, 3)), 2, 1)))
    fields: dict[str, object] = {
        "id": 1,
        "storage": storage,
        "pre_vote": False,
        "check_quorum": False,
        **options,
    }
    node = RawNode(Config(**fields))  # type: ignore[arg-type]
    node.campaign()
    node.step(Message(type=MessageType.VOTE_RESPONSE, sender=2, to=1, term=1))
    assert node.raft.state is StateType.LEADER
    persist_and_advance(node, node.ready())
    return node


def acknowledge(node: RawNode, follower: int, index: int) -> None:
    node.step(Message(type=MessageType.APPEND_RESPONSE, sender=follower, to=1, term=1, index=index))
    persist_and_advance(node, node.ready())


def test_leader_refuses_proposals_beyond_its_uncommitted_budget_until_they_commit() -> None:
    node = leader_of_three(max_uncommitted_bytes=10)
    node.propose(b"12345678")
    with pytest.raises(ProposalDroppedError, match="uncommitted"):
        node.propose(b"abcdefgh")
    persist_and_advance(node, node.ready())
    acknowledge(node, 2, 4)  # commits and applies the first proposal: its bytes are free
    node.propose(b"abcdefgh")
    assert node.raft.log.last_index() == 5


def test_leader_accepts_one_oversized_proposal_when_nothing_is_uncommitted() -> None:
    node = leader_of_three(max_uncommitted_bytes=4)
    node.propose(b"far too large for the budget")
    with pytest.raises(ProposalDroppedError):
        node.propose(b"x")


def test_leader_drops_reads_beyond_max_pending_reads() -> None:
    node = leader_of_three(max_pending_reads=1)
    acknowledge(node, 2, 3)  # an entry of the leader's term commits: reads are served
    node.read_index(b"first")
    node.read_index(b"second")  # the queue is full: dropped, the client retries
    heartbeats = [m for m in node.ready().messages if m.type is MessageType.HEARTBEAT]
    assert {m.context for m in heartbeats} == {b"first"}


# -- restarts from what a crash left on disk --------------------------------------------------


def test_restart_after_a_torn_snapshot_install_counts_the_snapshot_as_committed() -> None:
    """The contract's step 1, in its order (snapshot, entries, hard state), torn after the
    snapshot: the node must restart, committed up to the snapshot, not refuse to start."""
    storage = MemoryStorage()
    storage.apply_snapshot(Snapshot(metadata=SnapshotMetadata(ConfState(voters=(1, 2, 3)), 2, 1)))
    storage.append([Entry(term=1, index=3), Entry(term=1, index=4)])
    storage.set_hard_state(HardState(term=1, vote=1, commit=4))
    # A later Ready installs a leader's snapshot at 7; the crash comes before its hard state.
    storage.apply_snapshot(Snapshot(metadata=SnapshotMetadata(ConfState(voters=(1, 2, 3)), 7, 1)))

    node = RawNode(Config(id=3, storage=storage, applied=7))

    assert node.raft.log.committed == 7
    assert (node.raft.term, node.raft.vote) == (1, 1)


def test_restart_after_entries_persisted_without_hard_state_keeps_the_older_commit() -> None:
    storage = MemoryStorage()
    storage.apply_snapshot(Snapshot(metadata=SnapshotMetadata(ConfState(voters=(1, 2, 3)), 2, 1)))
    storage.set_hard_state(HardState(term=1, vote=1, commit=2))
    storage.append([Entry(term=1, index=3), Entry(term=1, index=4)])

    node = RawNode(Config(id=3, storage=storage))

    assert (node.raft.log.committed, node.raft.log.last_index()) == (2, 4)


# -- a lost stream to the leader -----------------------------------------------------------


def follower_of_2(**options: object) -> RawNode:
    storage = MemoryStorage()
    storage.apply_snapshot(Snapshot(metadata=SnapshotMetadata(ConfState(voters=(1, 2, 3)), 2, 1)))
    node = RawNode(Config(id=1, storage=storage, rng=random.Random(1), **options))  # type: ignore[arg-type]
    node.step(Message(type=MessageType.HEARTBEAT, sender=2, to=1, term=1, commit=2))
    assert node.raft.lead == 2
    return node


def test_a_lost_stream_to_the_leader_brings_the_election_forward() -> None:
    node = follower_of_2()
    timeout = node.raft.election_timeout
    node.report_unreachable(2)
    assert node.raft.election_elapsed == timeout
    assert timeout < node.raft.randomized_election_timeout <= timeout + timeout // 5


@pytest.mark.parametrize(
    "options",
    [
        {"pre_vote": False},
        {"check_quorum": False},
        {"read_only_option": ReadOnlyOption.LEASE_BASED},
    ],
    ids=["without-pre-vote", "without-check-quorum", "lease-based-reads"],
)
def test_a_lost_stream_changes_no_timer_where_a_false_alarm_could_depose_a_leader(
    options: dict[str, object],
) -> None:
    # Without pre-vote or check-quorum an early campaign moves the term of a live leader;
    # with leases a follower must refuse votes for a whole timeout after hearing from it.
    node = follower_of_2(**options)
    before = (node.raft.election_elapsed, node.raft.randomized_election_timeout)
    node.report_unreachable(2)
    assert (node.raft.election_elapsed, node.raft.randomized_election_timeout) == before
