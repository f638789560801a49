"""Read rounds ask only the fastest quorum (Raft.send_read_round, read_round_voters).

A ReadIndex round's heartbeat goes to the fewest voters that complete a quorum with the
leader, those that acknowledged the newest message first; never to learners; to all voters
in a joint config. A chosen follower that never answers delays its round by one heartbeat
interval at most: the periodic heartbeat carries the newest pending context to everyone.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from raft import (
    Config,
    ConfState,
    Entry,
    MemoryStorage,
    Message,
    MessageType,
    Raft,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from raft.progress import Inflights, Progress
from raft.quorum import JointConfig
from raft.tracker import ProgressTracker, TrackerConfig

MAX_DELIVERY_ROUNDS = 100


class Cluster:
    """Cores wired together by hand: messages move only when `deliver` is called."""

    def __init__(self, conf: ConfState) -> None:
        members = sorted({*conf.voters, *conf.voters_outgoing, *conf.learners})
        self.nodes: dict[int, Raft] = {}
        for node_id in members:
            storage = MemoryStorage()
            storage.apply_snapshot(Snapshot(metadata=SnapshotMetadata(conf, 2, 1)))
            self.nodes[node_id] = Raft(
                Config(id=node_id, storage=storage, rng=random.Random(node_id))
            )
        self.dead: set[int] = set()
        self.sent: list[Message] = []

    def elect(self, leader: int) -> Raft:
        core = self.nodes[leader]
        core.become_candidate()
        core.become_leader()
        self.deliver()
        assert core.state is StateType.LEADER
        return core

    def collect(self) -> list[Message]:
        messages: list[Message] = []
        for core in self.nodes.values():
            core.flush()
            messages.extend(core.msgs)
            core.msgs = []
        self.sent.extend(messages)
        return messages

    def deliver(self, first: Iterable[int] = ()) -> None:
        """Deliver until quiet; in each wave, messages from `first` (in that order) go
        before the others, which go in sender order."""
        order = {node_id: position for position, node_id in enumerate(first)}
        for _ in range(MAX_DELIVERY_ROUNDS):
            messages = self.collect()
            if not messages:
                return
            messages.sort(key=lambda m: order.get(m.sender, len(order)))
            for m in messages:
                if m.to in self.dead or m.sender in self.dead:
                    continue
                self.nodes[m.to].step(m)
        raise AssertionError("the cluster did not go quiet")

    def read(self, leader: int, ctx: bytes) -> list[int]:
        """Start a read round on `leader`; the members its heartbeat went to."""
        self.nodes[leader].step(Message(type=MessageType.READ_INDEX, entries=(Entry(data=ctx),)))
        return round_targets(self.nodes[leader].msgs, ctx)

    def tick(self, node_id: int) -> None:
        self.nodes[node_id].tick()


def round_targets(messages: list[Message], ctx: bytes) -> list[int]:
    return sorted(m.to for m in messages if m.type is MessageType.HEARTBEAT and m.context == ctx)


def released(core: Raft) -> list[bytes]:
    return [state.request_ctx for state in core.read_states]


def test_three_voters_ask_one_follower_the_one_that_answered_first() -> None:
    cluster = Cluster(ConfState(voters=(1, 2, 3)))
    leader = cluster.elect(1)
    assert cluster.read(1, b"r1") == [2]  # 2's append response came before 3's
    cluster.deliver()
    assert released(leader) == [b"r1"]
    assert not any(m.to == 3 and m.context == b"r1" for m in cluster.sent)


def test_five_voters_ask_the_two_that_answered_first() -> None:
    cluster = Cluster(ConfState(voters=(1, 2, 3, 4, 5)))
    cluster.tick(1)  # a tick newer than the election's appends
    leader = cluster.nodes[1]
    leader.become_candidate()
    leader.become_leader()
    cluster.deliver(first=[5, 3, 4, 2])
    assert cluster.read(1, b"r1") == [3, 5]
    cluster.deliver()
    assert released(leader) == [b"r1"]


def test_ranking_follows_who_answered_the_newest_heartbeat_first() -> None:
    cluster = Cluster(ConfState(voters=(1, 2, 3)))
    leader = cluster.elect(1)
    assert cluster.read(1, b"r1") == [2]
    cluster.deliver()
    # A periodic heartbeat at a newer tick: 3 answers it before 2.
    cluster.tick(1)
    cluster.deliver(first=[3])
    assert cluster.read(1, b"r2") == [3]
    cluster.deliver()
    # The next tick 2 is first again, and is asked again.
    cluster.tick(1)
    cluster.deliver(first=[2])
    assert cluster.read(1, b"r3") == [2]
    cluster.deliver()
    assert released(leader) == [b"r1", b"r2", b"r3"]


def test_a_follower_that_answers_last_is_not_preferred_for_it() -> None:
    # The slow follower's answers to each broadcast arrive last: ranking by the most recent
    # answer would choose it every time. The fastest answer to the newest tick wins.
    cluster = Cluster(ConfState(voters=(1, 2, 3)))
    cluster.elect(1)
    for _ in range(3):
        cluster.tick(1)
        cluster.deliver(first=[3, 2])
        assert cluster.read(1, b"r") == [3]
        cluster.deliver(first=[3, 2])
        cluster.nodes[1].read_states.clear()


def test_learners_never_get_a_read_round() -> None:
    cluster = Cluster(ConfState(voters=(1, 2, 3), learners=(4,)))
    leader = cluster.elect(1)
    cluster.tick(1)
    cluster.deliver(first=[4, 3, 2])  # the learner answers first
    assert cluster.read(1, b"r1") == [3]
    cluster.deliver()
    assert released(leader) == [b"r1"]
    # The periodic heartbeat still goes to the learner.
    cluster.tick(1)
    assert 4 in [m.to for m in leader.msgs if m.type is MessageType.HEARTBEAT]


def test_a_joint_configuration_asks_every_voter_of_both_halves() -> None:
    cluster = Cluster(ConfState(voters=(1, 2, 3), voters_outgoing=(1, 2, 4), learners=(5,)))
    leader = cluster.elect(1)
    assert cluster.read(1, b"r1") == [2, 3, 4]
    cluster.deliver()
    assert released(leader) == [b"r1"]


def test_a_dead_chosen_follower_delays_pending_rounds_until_the_next_heartbeat() -> None:
    cluster = Cluster(ConfState(voters=(1, 2, 3)))
    leader = cluster.elect(1)
    assert cluster.read(1, b"r1") == [2]
    cluster.dead.add(2)
    cluster.deliver()
    assert cluster.read(1, b"r2") == [2]  # nothing has told the leader yet
    cluster.deliver()
    assert released(leader) == []
    # The periodic heartbeat carries the newest ctx to everyone; 3's ack releases both.
    cluster.tick(1)
    assert round_targets(leader.msgs, b"r2") == [2, 3]
    cluster.deliver()
    assert released(leader) == [b"r1", b"r2"]
    # 3 acknowledged the newer tick: the next round asks it.
    assert cluster.read(1, b"r3") == [3]
    cluster.deliver()
    assert released(leader) == [b"r1", b"r2", b"r3"]


def test_a_dead_chosen_pair_of_five_voters_is_replaced_after_one_heartbeat() -> None:
    cluster = Cluster(ConfState(voters=(1, 2, 3, 4, 5)))
    leader = cluster.elect(1)
    assert cluster.read(1, b"r1") == [2, 3]
    cluster.dead.update({2, 3})
    cluster.deliver()
    assert released(leader) == []
    cluster.tick(1)
    cluster.deliver()
    assert released(leader) == [b"r1"]
    assert cluster.read(1, b"r2") == [4, 5]


def tracker(voters: set[int], outgoing: frozenset[int] = frozenset()) -> ProgressTracker:
    trk = ProgressTracker(max_inflight_msgs=8, max_inflight_bytes=1 << 20)
    trk.config = TrackerConfig(voters=JointConfig(frozenset(voters), outgoing))
    for node in voters | outgoing:
        trk.progress[node] = Progress(next_index=1, inflights=Inflights(8, 1 << 20))
    return trk


def test_without_answers_in_this_term_every_voter_is_asked() -> None:
    trk = tracker({1, 2, 3, 4, 5})
    assert trk.read_round_voters(1) is None
    trk.progress[4].lease_ack_seq = 1
    assert trk.read_round_voters(1) is None  # one answer, two needed
    trk.progress[2].lease_ack_seq = 2
    assert trk.read_round_voters(1) == [2, 4]


def test_a_leader_outside_its_voters_asks_every_voter() -> None:
    trk = tracker({2, 3, 4})
    for node in (2, 3, 4):
        trk.progress[node].lease_ack_seq = node
    assert trk.read_round_voters(1) is None


def test_equal_ranks_are_broken_by_id() -> None:
    trk = tracker({1, 2, 3, 4, 5})
    for node in (2, 3, 4, 5):
        trk.progress[node].lease_ack_seq = 7
        trk.progress[node].lease_ack_tick = 3
    assert trk.read_round_voters(1) == [2, 3]
